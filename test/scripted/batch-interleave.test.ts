/**
 * sendBatch over BDAT: a large message goes out in several writes made by the consuming fiber;
 * while the socket is congested between those writes, a reply callback must not write the next
 * messages (their bytes would land inside the large message's BDAT chunk): they wait their turn.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"
import { bdatSteps, CHUNKING, connectOptions, realSleep, withWrite } from "./batchSupport.js"

const big = "x".repeat(998) + "\r\n"
const body = (i: number) => `Subject: ${i}\r\n\r\n${i === 3 ? big.repeat(100) : `body ${i}\r\n`}`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })

describe("BDAT, a large message written by the fiber while the socket is congested", () => {
  it.live("no other bytes go out inside its chunk", () =>
    Effect.gen(function*() {
      const N = 5
      const server = yield* makeServerWith({ syncWrite: true }, {
        strict: false,
        steps: [
          { expect: "EHLO client.test", reply: CHUNKING },
          ...Array.from({ length: N }, (_, k) => bdatSteps(k + 1, body)).flat(),
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      // Node's write: the bytes are handed over at once; above the high-water mark the Effect
      // waits for 'drain'
      const layer = withWrite(server.layer, (b, write) => {
        const r = write(b)
        return r === Effect.void ? realSleep(30) : r // every write waits for 'drain'
      })
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          return Chunk.toReadonlyArray(
            yield* Stream.runCollect(smtp.sendBatch(Array.from({ length: N }, (_, k) => item(k + 1))))
          )
        })).pipe(Effect.provide(layer)),
        3000
      )
      assert.deepStrictEqual(server.connection(0).mismatches().map((m) => m.replace(/(x{20,}(\\r\\n)?)+/g, "x…")), [])
      assert.isTrue(result._tag === "Some", "hung")
      if (result._tag === "Some") assert.deepStrictEqual(result.value.map((o) => o._tag), Array(N).fill("Sent"))
    }))
})
