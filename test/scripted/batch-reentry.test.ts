/**
 * An operation on a connection from inside the consumer of its own sendBatch: the session is held
 * by the batch until its Stream ends, and the Stream waits for the consumer, so waiting for the
 * session would hang forever. It is refused at once (SmtpInvalidInput, nothing written); another
 * fiber still waits for the batch to end and then runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"
import { bdatSteps, CHUNKING, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dataSteps], ["BDAT", CHUNKING, bdatSteps]] as const) {
  for (const syncWrite of [true, false]) {
    /** A server that takes one message of the batch, then `after` (QUIT included). */
    const server = (...after: ReadonlyArray<{ readonly expect: string; readonly reply: string }>) =>
      makeServerWith({ syncWrite }, {
        steps: [
          { expect: "EHLO client.test", reply: ehlo },
          ...steps(1),
          ...after,
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
    describe(`${mode} (syncWrite=${syncWrite}): an operation from the batch's own consumer`, () => {
      it.live("is refused with SmtpInvalidInput at once, writing nothing", () =>
        Effect.gen(function*() {
          const wire = yield* server()
          const result = yield* withinRealTime(
            Effect.scoped(Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              return yield* Effect.flip(Stream.runForEach(smtp.sendBatch([item(1)]), () => smtp.noop))
            })).pipe(Effect.provide(wire.layer)),
            2000
          )
          assert.isTrue(result._tag === "Some", "hung")
          if (result._tag === "Some") {
            assert.strictEqual(result.value._tag, "SmtpInvalidInput")
            assert.include(result.value.message, "sendBatch")
          }
          assert.notInclude(wire.written(), "NOOP")
          assert.isTrue(wire.written().endsWith("QUIT\r\n"))
        }))

      it.live("another fiber's operation waits for the batch to end, then runs", () =>
        Effect.gen(function*() {
          const wire = yield* server({ expect: "NOOP", reply: "250 noop" })
          const reply = yield* withinRealTime(
            Effect.scoped(Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              const seen = yield* Deferred.make<void>()
              const other = yield* Effect.fork(Effect.zipRight(Deferred.await(seen), smtp.noop))
              yield* Stream.runForEach(smtp.sendBatch([item(1)]), () => Deferred.succeed(seen, undefined))
              return yield* Fiber.join(other)
            })).pipe(Effect.provide(wire.layer)),
            2000
          )
          assert.deepStrictEqual(Option.map(reply, (r) => r.code), Option.some(250))
        }))
    })
  }
}
