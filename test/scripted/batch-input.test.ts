/**
 * sendBatch when its input fails: a Stream that fails, an iterable whose item's getter throws
 * (a JavaScript caller). The messages taken before the failure keep their outcomes (a message whose
 * end of data went out is never left without one), then the batch fails with the input's error,
 * or dies with the defect, as `sendmail` would.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { eventually, guard, makeServerWith } from "../session/support.js"
import { body, connectOptions, dataSteps, item, PIPELINING, throwingItem } from "./batchSupport.js"

for (const syncWrite of [false, true]) {
  const suffix = syncWrite ? " (synchronous write)" : ""
  describe(`sendBatch: the input fails${suffix}`, () => {
    it.effect("a Stream fails while a message's end of data is unanswered: its outcome, then the failure", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [{ expect: "EHLO client.test", reply: PIPELINING }, ...dataSteps(1), {
              expect: "QUIT",
              reply: "221 bye"
            }]
          })
          yield* server.hold((chunk) => chunk.includes("queued 1"))
          const seen: Array<string> = []
          const items = Stream.concat(Stream.make(item(1)), Stream.fail("the input failed" as const))
          const exit = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            const fiber = yield* Effect.fork(
              Effect.exit(Stream.runForEach(smtp.sendBatch(items), (o) => Effect.sync(() => seen.push(o._tag))))
            )
            yield* eventually(() => server.written().includes(`${body(1)}.\r\n`), "message 1's data written")
            yield* server.release
            return yield* Fiber.join(fiber)
          })).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(seen, ["Sent"])
          const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          assert.deepStrictEqual(Option.getOrUndefined(failure), "the input failed")
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "input failure"
      ))

    it.effect("an item whose getter throws: the outcomes before it, then the defect", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: PIPELINING },
              ...dataSteps(1),
              ...dataSteps(2),
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          // (an item that is not a BatchItem is that item's NotSent outcome: batch-all.test.ts)
          const bad = throwingItem()
          const seen: Array<string> = []
          const exit = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            return yield* Effect.exit(
              Stream.runForEach(
                smtp.sendBatch([item(1), item(2), bad, item(4)]),
                (o) => Effect.sync(() => seen.push(`${o.index} ${o._tag}`))
              )
            )
          })).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(seen, ["0 Sent", "1 Sent"])
          assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
          assert.notInclude(server.written(), "r4@x.test")
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "throwing item"
      ))
  })
}
