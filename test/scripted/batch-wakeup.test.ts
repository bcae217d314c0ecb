/**
 * sendBatch: the consumer may yield between deciding to wait and registering its waiter (Effect
 * yields every `maxOpsBeforeYield` operations); a reply callback that runs in that gap must not
 * leave it waiting forever. Every yield point is tried.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"

const connectOptions = { host: "mx.test", security: "none" } as const
const PIPELINING = "250-mx.test\r\n250 PIPELINING"
const CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })
const msg = (i: number) => [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: `${body(i)}.\r\n`, reply: `250 queued ${i}` }
]
const bmsg = (i: number) => [
  ...(i === 1 ? [] : [{ expect: "RSET", reply: "250 reset" }]),
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: `BDAT ${body(i).length} LAST\r\n${body(i)}`, reply: `250 queued ${i}` }
]
const N = 3

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, msg], ["BDAT", CHUNKING, bmsg]] as const) {
  for (const syncWrite of [true, false]) {
    describe(`lost wake-up (${mode}, syncWrite=${syncWrite})`, () => {
      it.live("the consumer yields between deciding to wait and registering its waiter", () =>
        Effect.gen(function*() {
          let hangs = 0
          const runs = 30
          for (let run = 0; run < runs; run++) {
            const server = yield* makeServerWith({ syncWrite }, {
              strict: false,
              steps: [
                { expect: "EHLO client.test", reply: ehlo },
                ...Array.from({ length: N }, (_, k) => steps(k + 1)).flat(),
                { expect: "QUIT", reply: "221 bye" }
              ]
            })
            const result = yield* withinRealTime(
              Effect.scoped(Effect.gen(function*() {
                const smtp = yield* SmtpClient.connect(connectOptions)
                return Chunk.toReadonlyArray(
                  yield* Stream.runCollect(smtp.sendBatch(Array.from({ length: N }, (_, k) => item(k + 1))))
                )
              })).pipe(Effect.provide(server.layer), Effect.withMaxOpsBeforeYield(20 + run)),
              500
            )
            if (Option.isNone(result)) hangs++
            else assert.deepStrictEqual(result.value.map((o) => o._tag), Array(N).fill("Sent"))
          }
          assert.strictEqual(hangs, 0, `${hangs} of ${runs} runs hung`)
        }), 120_000)
    })
  }
}
