/**
 * The fault matrix, in memory on the TestClock: every send path × every stage it goes through ×
 * every fault (close, reset, stall, garbage, 421, a 421 cut short), generated from `table.ts` and
 * played by the model server (`model.ts`) over `memoryTransport.ts`. For each case:
 *
 * - the fault really happened at its stage;
 * - the outcome: the error's tag (and its cause's, for SmtpDeliveryUnknown), its reply code, and
 *   `SmtpError.classify` ("unknown" exactly when the end of data had been written and no final
 *   reply came, otherwise "transient"); LMTP's per-recipient Delivery; Mailer's retry (a transient
 *   failure is retried on a new connection and delivered once, an unknown one never retried);
 * - a stall is not cut short before its timeout, and times out at it;
 * - the session is closed afterwards, and the Scope closes without any more clock time (nothing
 *   waits for a dead server, not even up to the close timeout);
 * - nothing is written after the fault (no RSET, no QUIT; a stalled upload may leave one write
 *   blocked, which fails when the connection closes);
 * - nothing leaks: every connection closed by the client, no reader left, no write left blocked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Either, Exit, Fiber, TestClock } from "effect"
import { SmtpTransport } from "../../src/index.js"
import * as Codec from "../../src/internal/command.js"
import * as Engine from "../../src/internal/engine.js"
import * as Transaction from "../../src/internal/transaction.js"
import * as Memory from "./memoryTransport.js"
import { type FaultKind, messageId, type Stage } from "./model.js"
import {
  checkOutcome,
  describeExpected,
  expected,
  faultKinds,
  FROM,
  headerText,
  MESSAGE_ID,
  paths,
  type PathSpec,
  send,
  streamBody,
  TO
} from "./table.js"

const TIMEOUT_MS = 5000
const CLOSE_TIMEOUT_MS = 1000
const connect = {
  host: "mx.test",
  security: "none",
  timeout: `${TIMEOUT_MS} millis`,
  closeTimeout: `${CLOSE_TIMEOUT_MS} millis`
} as const

/** Lets other fibers run until `done()` holds or the rounds run out (no clock moves). */
const settle = (done: () => boolean, rounds = 400) =>
  Effect.gen(function*() {
    for (let i = 0; i < rounds && !done(); i++) yield* Effect.yieldNow()
  })

/** Fails the test instead of hanging it when `effect` takes more than `millis` of real time. */
const realTimeGuard = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string, millis = 5000) =>
  Effect.raceFirst(
    Effect.disconnect(effect),
    Effect.flatMap(
      Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis).unref())),
      () => Effect.dieMessage(`hung: ${what} did not complete within ${millis} ms of real time`)
    )
  )

const runCase = (path: PathSpec, stage: Stage, kind: FaultKind) =>
  Effect.gen(function*() {
    const want = expected(path, stage, kind)
    const transport = yield* Memory.make((i) => ({ ...path.server, ...(i === 0 ? { fault: { stage, kind } } : {}) }))
    const fiber = yield* Effect.fork(
      send(path, stage, { connect, gate: transport.gate, retries: 2 }).pipe(Effect.provide(transport.layer))
    )
    const problems: Array<string> = []
    const done = () => fiber.unsafePoll() !== null
    const fired = () => transport.connections()[0]?.model.fired !== undefined

    yield* settle(() => done() || fired())
    if (!fired()) problems.push(`the fault never happened (the client did not reach the ${stage} stage)`)
    if (kind === "stall") {
      yield* settle(done, 100)
      if (done()) problems.push("a stall ended before any clock time passed")
      yield* TestClock.adjust(`${TIMEOUT_MS - 1} millis`)
      yield* settle(done, 100)
      if (done()) problems.push(`a stall ended before its timeout (${TIMEOUT_MS} ms)`)
      yield* TestClock.adjust("1 millis")
    }
    yield* settle(done, 2000)
    if (!done()) {
      yield* TestClock.adjust(`${CLOSE_TIMEOUT_MS} millis`)
      yield* settle(done, 2000)
      problems.push(
        done() ?
          "the Scope needed the close timeout to close (something waited for a dead server)" :
          "hung: the send and its Scope did not finish within the close timeout"
      )
    }
    if (!done()) {
      yield* Fiber.interrupt(fiber)
      return problems
    }
    const outcome = yield* Fiber.join(fiber)
    problems.push(...checkOutcome(outcome, want))
    if (outcome.sessionClosed === false) problems.push("the session is still open after the fault")

    const connections = transport.connections()
    const first = connections[0]
    if (first !== undefined) {
      const late = first.lateWrites()
      const allowed = kind === "stall" ? late.filter((w) => w.outcome === "blocked").slice(0, 1) : []
      const extra = late.filter((w) => !allowed.includes(w))
      if (extra.length > 0) problems.push(`written after the fault: ${JSON.stringify(extra)}`)
    }
    connections.forEach((c, i) => {
      if (!c.clientClosed()) problems.push(`connection ${i} was not closed by the client`)
      if (c.readers() !== 0) problems.push(`connection ${i}: ${c.readers()} reader(s) still running`)
      if (c.blockedWrites() !== 0) problems.push(`connection ${i}: ${c.blockedWrites()} write(s) still blocked`)
    })

    const deliveries = connections.flatMap((c) => c.model.delivered.map(messageId))
    if (deliveries.some((id) => id !== MESSAGE_ID)) problems.push(`unexpected deliveries: ${deliveries.join(", ")}`)
    if (path.api === "mailer") {
      if (want._tag === "retried") {
        if (connections.length !== 2) problems.push(`expected one retry on a new connection, got ${connections.length}`)
        if (connections[1]?.model.delivered.length !== 1) problems.push("the retry did not deliver the message once")
        if (deliveries.length !== 1) problems.push(`delivered ${deliveries.length} times (expected once)`)
      } else {
        if (connections.length !== 1) problems.push(`retried ${connections.length - 1} time(s): must not be`)
        if (deliveries.length > 1) problems.push(`delivered ${deliveries.length} times`)
      }
    } else if (connections.length !== 1) {
      problems.push(`${connections.length} connections (expected 1)`)
    }
    return problems
  })

describe("fault matrix (in memory, TestClock)", () => {
  for (const path of paths) {
    describe(path.name, () => {
      for (const stage of path.stages) {
        for (const kind of faultKinds) {
          const want = expected(path, stage, kind)
          it.effect(`${stage} / ${kind}: ${describeExpected(want)}`, () =>
            Effect.gen(function*() {
              const problems = yield* realTimeGuard(runCase(path, stage, kind), `${path.name} ${stage} ${kind}`)
              assert.deepStrictEqual(problems, [])
            }))
        }
      }
    })
  }

  it("the matrix covers every path, stage and fault the table lists", () => {
    const cases = paths.reduce((n, p) => n + p.stages.length * faultKinds.length, 0)
    assert.strictEqual(paths.length, 9)
    assert.strictEqual(faultKinds.length, 6)
    assert.strictEqual(cases, 60 * 6)
  })
})

/**
 * The same faults one level down, on the transaction core outside any span. Inside a public
 * operation (always in a span) the engine does not recognise its own write failures (see the
 * report: Effect wraps a failure in a Proxy when a span is current, and `isWriteFailure` looks the
 * error up by identity), so a failure mid-upload surfaces as the write's error. Here it is
 * recognised, which shows what the session would do once that is fixed: a reply that came during
 * the upload is kept (421 → the transaction's reply), and a connection lost after an acknowledged
 * BDAT chunk must never make the 250 of that chunk the final reply (the LAST chunk was never sent).
 */
describe("transaction core outside a span (write failures recognised)", () => {
  const runTransaction = (path: PathSpec, stage: Stage, kind: FaultKind) =>
    Effect.gen(function*() {
      const transport = yield* Memory.make(() => ({ ...path.server, fault: { stage, kind } }))
      const service = yield* Effect.provide(SmtpTransport.SmtpTransport, transport.layer)
      const connection = yield* service.connect({ host: "mx.test", port: 25, timeout: Duration.seconds(5) })
      const engine = yield* Engine.make(connection, {
        debug: 0,
        replyTimeout: () => Duration.seconds(5),
        writeTimeout: Duration.seconds(5)
      })
      yield* engine.greeting
      yield* engine.command(Either.getOrThrow(Codec.encode("EHLO", "client.test")))
      const exit = yield* Effect.exit(Transaction.run(
        {
          engine,
          lmtp: false,
          pipelining: true,
          chunking: path.server.chunking,
          rset: Effect.void,
          onInterrupted() {}
        },
        FROM,
        TO,
        Either.getOrThrow(Codec.encode("MAIL", `FROM:<${FROM}>`)),
        TO.map((r) => Either.getOrThrow(Codec.encode("RCPT", `TO:<${r}>`))),
        { stream: streamBody(headerText(MESSAGE_ID), transport.gate, path.bigStream), bytes: undefined }
      ))
      return { exit, endReceived: transport.connection(0).model.endReceived }
    })

  const dataPath = paths.find((p) => p.name === "sendmail pipelined (DATA)")!
  const streamedPath = paths.find((p) => p.name === "sendmail BDAT streamed")!

  for (const path of [dataPath, streamedPath]) {
    it.scoped(`${path.name}: a 421 during the upload is the transaction's final reply`, () =>
      realTimeGuard(
        Effect.gen(function*() {
          const { exit } = yield* runTransaction(path, "body", "421")
          // either the core returns the 421 as the final reply, or it fails with it (when the end
          // of data never went out): the caller sees SmtpDataError 421 either way
          if (Exit.isSuccess(exit)) {
            const final = exit.value.finals[0]
            assert.strictEqual(Either.isRight(final) ? final.right.code : undefined, 421)
          } else {
            const error = Cause.squash(exit.cause) as { _tag?: string; code?: number }
            assert.strictEqual(error._tag, "SmtpDataError", String(error))
            assert.strictEqual(error.code, 421)
          }
        }),
        "421 during the upload"
      ))
  }

  for (const kind of ["close", "reset", "garbage", "421", "421-cut"] as const) {
    it.scoped(`BDAT streamed, ${kind} after the first chunk's 250, before LAST: no positive final reply`, () =>
      realTimeGuard(
        Effect.gen(function*() {
          const { endReceived, exit } = yield* runTransaction(streamedPath, "chunk", kind)
          assert.isFalse(endReceived, "the server never received LAST")
          if (Exit.isSuccess(exit)) {
            const final = exit.value.finals[0]
            assert.isFalse(
              Either.isRight(final) && final.right.code === 250,
              `the 250 to a non-last chunk was taken as the final reply (${exit.value.endCommand}): a false success`
            )
          }
        }),
        `chunk ${kind}`
      ))
  }
})
