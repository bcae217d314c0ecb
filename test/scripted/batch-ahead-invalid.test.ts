import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import { SmtpClient, type SmtpConnection, SmtpTransport } from "../../src/index.js"
import { TestTransport } from "../../src/testing/index.js"

describe("untaken outcomes with many invalid items behind messages in flight", () => {
  for (const chunking of [true, false]) {
    it.live(`at most 128 outcomes held at a time (chunking=${chunking})`, () =>
      Effect.gen(function*() {
        const made = yield* TestTransport.make(chunking ? {} : { disable: ["CHUNKING"] })
        const transport: SmtpTransport.SmtpTransport["Type"] = {
          ...made.transport,
          connect: (o) =>
            Effect.flatMap(made.transport.connect(o), (c) =>
              Effect.map(Effect.scoped(c.socket.writer), (write) => ({
                ...c,
                write: (bytes: Uint8Array) => {
                  const exit = Effect.runSyncExit(write(bytes))
                  return Exit.isSuccess(exit) ? Effect.void : Effect.failCause(exit.cause)
                }
              })))
        }
        // one valid message, then 63 invalid ones, again and again
        const items: Array<SmtpConnection.BatchItem> = Array.from({ length: 64 * 64 }, (_, i) =>
          i % 64 === 0 ?
            { from: "a@x.test", to: `r${i}@x.test`, message: `Subject: ${i}\r\n\r\n${i}\r\n` } :
            { from: "a@x.test", to: [], message: "x" })
        const sizes: Array<number> = []
        yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", timeout: "5 seconds" })
          yield* Stream.runForEachChunk(smtp.sendBatch(items), (chunk) => Effect.sync(() => sizes.push(chunk.length)))
        })).pipe(Effect.provide(Layer.succeed(SmtpTransport.SmtpTransport, transport)))
        assert.strictEqual(sizes.reduce((a, b) => a + b, 0), items.length)
        assert.isAtMost(Math.max(...sizes), 64 * 2, `largest chunk of outcomes: ${Math.max(...sizes)}`)
      }))
  }
})
