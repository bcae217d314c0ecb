/**
 * The in-process and interop suites under Bun, with the Node transport (issue 12):
 *
 *   npx bun --bun vitest run -c vitest.bun.config.ts --project inprocess
 *   SMTP_PEERS_DIR=<state dir> SMTP_INTEROP_REQUIRED=1 npx bun --bun vitest run -c vitest.bun.config.ts --project interop
 *
 * `--bun` makes Bun run vitest itself, and vitest's `forks` pool starts its workers with
 * `process.execPath`, Bun again. Both are checked: this file refuses to load outside Bun, and the
 * setup file fails every test file whose worker is not Bun.
 */
import { defineConfig } from "vitest/config"
import base from "./vitest.config.js"

// vitest.config.ts without its `include` (test/**/*.test.ts), which the projects would otherwise add to theirs
const { include: _include, ...baseTest } = base.test ?? {}

if (process.versions.bun === undefined) {
  throw new Error("vitest.bun.config.ts runs the suites under Bun: start vitest with `npx bun --bun vitest run -c ...`")
}

export default defineConfig({
  ...base,
  test: {
    ...baseTest,
    setupFiles: ["test/support/bunRuntime.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "inprocess",
          include: [
            "test/inprocess/**/*.test.ts",
            "test/lmtp/inprocess.test.ts",
            "test/auth/inprocess.test.ts",
            "test/faults/sockets.test.ts",
            "test/mailer/**/*.test.ts",
            "test/testing/**/*.test.ts",
            "test/proxy/**/*.test.ts"
          ]
        }
      },
      {
        extends: true,
        test: {
          name: "interop",
          include: ["test/interop/**/*.test.ts"],
          // the outbox's SQLite driver is better-sqlite3, a Node addon Bun cannot load
          exclude: ["test/interop/outbox.test.ts"]
        }
      }
    ]
  }
})
