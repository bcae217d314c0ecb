import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import { makeServerWith } from "../session/support.js"

const PIPELINING = "250-mx.test\r\n250 PIPELINING"
const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })

describe("DATA accepted (354) for a failed envelope", () => {
  for (const syncWrite of [false, true]) {
    it.live(`abandoned with ".", RSET, the next message goes (syncWrite=${syncWrite})`, () =>
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite }, {
          steps: [
            { expect: "EHLO client.test", reply: PIPELINING },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<r1@x.test>", reply: "550 no" },
            { expect: "DATA", reply: "354 go" },
            { expect: ".\r\n", reply: "554 no recipients" },
            { expect: "RSET", reply: "250 reset" },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<r2@x.test>", reply: "250 ok" },
            { expect: "DATA", reply: "354 go" },
            { expect: `${body(2)}.\r\n`, reply: "250 queued 2" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", timeout: "2 seconds" })
          return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch([item(1), item(2)])))
        })).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(outcomes.map((o) => o._tag), ["Refused", "Sent"])
      }))
  }
})
