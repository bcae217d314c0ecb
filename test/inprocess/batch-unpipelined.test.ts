import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import { TestTransport } from "../../src/testing/index.js"

const run = (disable: ReadonlyArray<"PIPELINING">) =>
  Effect.gen(function*() {
    const made = yield* TestTransport.make({ disable })
    const items: Array<SmtpConnection.BatchItem> = [
      { from: "a@x.test", to: "b@x.test", message: "Subject: 0\r\n\r\n0\r\n" },
      { from: "a@x.test", to: "b@x.test", message: 42 as unknown as string },
      { from: "a@x.test", to: "b@x.test", message: "Subject: 2\r\n\r\n2\r\n" }
    ]
    const exit = yield* Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", timeout: "2 seconds" })
      return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
    })).pipe(Effect.provide(made.layer), Effect.exit)
    return Exit.isSuccess(exit)
      ? exit.value.map((o) => `${o.index} ${o._tag}`)
      : [Cause.pretty(exit.cause).split("\n")[0]]
  })

describe("an item whose message is not a string or bytes", () => {
  it.live("pipelined and not: the same outcomes (NotSent for it, the others sent)", () =>
    Effect.gen(function*() {
      const pipelined = yield* run([])
      const unpipelined = yield* run(["PIPELINING"])
      assert.deepStrictEqual(pipelined, ["0 Sent", "1 NotSent", "2 Sent"])
      assert.deepStrictEqual(unpipelined, pipelined)
    }))
})
