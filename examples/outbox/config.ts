/**
 * What the outbox example's processes share: the database from `OUTBOX_DB` (`pg:<url>` or
 * `sqlite:<file>`) as an `@effect/sql` client.
 */
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Layer, Redacted } from "effect"

export const database = (spec = process.env.OUTBOX_DB ?? "sqlite:outbox.db"): Layer.Layer<SqlClient.SqlClient> => {
  if (spec.startsWith("pg:")) {
    return PgClient.layer({ url: Redacted.make(spec.slice(3)), maxConnections: 20 }).pipe(Layer.orDie)
  }
  if (spec.startsWith("sqlite:")) return SqliteClient.layer({ filename: spec.slice(7) }).pipe(Layer.orDie)
  throw new Error(`OUTBOX_DB must be pg:<url> or sqlite:<file>, not ${spec}`)
}
