/**
 * sendBatch with a Stream whose next item comes only once the previous outcome was seen (a
 * producer that reacts to outcomes): once nothing is in flight, the outcomes decided are emitted
 * without waiting for the input (a pull runs beside), so the batch never deadlocks.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"
import { bdatSteps, CHUNKING, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dataSteps], ["BDAT", CHUNKING, bdatSteps]] as const) {
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
