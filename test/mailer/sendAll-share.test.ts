/**
 * A batch of Mailer.sendAll gives its connection up after its share (64 items) when another send
 * waits for one: another worker's transient retry, or a `sendmail` of the same Mailer, does not wait
 * for the whole input.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Schedule, Stream } from "effect"
import { Mailer } from "effect-smtp"
import { TestTransport } from "../../src/testing/index.js"
import { withinRealTime } from "../session/support.js"

const N = 2000
function* items(): Generator<Mailer.BulkItem> {
  for (let i = 0; i < N; i++) yield { from: "a@x.test", to: `r${i}@x.test`, message: "Subject: s\r\n\r\nhi\r\n" }
}
const options = { host: "mx.test", security: "none", maxConnections: 1, retry: Schedule.recurs(1) } as const

describe("Mailer.sendAll with fewer connections than sends", () => {
  for (const concurrency of [2, 4]) {
    it.live(`a transient retry (451 once) comes long before the end of ${N} items (concurrency ${concurrency})`, () =>
      Effect.gen(function*() {
        let refusedOnce = false
        const made = yield* TestTransport.make({
          respond: (event) => {
            if (event.stage === "rcpt" && event.recipient === "r0@x.test" && !refusedOnce) {
              refusedOnce = true
              return "451 4.7.1 greylisted, try later"
            }
            return undefined
          }
        })
        const result = yield* withinRealTime(
          Effect.scoped(Effect.gen(function*() {
            const mailer = yield* Mailer.make(options)
            return yield* Stream.runCollect(mailer.sendAll(items(), { concurrency }))
          })).pipe(Effect.provide(made.layer)),
          30000
        )
        assert.isTrue(result._tag === "Some", "hung")
        const outcomes = result._tag === "Some" ? Chunk.toReadonlyArray(result.value) : []
        assert.strictEqual(outcomes.length, N)
        const at = outcomes.findIndex((o) => o.index === 0)
        assert.strictEqual(outcomes[at]._tag, "Sent")
        assert.isBelow(at, 500, `item 0's outcome came at position ${at} of ${N}`)
      }))
  }

  it.live("a sendmail of the same Mailer during a long sendAll is sent before its end", () =>
    Effect.gen(function*() {
      const made = yield* TestTransport.make()
      const order = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make(options)
        const seen: Array<string> = []
        const bulk = yield* Effect.fork(
          Stream.runForEach(mailer.sendAll(items(), { concurrency: 1 }), (o) =>
            Effect.sync(() => seen.push(`${o.index}`)))
        )
        // once the batch is under way
        while (seen.length < 10) {
          yield* Effect.yieldNow()
        }
        yield* mailer.sendmail("a@x.test", "single@x.test", "Subject: one\r\n\r\nhi\r\n")
        seen.push("single")
        yield* Fiber.join(bulk)
        return seen
      })).pipe(Effect.provide(made.layer), (e) =>
        withinRealTime(e, 30000))
      assert.isTrue(order._tag === "Some", "hung")
      const seen = order._tag === "Some" ? order.value : []
      assert.strictEqual(seen.length, N + 1)
      assert.isBelow(seen.indexOf("single"), 500, `the sendmail came at position ${seen.indexOf("single")}`)
    }))
})
