import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import { TestTransport } from "../../src/testing/index.js"

const item = (i: number): SmtpConnection.BatchItem => ({
  from: `m${i}@x.test`,
  to: "b@x.test",
  message: `Subject: ${i}\r\n\r\n${i}\r\n`
})

const run = (disable: ReadonlyArray<"PIPELINING">, stopAfter?: number) =>
  Effect.gen(function*() {
    const made = yield* TestTransport.make({ disable })
    let read = 0
    function* items(): Generator<SmtpConnection.BatchItem> {
      for (let i = 0; i < 100; i++) {
        read++
        if (stopAfter === undefined && i === 2) throw new Error("the input threw")
        yield item(i)
      }
    }
    const seen: Array<string> = []
    const exit = yield* Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", timeout: "2 seconds" })
      const stream = smtp.sendBatch(items())
      yield* Stream.runForEach(stopAfter === undefined ? stream : Stream.take(stream, stopAfter), (o) =>
        Effect.sync(() => seen.push(`${o.index} ${o._tag}`)))
    })).pipe(Effect.provide(made.layer), Effect.exit)
    const received = (yield* made.received).map((r) =>
      r.envelope.from
    )
    return {
      seen,
      received,
      read,
      end: Exit.isSuccess(exit) ? "done" : Cause.isDie(exit.cause) ? "defect" : "failure"
    }
  })

describe("sendBatch without PIPELINING reads an iterable as it sends", () => {
  it.live("an iterable that throws after two items: those two are sent first, as with PIPELINING", () =>
    Effect.gen(function*() {
      const pipelined = yield* run([])
      assert.deepStrictEqual(pipelined, {
        seen: ["0 Sent", "1 Sent"],
        received: ["m0@x.test", "m1@x.test"],
        read: 3,
        end: "defect"
      })
      const unpipelined = yield* run(["PIPELINING"])
      assert.deepStrictEqual(unpipelined, pipelined)
    }))

  it.live("a consumer that takes one outcome: the items read beyond those sent are few", () =>
    Effect.gen(function*() {
      const unpipelined = yield* run(["PIPELINING"], 1)
      assert.isAtMost(
        unpipelined.read - unpipelined.received.length,
        2,
        `read ${unpipelined.read}, sent ${unpipelined.received.length}`
      )
    }))
})
