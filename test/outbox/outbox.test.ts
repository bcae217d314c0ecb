import { suite } from "./suite.js"

// PostgreSQL: test/interop/outbox.test.ts (it needs the peer started by scripts/peers/postgres.sh)
suite("sqlite")
