/**
 * Mailer.sendAll through sendBatch when the batch's connection fails: every item gets one outcome,
 * the stream ends normally, and the items read ahead stay few.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, type Layer, Schedule, Stream } from "effect"
import { Mailer, type SmtpTransport } from "effect-smtp"
import { TestTransport } from "../../src/testing/index.js"
import { makeServer, withinRealTime } from "../session/support.js"
import { accepted, EHLO, QUIT } from "./steps.js"

const refused = { strict: false, refuse: true, steps: [] }
const options = { host: "mx.test", security: "none", retry: Schedule.recurs(1), maxConnections: 1 } as const
const item = (from = "a@x.test"): Mailer.BulkItem => ({ from, to: "b@x.test", message: "hi" })

/** The outcomes of `sendAll(items)` as "index tag" (or "error tag"), sorted; fails if it hangs. */
const outcomes = (
  layer: Layer.Layer<SmtpTransport.SmtpTransport>,
  items: Iterable<Mailer.BulkItem>,
  mailerOptions: Mailer.Options = options
) =>
  Effect.gen(function*() {
    const result = yield* withinRealTime(
      Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make(mailerOptions)
        return yield* Stream.runCollect(Stream.either(mailer.sendAll(items, { concurrency: 1 })))
      })).pipe(Effect.provide(layer)),
      5000
    )
    assert.isTrue(result._tag === "Some", "hung")
    return result._tag === "Some" ?
      Chunk.toReadonlyArray(result.value).map((r) =>
        Either.isRight(r) ? `${r.right.index} ${r.right._tag}` : `error ${(r.left as { _tag: string })._tag}`
      ).sort() :
      []
  })

describe("Mailer.sendAll through sendBatch", () => {
  it.live("EHLO refused (421) on the batch's connection: the first item is retried and sent", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(
        { strict: false, steps: [{ expect: "EHLO client.test", reply: "421 4.3.2 busy", close: true }] },
        { strict: false, steps: [EHLO, ...accepted("i0@x.test"), QUIT] }
      )
      assert.deepStrictEqual(yield* outcomes(server.layer, [item("i0@x.test")]), ["0 Sent"])
    }))

  it.live("a connection refused: one Failed outcome per item, not a failure of the whole stream", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(refused, refused, refused)
      assert.deepStrictEqual(yield* outcomes(server.layer, [item("i0@x.test")]), ["0 Failed"])
    }))

  it.live("the same with rateLimit (the single-send path)", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(refused, refused, refused)
      const limited = { ...options, rateLimit: { limit: 100, interval: "1 second" } } as const
      assert.deepStrictEqual(yield* outcomes(server.layer, [item("i0@x.test")], limited), ["0 Failed"])
    }))

  it.live("EHLO and HELO refused: every item gets an outcome, the first of each batch too", () =>
    Effect.gen(function*() {
      const made = yield* TestTransport.make({
        respond: (event) => event.stage === "ehlo" ? "550 5.7.1 go away" : undefined
      })
      const items = [item("i0@x.test"), item("i1@x.test"), item("i2@x.test")]
      assert.deepStrictEqual(
        yield* outcomes(made.layer, items, { ...options, retry: false }),
        ["0 Failed", "1 Failed", "2 Failed"]
      )
    }))

  it.live("after the batch's connection died, the items NotSent are not all held for retry: the input is not drained", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(
        { strict: false, steps: [EHLO, { expect: "MAIL FROM:<a@x.test>", close: true }] },
        { strict: false, steps: [EHLO, ...Array.from({ length: 50 }, () => accepted()).flat()] }
      )
      let read = 0
      function* endless(): Generator<Mailer.BulkItem> {
        for (; read <= 100_000;) {
          read++
          yield item()
        }
      }
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make(options)
          return yield* Stream.runCollect(mailer.sendAll(endless(), { concurrency: 1 }).pipe(Stream.take(1)))
        })).pipe(Effect.provide(server.layer)),
        10000
      )
      assert.isTrue(result._tag === "Some", "hung")
      if (result._tag === "Some") assert.strictEqual(Chunk.toReadonlyArray(result.value).length, 1)
      // bounded read-ahead before the first outcome
      assert.isAtMost(read, 200, `items read before the first outcome: ${read}`)
    }))
})
