/**
 * An outbox producer process: the business change (an order row) and its confirmation mail in
 * one transaction; every ROLLBACK_EVERY-th transaction fails after enqueueing, so its mail must
 * never go out. Prints one JSON line: the keys committed and rolled back.
 *
 *   OUTBOX_DB=pg:postgres://… PRODUCER=p1 COUNT=5000 tsx examples/outbox/producer.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Console, Effect } from "effect"
import { Outbox } from "effect-smtp/outbox"
import { database } from "./config.js"

const producer = process.env.PRODUCER ?? "p1"
const count = Number(process.env.COUNT ?? 1000)
const batch = Number(process.env.BATCH ?? 5)
const rollbackEvery = Number(process.env.ROLLBACK_EVERY ?? 10)

/** The recipient of message i: spread over 7 domains (destinations); every 97th does not exist. */
export const recipientOf = (i: number): string =>
  i % 97 === 5 ? `bounce-${i}@d${i % 7}.example` : `u${i}@d${i % 7}.example`

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const outbox = yield* Outbox.Outbox
  yield* sql`CREATE TABLE IF NOT EXISTS orders (key TEXT PRIMARY KEY, producer TEXT NOT NULL)`
  const committed: Array<string> = []
  const rolledBack: Array<string> = []
  for (let start = 0, tx = 0; start < count; start += batch, tx++) {
    const keys = Array.from({ length: Math.min(batch, count - start) }, (_, j) => `${producer}-${start + j}`)
    const fail = rollbackEvery > 0 && tx % rollbackEvery === rollbackEvery - 1
    const result = yield* sql.withTransaction(Effect.gen(function*() {
      for (const key of keys) {
        const i = Number(key.slice(key.lastIndexOf("-") + 1))
        yield* sql`INSERT INTO orders ${sql.insert({ key, producer })}`
        yield* outbox.enqueue({
          from: "shop@outbox.test",
          to: recipientOf(i),
          idempotencyKey: key,
          message: `From: shop@outbox.test\r\nTo: ${recipientOf(i)}\r\nMessage-ID: <${key}@outbox.test>\r\n` +
            `Subject: order ${key}\r\n\r\nThank you for order ${key}.\r\n`
        })
      }
      if (fail) return yield* Effect.fail("rollback" as const)
    })).pipe(Effect.either)
    if (result._tag === "Right") committed.push(...keys)
    else if (result.left === "rollback") rolledBack.push(...keys)
    else return yield* result.left
  }
  yield* Console.log(JSON.stringify({ producer, committed, rolledBack }))
})

if (import.meta.url === `file://${process.argv[1]}`) {
  program.pipe(Effect.provide(Outbox.layer()), Effect.provide(database()), NodeRuntime.runMain)
}
