import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Schedule, Stream } from "effect"
import { Mailer } from "effect-smtp"
import { TestTransport } from "../../src/testing/index.js"
import { withinRealTime } from "../session/support.js"

describe("Mailer.sendAll: a batch ends at a transient refusal, whose retry does not wait for the input to end", () => {
  it.live("with greylisting (451 at RCPT for every other item), the items read and not answered stay few", () =>
    Effect.gen(function*() {
      const made = yield* TestTransport.make({
        respond: (event) =>
          event.stage === "rcpt" && /^odd/.test(event.recipient ?? "") && event.connection === 0 ?
            "451 4.7.1 greylisted, try later" :
            undefined
      })
      let read = 0
      function* endless(): Generator<Mailer.BulkItem> {
        for (let i = 0; i < 5000; i++) {
          read++
          yield {
            from: "a@x.test",
            to: `${i % 2 === 1 ? "odd" : "even"}${i}@x.test`,
            message: "Subject: s\r\n\r\nhi\r\n"
          }
        }
      }
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({
            host: "mx.test",
            security: "none",
            maxConnections: 1,
            retry: Schedule.recurs(1)
          })
          return yield* Stream.runCollect(mailer.sendAll(endless(), { concurrency: 1 }).pipe(Stream.take(400)))
        })).pipe(Effect.provide(made.layer)),
        20000
      )
      assert.isTrue(result._tag === "Some", "hung")
      const outcomes = result._tag === "Some" ? Chunk.toReadonlyArray(result.value) : []
      const odd = outcomes.filter((o) => o.index % 2 === 1).length
      // the items read and given no outcome yet: bounded by the window, not by the input
      assert.isAtMost(read - outcomes.length, 100, `read ${read}, outcomes ${outcomes.length} (odd ones ${odd})`)
    }))
})
