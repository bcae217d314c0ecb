/**
 * sendBatch with DATA keeps one envelope in flight at a time: when a Stream's next chunk comes
 * while a message's end of data is unanswered, the next envelope goes out at once, and the one
 * after it waits for that envelope's replies (it must not ride inside the other message's DATA).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { eventually, guard, makeServerWith } from "../session/support.js"
import { body, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

let lastServer: any
for (const syncWrite of [true, false]) {
  describe(`DATA, two envelopes in flight (syncWrite=${syncWrite})`, () => {
    it.effect("a Stream whose next chunk is pulled while the previous message's end of data is unanswered", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            strict: false,
            steps: [
              { expect: "EHLO client.test", reply: PIPELINING },
              ...dataSteps(1),
              ...dataSteps(2),
              ...dataSteps(3),
              ...dataSteps(4),
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          // the reply to message 2's end of data is late (a real network: any round trip)
          lastServer = server
          yield* server.hold((chunk) => chunk.includes("queued 2"))
          const items = Stream.fromChunks(Chunk.make(item(1), item(2)), Chunk.make(item(3), item(4)))
          const outcomes = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
            const fiber = yield* Effect.fork(Stream.runCollect(smtp.sendBatch(items)))
            yield* eventually(() => server.written().includes("RCPT TO:<r3@x.test>"), "envelope 3 written")
            yield* server.release
            return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
          })).pipe(Effect.provide(server.layer))
          const w = server.written()
          // message 3's data must come right after its 354, before anything else
          assert.isBelow(
            w.indexOf(`${body(3)}.\r\n`),
            w.indexOf("RCPT TO:<r4@x.test>"),
            "envelope 4 written inside message 3's DATA"
          )
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
          assert.deepStrictEqual(outcomes.map((o) => o._tag), ["Sent", "Sent", "Sent", "Sent"])
        }),
        () => "batch " + JSON.stringify(lastServer?.events())
      ))
  })
}
