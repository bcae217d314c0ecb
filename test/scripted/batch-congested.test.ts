/**
 * sendBatch over BDAT when the socket does not take a write at once (Node's write above the
 * high-water mark): the wait for it is run even when the consumer stops, so the write timeout does
 * not later close the idle connection.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream, TestClock } from "effect"
import { SmtpClient } from "effect-smtp"
import { makeServerWith } from "../session/support.js"
import { bdatSteps, CHUNKING, connectOptions, item, realSleep, withWrite } from "./batchSupport.js"

for (const congested of [false, true]) {
  describe(`a write the socket did not take at once (congested=${congested})`, () => {
    it.effect("the consumer stops; the idle connection must stay open", () =>
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: CHUNKING },
            ...Array.from({ length: 300 }, (_, k) => bdatSteps(k + 1)).flat(),
            { expect: "RSET", reply: "250 reset" },
            { expect: "NOOP", reply: "250 ok" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        // Node's write when its buffer is above the high-water mark: the bytes are handed over,
        // the Effect waits for 'drain' (here: at once, when run)
        const layer = withWrite(server.layer, (b, write) => {
          const r = write(b)
          return congested && r === Effect.void ? Effect.yieldNow() : r
        })
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
          yield* Effect.scoped(Effect.gen(function*() {
            const pull = yield* Stream.toPull(smtp.sendBatch(Array.from({ length: 300 }, (_, k) => item(k + 1))))
            yield* pull
            yield* realSleep(100) // replies come; the machine stops writing at AHEAD
            yield* pull // takes them: the step writes the next group and returns
          }))
          yield* realSleep(200) // every owed reply has come
          const closedBefore = yield* smtp.isClosed
          yield* TestClock.adjust("11 seconds")
          const closedAfter = yield* smtp.isClosed
          const noop = yield* Effect.either(smtp.noop)
          return { closedBefore, closedAfter, noop: noop._tag === "Left" ? noop.left : "ok" }
        })).pipe(Effect.provide(layer))
        assert.isFalse(result.closedBefore)
        assert.isFalse(result.closedAfter, "the idle connection was closed by the write timeout")
        assert.strictEqual(result.noop, "ok")
      }))
  })
}
