/**
 * sendBatchAll: `sendBatch` as one Effect. Its flights and outcomes are those of sendBatch (the
 * scripted tests of `batch.test.ts` run over both); here what is its own: it fails only when
 * nothing was written, dies when the iterable throws, holds the session until it ends (and lets it
 * go when interrupted), has its own span, and LMTP connections do not have it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, type Layer, Option, Stream } from "effect"
import {
  type LmtpConnection,
  SmtpClient,
  type SmtpConnection,
  type SmtpError,
  type SmtpReply,
  type SmtpTransport
} from "effect-smtp"
import { TestTransport } from "effect-smtp/testing"
import { eventually, guard, makeServerWith } from "../session/support.js"
import { recordingTracer } from "../support/tracer.js"
import { bdatSteps, body, CHUNKING, connectOptions, dataSteps, item, PIPELINING, throwingItem } from "./batchSupport.js"

/** `f` on a connection to the server of `layer`, in a Scope of its own (QUIT when it ends). */
const onConnection = <A, E>(
  layer: Layer.Layer<SmtpTransport.SmtpTransport>,
  f: (smtp: SmtpConnection.Service) => Effect.Effect<A, E>
): Effect.Effect<A, E | SmtpError.SmtpError> =>
  Effect.scoped(Effect.flatMap(SmtpClient.connect(connectOptions), f)).pipe(Effect.provide(layer))

const cases = [
  { name: "with PIPELINING (DATA)", ehlo: PIPELINING, steps: dataSteps },
  { name: "with CHUNKING (BDAT)", ehlo: CHUNKING, steps: bdatSteps },
  { name: "without PIPELINING (one at a time)", ehlo: "250 mx.test", steps: dataSteps }
] as const

for (const c of cases) {
  describe(`sendBatchAll ${c.name}`, () => {
    it.effect("every outcome in input order, in one array; the wire as sendBatch's", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite: true }, {
            steps: [
              { expect: "EHLO client.test", reply: c.ehlo },
              ...c.steps(1),
              ...c.steps(2),
              ...c.steps(3),
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const outcomes = yield* onConnection(server.layer, (smtp) => smtp.sendBatchAll([item(1), item(2), item(3)]))
          assert.deepStrictEqual(
            outcomes.map((o) => `${o.index} ${o._tag} ${o._tag === "Sent" ? o.reply.text : ""}`),
            ["0 Sent queued 1", "1 Sent queued 2", "2 Sent queued 3"]
          )
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        `sendBatchAll ${c.name}`
      ))

    it.effect("an empty iterable: no outcome, nothing but EHLO written", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite: true }, {
            steps: [{ expect: "EHLO client.test", reply: c.ehlo }, { expect: "QUIT", reply: "221 bye" }]
          })
          const outcomes = yield* onConnection(server.layer, (smtp) => smtp.sendBatchAll([]))
          assert.deepStrictEqual(outcomes, [])
          assert.deepStrictEqual(server.flights(), ["EHLO client.test\r\n", "QUIT\r\n"])
        }),
        "an empty sendBatchAll"
      ))

    it.effect("the iterable throws: the Effect dies with it; nothing after it is sent", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite: true }, {
            strict: false,
            steps: [
              { expect: "EHLO client.test", reply: c.ehlo },
              ...c.steps(1),
              ...c.steps(2),
              { expect: "RSET", reply: "250 reset" },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const boom = new Error("the iterable broke")
          const items = {
            *[Symbol.iterator]() {
              yield item(1)
              yield item(2)
              throw boom
            }
          }
          const exit = yield* onConnection(server.layer, (smtp) => Effect.exit(smtp.sendBatchAll(items)))
          assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
          assert.strictEqual(Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined, boom)
          assert.notInclude(server.written(), "r3@x.test")
        }),
        "a throwing iterable"
      ))
  })
}

describe("sendBatchAll fails only when nothing was written", () => {
  it.effect("EHLO and HELO refused: SmtpHeloError, no message written", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: "502 no" },
            { expect: "HELO client.test", reply: "550 go away" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const exit = yield* onConnection(server.layer, (smtp) => Effect.exit(smtp.sendBatchAll([item(1), item(2)])))
        assert.isTrue(Exit.isFailure(exit))
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.strictEqual(Option.getOrUndefined(Option.map(error, (e) => e._tag)), "SmtpHeloError")
        assert.notInclude(server.written(), "MAIL FROM")
      }),
      "a refused greeting"
    ))

  it.effect("the connection dies after the first message's data: Unknown for it, NotSent after, no failure", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: PIPELINING },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<r1@x.test>", reply: "250 ok" },
            { expect: "DATA", reply: "354 go" },
            { expect: `${body(1)}.\r\n`, close: true }
          ]
        })
        const outcomes = yield* onConnection(server.layer, (smtp) => smtp.sendBatchAll([item(1), item(2), item(3)]))
        assert.deepStrictEqual(outcomes.map((o) => `${o.index} ${o._tag}`), ["0 Unknown", "1 NotSent", "2 NotSent"])
      }),
      "a connection closed after the data"
    ))
})

describe("sendBatchAll refuses what it cannot send honestly", () => {
  it.effect("a Stream (from JavaScript): SmtpInvalidInput, nothing written", () =>
    Effect.gen(function*() {
      const server = yield* makeServerWith({ syncWrite: true }, {
        steps: [{ expect: "QUIT", reply: "221 bye" }]
      })
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        const stream = Stream.make(item(1)) as unknown as Iterable<SmtpConnection.BatchItem>
        return yield* Effect.exit(smtp.sendBatchAll(stream))
      })).pipe(Effect.provide(server.layer))
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      assert.strictEqual(Option.getOrUndefined(Option.map(error, (e) => e._tag)), "SmtpInvalidInput")
      assert.deepStrictEqual(server.flights(), ["QUIT\r\n"])
    }))
})

/** What a JavaScript caller may give where a BatchItem belongs. */
const badItems = [
  null,
  42,
  { from: 7, to: "r@x.test", message: "x" },
  { from: "a@x.test", to: [undefined], message: "x" },
  { from: "a@x.test", to: undefined, message: "x" },
  { from: "a@x.test", to: "r@x.test", message: 7 }
] as unknown as ReadonlyArray<SmtpConnection.BatchItem>

const serverKinds = [
  { name: "with CHUNKING (BDAT)", disable: [] },
  { name: "with PIPELINING (DATA)", disable: ["CHUNKING"] },
  { name: "without PIPELINING (one at a time)", disable: ["PIPELINING", "CHUNKING"] }
] as const

for (const kind of serverKinds) {
  describe(`an item that is not a BatchItem, ${kind.name}`, () => {
    for (const via of ["sendBatchAll", "sendBatch"] as const) {
      it.effect(`${via}: that item is NotSent with SmtpInvalidInput, the others are sent`, () =>
        guard(
          Effect.gen(function*() {
            const made = yield* TestTransport.make({ disable: kind.disable })
            const items = [item(1), ...badItems, item(8)]
            const outcomes = yield* onConnection(made.layer, (smtp) =>
              via === "sendBatchAll" ?
                smtp.sendBatchAll(items) :
                Effect.map(Stream.runCollect(smtp.sendBatch(items)), (c) => Array.from(c)))
            assert.deepStrictEqual(
              outcomes.map((o) => `${o.index} ${o._tag}${o._tag === "Sent" ? "" : ` ${o.error._tag}`}`),
              [
                "0 Sent",
                ...badItems.map((_, i) => `${i + 1} NotSent SmtpInvalidInput`),
                `${badItems.length + 1} Sent`
              ]
            )
            // each says what is wrong, and nothing of it was written
            assert.deepStrictEqual(
              outcomes.slice(1, -1).map((o) => o._tag === "Sent" ? "" : o.error.message),
              [
                "A batch item must be an object with from, to and message",
                "A batch item must be an object with from, to and message",
                "The sender address is not a string (nothing was sent)",
                "The recipient address is not a string (nothing was sent)",
                "sendmail needs at least one recipient",
                "A message of a batch must be a string or bytes"
              ]
            )
            assert.deepStrictEqual(
              (yield* made.received).map((m) => m.envelope.to.join()),
              ["r1@x.test", "r8@x.test"]
            )
          }),
          "items that are not BatchItems"
        ))
    }
  })
}

for (const kind of serverKinds) {
  describe(`an iterable read part of the way is closed (a generator's finally runs), ${kind.name}`, () => {
    /** Items without end; `closed` once its finally has run. */
    const endless = () => {
      const state = { read: 0, closed: false }
      function* items(): Generator<SmtpConnection.BatchItem> {
        try {
          for (;;) yield item(++state.read)
        } finally {
          state.closed = true
        }
      }
      return { state, items: items() }
    }

    it.effect("sendBatch: the consumer takes two outcomes and stops", () =>
      guard(
        Effect.gen(function*() {
          const made = yield* TestTransport.make({ disable: kind.disable })
          const { items, state } = endless()
          const outcomes = yield* onConnection(
            made.layer,
            (smtp) => Stream.runCollect(smtp.sendBatch(items).pipe(Stream.take(2)))
          )
          assert.deepStrictEqual(Array.from(outcomes, (o) => `${o.index} ${o._tag}`), ["0 Sent", "1 Sent"])
          assert.isTrue(state.closed)
        }),
        "closed after take"
      ))

    it.effect("sendBatchAll: interrupted", () =>
      guard(
        Effect.gen(function*() {
          const made = yield* TestTransport.make({ disable: kind.disable })
          const { items, state } = endless()
          const reading = yield* Deferred.make<void>()
          const watched = {
            *[Symbol.iterator]() {
              for (const i of items) {
                if (state.read === 5) Deferred.unsafeDone(reading, Exit.void)
                yield i
              }
            }
          }
          yield* onConnection(made.layer, (smtp) =>
            Effect.gen(function*() {
              const fiber = yield* Effect.fork(smtp.sendBatchAll(watched))
              yield* Deferred.await(reading)
              yield* Fiber.interrupt(fiber)
            }))
          assert.isTrue(state.closed)
        }),
        "closed after interruption"
      ))

    it.effect("an iterable read to its end is not closed again; one that throws is not closed; one whose item throws is", () =>
      guard(
        Effect.gen(function*() {
          const made = yield* TestTransport.make({ disable: kind.disable })
          let returns = 0
          const counted = (items: ReadonlyArray<SmtpConnection.BatchItem>, fail: boolean): Iterable<
            SmtpConnection.BatchItem
          > => ({
            [Symbol.iterator]: () => {
              let at = 0
              return {
                next: (): IteratorResult<SmtpConnection.BatchItem> => {
                  if (at < items.length) return { done: false, value: items[at++] }
                  if (fail) throw new Error("the input broke")
                  return { done: true, value: undefined }
                },
                return: (): IteratorResult<SmtpConnection.BatchItem> => {
                  returns++
                  return { done: true, value: undefined }
                }
              }
            }
          })
          const all = yield* onConnection(made.layer, (smtp) => smtp.sendBatchAll(counted([item(1), item(2)], false)))
          const broken = yield* onConnection(
            made.layer,
            (smtp) => Effect.exit(Stream.runCollect(smtp.sendBatch<never, never>(counted([item(3)], true))))
          )
          assert.strictEqual(all.length, 2)
          assert.isTrue(Exit.isFailure(broken) && Cause.isDie(broken.cause))
          assert.strictEqual(returns, 0)
          // an item that throws (its getter) is not the iterator throwing: the iterator is left
          // part of the way and closed, as a for...of whose body throws closes it
          const throwing = throwingItem()
          const died = yield* onConnection(
            made.layer,
            (smtp) => Effect.exit(smtp.sendBatchAll(counted([item(4), throwing, item(6)], false)))
          )
          assert.isTrue(Exit.isFailure(died) && Cause.isDie(died.cause))
          assert.strictEqual(returns, 1)
        }),
        "not closed"
      ))
  })
}

describe("a batch from the fiber consuming a sendBatch of the same connection", () => {
  const consumerRuns = (inner: (smtp: SmtpConnection.Service) => Effect.Effect<unknown, unknown>) =>
    guard(
      Effect.gen(function*() {
        const made = yield* TestTransport.make()
        const exit = yield* onConnection(made.layer, (smtp) =>
          Effect.exit(Stream.runForEach(smtp.sendBatch([item(1)]), () => inner(smtp))))
        // it would wait for the batch, which waits for this consumer: refused at once
        const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
        assert.strictEqual(
          Option.getOrUndefined(Option.map(error, (e) =>
            (e as { _tag: string })._tag)),
          "SmtpInvalidInput"
        )
        assert.deepStrictEqual((yield* made.received).map((m) => m.envelope.to.join()), ["r1@x.test"])
      }),
      "a batch inside a batch's consumer"
    )
  it.effect("sendBatchAll fails at once with SmtpInvalidInput", () =>
    consumerRuns((smtp) => smtp.sendBatchAll([item(2)])))
})

// (a sendBatch run there, or an operation from a fiber the consumer waits for, still waits for
// itself: the lock cannot tell such a fiber from one the consumer does not wait for; README)
describe("a fiber the consumer of a sendBatch forks and does not wait for", () => {
  it.effect("its operation waits for the batch, then runs (it is not refused as the consumer's)", () =>
    guard(
      Effect.gen(function*() {
        const made = yield* TestTransport.make()
        const codes = yield* onConnection(made.layer, (smtp) =>
          Effect.gen(function*() {
            const forked: Array<Fiber.RuntimeFiber<SmtpReply.SmtpReply, SmtpError.SmtpError>> = []
            yield* Stream.runForEach(
              smtp.sendBatch([item(1), item(2)]),
              () => Effect.map(Effect.forkDaemon(smtp.noop), (fiber) => forked.push(fiber))
            )
            return yield* Effect.forEach(forked, (fiber) => Effect.map(Fiber.join(fiber), (reply) => reply.code))
          }))
        assert.deepStrictEqual(codes, [250, 250])
        assert.deepStrictEqual((yield* made.received).map((m) => m.envelope.to.join()), ["r1@x.test", "r2@x.test"])
      }),
      "a forked operation"
    ))
})

describe("sendBatchAll holds the session", () => {
  it.effect("another fiber's operation waits for the batch to end", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: false }, {
          steps: [
            { expect: "EHLO client.test", reply: PIPELINING },
            ...dataSteps(1),
            ...dataSteps(2),
            { expect: "NOOP", reply: "250 noop" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          const batch = yield* Effect.fork(smtp.sendBatchAll([item(1), item(2)]))
          yield* eventually(() => server.written().includes("RCPT TO:<r1@x.test>"), "the batch started")
          const noop = yield* Effect.fork(smtp.noop)
          const outcomes = yield* Fiber.join(batch)
          assert.deepStrictEqual(outcomes.map((o) => o._tag), ["Sent", "Sent"])
          assert.strictEqual((yield* Fiber.join(noop)).code, 250)
        })).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "an operation behind a batch"
    ))

  it.effect("interrupted: the session is let go; the next operation runs", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: PIPELINING },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<r1@x.test>", reply: "250 ok" },
            // DATA goes unanswered: the batch waits until it is interrupted
            { expect: "DATA" }
          ]
        })
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          const batch = yield* Effect.fork(smtp.sendBatchAll([item(1), item(2)]))
          yield* eventually(() => server.written().includes("DATA"), "the first envelope was written")
          yield* Fiber.interrupt(batch)
          // the session is free again: this operation is not left waiting (the connection is
          // closed, since the DATA may have been accepted, so it fails at once)
          return yield* Effect.exit(smtp.noop)
        })).pipe(Effect.provide(server.layer))
        assert.isTrue(Exit.isFailure(exit))
        assert.notInclude(server.written(), body(1))
      }),
      "an interrupted sendBatchAll",
      5000
    ))
})

describe("sendBatchAll's span", () => {
  it.effect("one SmtpConnection.sendBatchAll span under the caller's", () =>
    Effect.gen(function*() {
      const server = yield* makeServerWith({ syncWrite: true }, {
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...dataSteps(1),
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const { spans, tracer } = recordingTracer()
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        return yield* smtp.sendBatchAll([item(1)]).pipe(Effect.withSpan("app"))
      })).pipe(Effect.withTracer(tracer), Effect.provide(server.layer))
      const batch = spans.filter((s) => s.name === "SmtpConnection.sendBatchAll")
      assert.strictEqual(batch.length, 1)
      assert.strictEqual(batch[0].parent, "app")
      assert.isTrue(batch[0].exit !== undefined && Exit.isSuccess(batch[0].exit))
    }))
})

describe("LMTP", () => {
  it.effect("an LMTP connection has no sendBatchAll (nor sendBatch: LMTP answers the data per recipient)", () =>
    Effect.gen(function*() {
      const server = yield* makeServerWith({ syncWrite: true }, {
        steps: [{ expect: "QUIT", reply: "221 bye" }]
      })
      const lmtp = yield* Effect.scoped(Effect.map(
        SmtpClient.connect({ protocol: "lmtp", host: "mx.test", security: "none" }),
        (connection): LmtpConnection.Service => connection
      )).pipe(Effect.provide(server.layer))
      assert.isFalse("sendBatchAll" in lmtp)
      assert.isFalse("sendBatch" in lmtp)
    }))
})
