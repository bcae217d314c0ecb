/**
 * sendBatch's span, when a tracer is installed: one `SmtpConnection.sendBatch` span under the
 * caller's, ended with the Stream's exit, and the batch's work under it, the reading of its input
 * Stream included, with PIPELINING (the pipelined batch) and without (one message at a time).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Option, Stream, Tracer } from "effect"
import { SmtpClient } from "effect-smtp"
import { makeServer } from "../session/support.js"
import { bdatSteps, body, connectOptions, dataSteps, item, PIPELINING } from "./batchSupport.js"

interface Recorded {
  readonly name: string
  readonly parent: string | undefined
  exit: Exit.Exit<unknown, unknown> | undefined
}

/** A tracer that records each span's name, its parent's name and its exit. */
const recordingTracer = (spans: Array<Recorded>) =>
  Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const recorded: Recorded = {
        name,
        parent: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined,
        exit: undefined
      }
      spans.push(recorded)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      return {
        _tag: "Span",
        name,
        spanId: `span-${spans.length}`,
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes: new Map(),
        links,
        sampled: true,
        kind,
        end(endTime, exit) {
          status = { _tag: "Ended", startTime, endTime, exit }
          recorded.exit = exit
        },
        attribute() {},
        event() {},
        addLinks() {}
      }
    },
    context: (f) => f()
  })

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
        const spans: Array<Recorded> = []
        // each item is made in a span of its own while the batch reads its input
        const input = Stream.mapEffect(Stream.make(1, 2), (i) => Effect.withSpan(Effect.succeed(item(i)), "item"))
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          return yield* Stream.runCollect(smtp.sendBatch(input)).pipe(Effect.withSpan("app"))
        })).pipe(Effect.withTracer(recordingTracer(spans)), Effect.provide(server.layer))
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
      const spans: Array<Recorded> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        return yield* Stream.runCollect(Stream.take(smtp.sendBatch([item(1), item(2)]), 1))
      })).pipe(Effect.withTracer(recordingTracer(spans)), Effect.provide(server.layer))
      const batch = spans.find((s) => s.name === "SmtpConnection.sendBatch")
      assert.isDefined(batch)
      assert.isDefined(batch!.exit)
    }))
})
