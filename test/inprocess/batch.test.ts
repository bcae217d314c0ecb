/**
 * sendBatch with DATA over a real socket to the in-process server, the input a Stream in chunks of
 * 2: every message delivered intact (no message holds another's envelope), one outcome each.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import { TestSmtpServer } from "effect-smtp/testing/node"

const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })
const N = 10

describe("DATA over a real socket to a real server, a Stream in chunks of 2", () => {
  it.scopedLive("every message delivered intact, one honest outcome each", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ disable: ["CHUNKING"] })
      const items = Stream.fromIterable(Array.from({ length: N }, (_, k) => item(k + 1))).pipe(Stream.rechunk(2))
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ ...server.clientOptions, timeout: "3 seconds", chunking: false })
        return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
      })).pipe(Effect.timeout(Duration.seconds(20)))
      const received = yield* server.received
      const text = received.map((r) => new TextDecoder().decode(r.raw))
      assert.deepStrictEqual(outcomes.map((o) => o._tag), Array(N).fill("Sent"))
      assert.isFalse(text.some((t) => t.includes("MAIL FROM")), "a message holds another's envelope")
    }).pipe(Effect.provide(NodeSmtpTransport.layer)), 30_000)
})
