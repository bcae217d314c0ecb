/**
 * sendBatch with a Stream whose next item comes only once the previous outcome was seen (a
 * producer that reacts to outcomes): once nothing is in flight, the outcomes decided are emitted
 * without waiting for the input (a pull runs beside), so the batch never deadlocks.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"

const connectOptions = { host: "mx.test", security: "none", timeout: "10 seconds" } as const
const PIPELINING = "250-mx.test\r\n250 PIPELINING"
const CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })
const dmsg = (i: number) => [
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

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dmsg], ["BDAT", CHUNKING, bmsg]] as const) {
  for (const syncWrite of [true, false]) {
    describe(`${mode} (syncWrite=${syncWrite}): the next item comes after the previous outcome`, () => {
      it.live("each outcome is emitted once nothing is in flight, without waiting for the input", () =>
        Effect.gen(function*() {
          const N = 3
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehlo },
              ...Array.from({ length: N }, (_, k) => steps(k + 1)).flat(),
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const queue = yield* Queue.unbounded<SmtpConnection.BatchItem>()
          yield* Queue.offer(queue, item(1))
          const seen: Array<string> = []
          const result = yield* withinRealTime(
            Effect.scoped(Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              yield* Stream.runForEach(
                smtp.sendBatch(Stream.fromQueue(queue, { shutdown: true })),
                (o) =>
                  Effect.suspend(() => {
                    seen.push(`${o.index} ${o._tag}`)
                    return o.index + 1 < N ? Queue.offer(queue, item(o.index + 2)) : Queue.shutdown(queue)
                  })
              )
            })).pipe(Effect.provide(server.layer)),
            2000
          )
          assert.deepStrictEqual(seen, ["0 Sent", "1 Sent", "2 Sent"])
          assert.isTrue(result._tag === "Some", "hung")
        }))
    })
  }
}
