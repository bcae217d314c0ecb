/**
 * sendBatch with a Stream whose chunk comes while replies are owed (the pull runs beside them, and
 * a reply callback asks for more meanwhile): the items of that chunk are all taken, in order,
 * before the next pull; every item has exactly one outcome.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"
import { CHUNKING, connectOptions, item, PIPELINING, realSleep } from "./batchSupport.js"

const dmsg = (i: number) => [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: /^RCPT TO:/, reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: /^Subject/, reply: `250 queued ${i}` }
]
const bmsg = (i: number) => [
  ...(i === 1 ? [] : [{ expect: "RSET", reply: "250 reset" }]),
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: /^RCPT TO:/, reply: "250 ok" },
  { expect: /^BDAT \d+ LAST/, reply: `250 queued ${i}` }
]
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => item(a + k))

for (const [mode, ehlo, steps, M] of [["DATA", PIPELINING, dmsg, 6], ["BDAT", CHUNKING, bmsg, 100]] as const) {
  describe(`${mode}: a chunk pulled beside the replies`, () => {
    it.live("every item has exactly one outcome, in order", () =>
      Effect.gen(function*() {
        const N = M + 1
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: ehlo },
            ...Array.from({ length: N }, (_, k) => steps(k + 1)).flat(),
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        // chunk [1], then (100 ms later) [2..M], then [N]
        const items = Stream.concat(
          Stream.make(item(1)),
          Stream.concat(
            Stream.unwrap(Effect.as(realSleep(100), Stream.fromChunk(Chunk.fromIterable(range(2, M))))),
            Stream.make(item(N))
          )
        )
        // the reply to message 2's end of data is late
        yield* server.hold((chunk) => chunk.includes("queued 2"))
        const result = yield* withinRealTime(
          Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            const fiber = yield* Effect.fork(Stream.runCollect(smtp.sendBatch(items)))
            yield* realSleep(300) // the chunk [2..M] came while replies were owed
            yield* server.release
            return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
          })).pipe(Effect.provide(server.layer)),
          3000
        )
        assert.isTrue(result._tag === "Some", "hung")
        const outcomes = result._tag === "Some" ? result.value : []
        const rcpts = (server.written().match(/RCPT TO:<r(\d+)@/g) ?? []).map((s) => s.slice(10, -1))
        assert.deepStrictEqual(rcpts, Array.from({ length: N }, (_, k) => String(k + 1)), "recipients written")
        assert.deepStrictEqual(outcomes.map((o) => `${o.index} ${o._tag}`), range(1, N).map((_, k) => `${k} Sent`))
      }))
  })
}
