/**
 * sendBatch with DATA and a consumer that pauses until the batch stops at 64 untaken outcomes:
 * when it takes them, one envelope is in flight at a time and none rides inside another message's
 * DATA.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { eventually, guard, makeServerWith } from "../session/support.js"
import { connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

const N = 100
let srv: any

describe("DATA, an array and a consumer that pauses (AHEAD reached)", () => {
  it.effect("after the pause, one envelope in flight at a time: none rides inside another message's DATA", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: PIPELINING },
            ...Array.from({ length: N }, (_, k) => dataSteps(k + 1)).flat(),
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        srv = server
        // hold the final reply of the first flight that carries only an end of data (written when
        // the machine stopped at AHEAD): a round trip that is not over yet when the consumer pulls
        yield* server.hold((chunk) => {
          if (!chunk.includes("queued")) return false
          const last = server.events().filter((e) => e.dir === "C").at(-1)
          return last !== undefined && !last.text.includes("MAIL FROM")
        })
        const items = Array.from({ length: N }, (_, k) => item(k + 1))
        const taken = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
          const pull = yield* Stream.toPull(smtp.sendBatch(items))
          let n = (yield* pull).length
          yield* eventually(server.holding, "the machine stopped at AHEAD")
          // the consumer took the outcomes: its step wrote the next envelope behind the held reply
          const w = server.written()
          assert.isAbove(w.lastIndexOf("MAIL FROM"), w.lastIndexOf("\r\n.\r\n"))
          yield* server.release
          while (true) {
            const chunk = yield* Effect.option(pull)
            if (Option.isNone(chunk)) break
            n += chunk.value.length
          }
          return n
        })).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.strictEqual(taken, N)
      }),
      () => "batch " + JSON.stringify(srv?.events().slice(-8)) + " holding=" + srv?.holding()
    ))
})
