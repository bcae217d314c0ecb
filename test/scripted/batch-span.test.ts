/**
 * sendBatch's span, when a tracer is installed: one `SmtpConnection.sendBatch` span under the
 * caller's, ended with the Stream's exit, and the batch's work under it, the reading of its input
 * Stream included, with PIPELINING (the pipelined batch) and without (one message at a time).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { makeServer } from "../session/support.js"
import { recordingTracer } from "../support/tracer.js"
import { bdatSteps, body, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

const cases = [
  {
    name: "with PIPELINING",
    ehlo: PIPELINING,
    steps: [...dataSteps(1), ...dataSteps(2)]
  },
  {
    name: "without PIPELINING",
    ehlo: "250 mx.test",
    steps: [...dataSteps(1), ...dataSteps(2)]
  },
  {
    name: "with CHUNKING",
    ehlo: "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING",
    steps: [...bdatSteps(1), ...bdatSteps(2), { expect: "RSET", reply: "250 reset" }]
  }
]

describe("sendBatch's span", () => {
  for (const c of cases) {
    it.effect(`${c.name}: under the caller's span, the input read under it, ended with the Stream`, () =>
      Effect.gen(function*() {
        const server = yield* makeServer({
          strict: false,
          steps: [{ expect: "EHLO client.test", reply: c.ehlo }, ...c.steps, { expect: "QUIT", reply: "221 bye" }]
        })
        const { spans, tracer } = recordingTracer()
        // each item is made in a span of its own while the batch reads its input
        const input = Stream.mapEffect(Stream.make(1, 2), (i) => Effect.withSpan(Effect.succeed(item(i)), "item"))
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          return yield* Stream.runCollect(smtp.sendBatch(input)).pipe(Effect.withSpan("app"))
        })).pipe(Effect.withTracer(tracer), Effect.provide(server.layer))
        assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map((o) => o._tag), ["Sent", "Sent"])
        assert.include(server.written(), body(2))
        const batch = spans.filter((s) => s.name === "SmtpConnection.sendBatch")
        assert.strictEqual(batch.length, 1)
        assert.strictEqual(batch[0].parent, "app")
        assert.isTrue(batch[0].exit !== undefined && Exit.isSuccess(batch[0].exit))
        const items = spans.filter((s) => s.name === "item")
        assert.deepStrictEqual(items.map((s) => s.parent), ["SmtpConnection.sendBatch", "SmtpConnection.sendBatch"])
      }))
  }

  it.effect("a consumer that stops early ends the span too", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        strict: false,
        steps: [{ expect: "EHLO client.test", reply: PIPELINING }, ...dataSteps(1), ...dataSteps(2)]
      })
      const { spans, tracer } = recordingTracer()
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        return yield* Stream.runCollect(Stream.take(smtp.sendBatch([item(1), item(2)]), 1))
      })).pipe(Effect.withTracer(tracer), Effect.provide(server.layer))
      const batch = spans.find((s) => s.name === "SmtpConnection.sendBatch")
      assert.isDefined(batch)
      assert.isDefined(batch!.exit)
    }))
})
