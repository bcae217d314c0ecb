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
import { CHUNKING, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

const bdatOne = (i: number) => [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: `BDAT ${item(i).message.length} LAST\r\n${item(i).message}`, reply: `250 queued ${i}` }
]

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dataSteps], ["BDAT", CHUNKING, bdatOne]] as const) {
  for (const syncWrite of [true, false]) {
    describe(`${mode} (syncWrite=${syncWrite}): an operation from the batch's own consumer`, () => {
      it.live("is refused with SmtpInvalidInput at once, writing nothing", () =>
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehlo },
              ...steps(1),
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const result = yield* withinRealTime(
            Effect.scoped(Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              return yield* Effect.flip(Stream.runForEach(smtp.sendBatch([item(1)]), () => smtp.noop))
            })).pipe(Effect.provide(server.layer)),
            2000
          )
          assert.isTrue(result._tag === "Some", "hung")
          if (result._tag === "Some") {
            assert.strictEqual(result.value._tag, "SmtpInvalidInput")
            assert.include(result.value.message, "sendBatch")
          }
          assert.notInclude(server.written(), "NOOP")
          assert.isTrue(server.written().endsWith("QUIT\r\n"))
        }))

      it.live("another fiber's operation waits for the batch to end, then runs", () =>
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehlo },
              ...steps(1),
              { expect: "NOOP", reply: "250 noop" },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const reply = yield* withinRealTime(
            Effect.scoped(Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              const seen = yield* Deferred.make<void>()
              const other = yield* Effect.fork(Effect.zipRight(Deferred.await(seen), smtp.noop))
              yield* Stream.runForEach(smtp.sendBatch([item(1)]), () => Deferred.succeed(seen, undefined))
              return yield* Fiber.join(other)
            })).pipe(Effect.provide(server.layer)),
            2000
          )
          assert.deepStrictEqual(Option.map(reply, (r) => r.code), Option.some(250))
        }))
    })
  }
}
