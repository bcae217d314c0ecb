import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Schedule, Stream } from "effect"
import { Mailer } from "effect-smtp"
import { makeServer, withinRealTime } from "../session/support.js"

const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
const accepted = (from = "a@x.test") => [
  { expect: `MAIL FROM:<${from}>`, reply: "250 ok" },
  { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: "hi\r\n.\r\n", reply: "250 queued" }
]
const options = { host: "mx.test", security: "none", retry: Schedule.recurs(1) } as const
const item = (from = "a@x.test"): Mailer.BulkItem => ({ from, to: "b@x.test", message: "hi" })

describe("Mailer.sendAll after the batch's connection died", () => {
  it.live("the items NotSent by a dead batch are not all held for retry: the input is not drained", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(
        { strict: false, steps: [EHLO, { expect: "MAIL FROM:<a@x.test>", close: true }] },
        { strict: false, steps: [EHLO, ...Array.from({ length: 50 }, () => accepted()).flat()] }
      )
      let read = 0
      function* endless(): Generator<Mailer.BulkItem> {
        for (;;) {
          read++
          if (read > 100_000) return
          yield item()
        }
      }
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
          return yield* Stream.runCollect(mailer.sendAll(endless(), { concurrency: 1 }).pipe(Stream.take(1)))
        })).pipe(Effect.provide(server.layer)),
        10000
      )
      assert.isTrue(result._tag === "Some", "hung")
      if (result._tag === "Some") assert.strictEqual(Chunk.toReadonlyArray(result.value).length, 1)
      // bounded read-ahead before the first outcome
      assert.isAtMost(read, 200, `items read before the first outcome: ${read}`)
    }))
})
