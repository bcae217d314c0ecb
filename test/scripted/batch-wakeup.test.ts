/**
 * sendBatch: the consumer may yield between deciding to wait and registering its waiter (Effect
 * yields every `maxOpsBeforeYield` operations); a reply callback that runs in that gap must not
 * leave it waiting forever. Every yield point is tried.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { makeServerWith, withinRealTime } from "../session/support.js"
import { bdatSteps, CHUNKING, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

const N = 3

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dataSteps], ["BDAT", CHUNKING, bdatSteps]] as const) {
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
