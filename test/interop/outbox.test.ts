/**
 * The durable outbox with real processes and real databases: the in-process suite on PostgreSQL
 * (the peer of scripts/peers/postgres.sh), then examples/outbox/scenario.ts — worker processes,
 * two producer processes enqueueing 5,000 messages each in transactions (one in ten rolled back),
 * a counting SMTP sink answering 451 to 10% of recipients for a while and 550 to some, and one
 * worker killed with SIGKILL mid-run and restarted — on PostgreSQL with 3 workers and on SQLite
 * with 1. Skipped without SMTP_PEERS_DIR; with SMTP_INTEROP_REQUIRED=1 a missing PostgreSQL fails.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Report, run } from "../../examples/outbox/scenario.js"
import { freshPgUrl, pgRequired, pgUrl } from "../outbox/harness.js"
import { suite } from "../outbox/suite.js"

const available = pgUrl !== undefined

describe.runIf(!available && pgRequired)("outbox on PostgreSQL", () => {
  it("needs the PostgreSQL peer (scripts/peers/postgres.sh)", () => {
    assert.fail("SMTP_INTEROP_REQUIRED=1 but $SMTP_PEERS_DIR/postgres/peer.json is missing")
  })
})

if (available) suite("pg")

/** What every run must show, whatever the database. */
const checkReport = (report: Report, options: { readonly count: number }) => {
  console.log(`outbox scenario: ${JSON.stringify({ ...report, missing: report.missing.length })}`)
  const total = 2 * options.count
  assert.strictEqual(report.committed + report.rolledBack, total)
  assert.strictEqual(report.rolledBack, total / 10)
  // every committed message to an existing recipient was accepted by the sink
  assert.deepStrictEqual(report.missing, [])
  // nothing from a rolled-back transaction was enqueued or sent
  assert.deepStrictEqual(report.leaked, [])
  // duplicates only where a worker died with the message in flight (its history says unknown)
  assert.deepStrictEqual(report.unexplainedDuplicates, [])
  assert.isAtMost(report.duplicates, report.unknown)
  // 5xx is final: every message to a missing user failed and none reached the sink
  assert.isAbove(report.bounces, 0)
  assert.strictEqual(report.bouncedFailed, report.bounces)
  // 4xx was retried and delivered
  assert.isAbove(report.deferredThenSent, 0)
  assert.strictEqual(report.states.sent + report.states.failed, report.committed)
  assert.isDefined(report.recoveryMs)
}

describe.runIf(available)("outbox processes on PostgreSQL", () => {
  it("3 workers, 2 producers, 10,000 messages, one worker SIGKILLed and restarted", { timeout: 420_000 }, async () => {
    const url = await Effect.runPromise(freshPgUrl)
    const count = 5000
    const report = await run({
      db: `pg:${url}`,
      workers: 3,
      producers: 2,
      count,
      killAt: 3000,
      restartAfterMs: 3000,
      deferForMs: 5000,
      onUnknown: "retry",
      timeoutMs: 360_000
    })
    checkReport(report, { count })
  })
})

describe.runIf(available || pgRequired)("outbox processes on SQLite", () => {
  it("1 worker restarted after SIGKILL, 2 producers, 10,000 messages", { timeout: 420_000 }, async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "outbox-scenario-"))
    const count = 5000
    const report = await run({
      db: `sqlite:${Path.join(dir, "outbox.db")}`,
      workers: 1,
      producers: 2,
      count,
      killAt: 3000,
      restartAfterMs: 2000,
      deferForMs: 5000,
      onUnknown: "retry",
      timeoutMs: 360_000
    })
    checkReport(report, { count })
    Fs.rmSync(dir, { recursive: true, force: true })
  })
})
