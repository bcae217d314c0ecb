import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import { makeServerWith } from "../session/support.js"

const CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, ms)))
const SIZE = 700 * 1024
const body = (i: number) => `Subject: ${i}\r\n\r\n` + ("x".repeat(998) + "\r\n").repeat(Math.floor(SIZE / 1000))
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })

describe("BDAT window bytes (1 MiB)", () => {
  for (const syncWrite of [false, true]) {
    it.live(`two messages of 700 KB: the second waits for the first's replies (syncWrite=${syncWrite})`, () =>
      Effect.gen(function*() {
        const steps = (i: number) => [
          ...(i === 1 ? [] : [{ expect: "RSET", reply: "250 reset" }]),
          { expect: /^MAIL FROM:<a@x.test>/, reply: "250 ok" },
          { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
          { expect: /^BDAT \d+ LAST/, reply: `250 queued ${i}` }
        ]
        const server = yield* makeServerWith({ syncWrite }, {
          strict: false,
          steps: [{ expect: "EHLO client.test", reply: CHUNKING }, ...steps(1), ...steps(2), {
            expect: "QUIT",
            reply: "221 bye"
          }]
        })
        // hold every reply after EHLO
        yield* server.hold((chunk) => chunk.startsWith("250 ok"))
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", timeout: "10 seconds" })
          const fiber = yield* Effect.fork(Stream.runCollect(smtp.sendBatch([item(1), item(2)])))
          yield* realSleep(200)
          const mails = (server.written(0).match(/MAIL FROM/g) ?? []).length
          yield* server.release
          const outcomes = yield* Fiber.join(fiber)
          return { mails, outcomes: Chunk.toReadonlyArray(outcomes).map((o) => o._tag) }
        })).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(result.outcomes, ["Sent", "Sent"])
        // 1.4 MB written ahead would exceed the 1 MiB window
        assert.strictEqual(result.mails, 1, "the second message was written before the first's replies")
      }))
  }
})
