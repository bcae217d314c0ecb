/**
 * Mailer.sendAll through sendBatch when the batch's connection fails: every item gets one outcome,
 * the stream ends normally, and the items read ahead stay few.
 */
import { Socket } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, type Layer, Schedule, Stream } from "effect"
import { Mailer, type SmtpTransport } from "effect-smtp"
import { TestTransport } from "../../src/testing/index.js"
import { withSocket, withSocketWriter } from "../scripted/batchSupport.js"
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

  /** A transport whose writer dies once, after writing message 0's end of data (a bug of a transport). */
  const diesAfterEndOfData = (layer: Layer.Layer<SmtpTransport.SmtpTransport>) => {
    const state = { died: false }
    return {
      state,
      layer: withSocketWriter(layer, (text, chunk, write) => {
        if (state.died || !text.startsWith("hi\r\n.\r\n")) return write(chunk)
        state.died = true
        return Effect.zipRight(write(chunk), Effect.dieMessage("transport bug"))
      })
    }
  }

  for (
    const input of [
      // (taken by the batch when it dies: 0 written to its end of data, 1's envelope with it, and 2
      // prepared to ride with 1's end of data; 3 waits in the Mailer's input queue)
      { kind: "a Stream", asStream: true, taken: 3 },
      { kind: "an iterable", asStream: false, taken: 3 }
    ] as const
  ) {
    it.live(`a defect in the batch after an end of data went out (${input.kind}): the items it took are Unknown, none sent again`, () =>
      Effect.gen(function*() {
        const froms = Array.from({ length: input.taken + 1 }, (_, i) => `i${i}@x.test`)
        const untaken = froms[input.taken]
        const server = yield* makeServer(
          { strict: false, steps: [EHLO, ...froms.slice(0, input.taken).flatMap((from) => accepted(from)), QUIT] },
          { strict: false, steps: [EHLO, ...accepted(untaken), QUIT] }
        )
        const dying = diesAfterEndOfData(server.layer)
        const items = froms.map((from) => item(from))
        const result = yield* withinRealTime(
          Effect.scoped(Effect.gen(function*() {
            const mailer = yield* Mailer.make(options)
            return yield* Stream.runCollect(
              mailer.sendAll(input.asStream ? Stream.fromIterable(items) : items, { concurrency: 1 })
            )
          })).pipe(Effect.provide(dying.layer)),
          5000
        )
        assert.isTrue(dying.state.died)
        assert.isTrue(result._tag === "Some", "hung")
        if (result._tag !== "Some") return
        const byIndex = new Map(Chunk.toReadonlyArray(result.value).map((o) => [o.index, o]))
        assert.strictEqual(byIndex.size, froms.length)
        // the batch had taken the first messages: which of them went out the Mailer cannot know
        // after a defect (0 did, up to its end of data), and sent again one could be delivered twice
        for (let i = 0; i < input.taken; i++) {
          const outcome = byIndex.get(i)!
          assert.strictEqual(outcome._tag, "Failed", `message ${i}`)
          if (outcome._tag === "Failed") {
            assert.strictEqual(outcome.disposition, "unknown")
            assert.strictEqual(outcome.error._tag, "SmtpDeliveryUnknown")
            if (outcome.error._tag === "SmtpDeliveryUnknown") {
              assert.strictEqual(outcome.error.during, "in a sendBatch that died with a defect")
              assert.include(String(outcome.error.cause), "transport bug")
              // a message after 0 may never have been written: the text does not claim its end of data was
              assert.strictEqual(outcome.error.endOfData, "unknown")
              assert.strictEqual(
                outcome.error.message,
                "Delivery unknown: the session stopped in a sendBatch that died with a defect, perhaps after " +
                  "the end of the data was sent; the server may have accepted the message (a retry could deliver it twice)"
              )
            }
          }
        }
        // the message not taken yet goes on a new connection (the one the defect stopped is not
        // reused); no envelope was written twice in all (those taken after 0, perhaps not at all)
        assert.strictEqual(byIndex.get(input.taken)!._tag, "Sent")
        const wire = server.written(0) + server.written(1)
        const mails = (from: string) => wire.split(`MAIL FROM:<${from}>`).length - 1
        assert.strictEqual(mails("i0@x.test"), 1)
        for (const from of froms.slice(1, input.taken)) assert.isAtMost(mails(from), 1, from)
        assert.strictEqual(mails(untaken), 1)
        assert.include(server.written(0), "MAIL FROM:<i0@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nhi\r\n.\r\n")
      }))
  }

  for (const holdAt of [5, 20, 33]) {
    it.live(`with BDAT, the connection lost in a long batch (at message ${holdAt}): at most 16 messages without a known outcome, the rest sent on a new connection`, () =>
      Effect.gen(function*() {
        const made = yield* TestTransport.make()
        const froms = Array.from({ length: 120 }, (_, i) => `i${i}@x.test`)
        const reset = yield* Deferred.make<void>()
        let held = false
        const written = new Set<string>()
        // on the first connection, the writes from the one with message `holdAt`'s envelope on
        // never reach the server (no reply comes back), and 50 ms later the connection is reset
        const layer = withSocket(made.layer, (socket, connection) =>
          connection > 0 ? socket : Socket.Socket.of({
            ...socket,
            writer: Effect.map(socket.writer, (write) => (chunk: Uint8Array | string | Socket.CloseEvent) => {
              if (chunk instanceof Uint8Array) {
                const text = new TextDecoder().decode(chunk)
                for (const m of text.matchAll(/MAIL FROM:<(i\d+@x\.test)>/g)) written.add(m[1])
                if (!held && text.includes(`MAIL FROM:<i${holdAt}@x.test>`)) {
                  held = true
                  setTimeout(() => Deferred.unsafeDone(reset, Exit.void), 50)
                }
              }
              return held ? Effect.void : write(chunk)
            }),
            run: (handler, options) =>
              Effect.raceFirst(
                socket.run(handler, options),
                Effect.zipRight(
                  Deferred.await(reset),
                  Effect.fail(new Socket.SocketGenericError({ reason: "Read", cause: "connection reset" }))
                )
              )
          }))
        const result = yield* withinRealTime(
          Effect.scoped(Effect.gen(function*() {
            const mailer = yield* Mailer.make({ ...options, retry: false })
            return yield* Stream.runCollect(mailer.sendAll(froms.map((from) => item(from)), { concurrency: 1 }))
          })).pipe(Effect.provide(layer)),
          5000
        )
        assert.isTrue(held)
        assert.isTrue(result._tag === "Some", "hung")
        if (result._tag !== "Some") return
        const outcomes = Chunk.toReadonlyArray(result.value)
        assert.deepStrictEqual(outcomes.map((o) => o.index).sort((a, b) => a - b), froms.map((_, i) => i))
        const received = (yield* made.received).map((r) => r.envelope.from)
        for (const from of froms) assert.isAtMost(received.filter((f) => f === from).length, 1, from)
        const unknown = outcomes.filter((o) => o._tag === "Failed" && o.disposition === "unknown")
        // a batch writes ahead at most 16 messages whose outcome the Mailer has not reported: those are
        // all a lost connection can leave without a known outcome (a sendBatch of its own writes 64)
        assert.isAtMost(unknown.length, 16)
        assert.isAbove(unknown.length, 0)
        for (const outcome of outcomes) {
          if (outcome._tag === "Sent") assert.include(received, froms[outcome.index])
          else assert.oneOf(outcome.disposition, ["unknown", "transient"], JSON.stringify(outcome))
        }
        // what failed with the connection had been written on it: the items the batch had not
        // written were not failed with it (retry: false), a new connection sent them
        assert.deepStrictEqual(
          outcomes.filter((o) => o._tag === "Failed" && !written.has(froms[o.index])).map((o) => o.index),
          []
        )
      }))
  }

  it.live("with BDAT, an early stop: the messages sent past the outcomes taken stay few", () =>
    Effect.gen(function*() {
      const made = yield* TestTransport.make()
      const froms = Array.from({ length: 300 }, (_, i) => `i${i}@x.test`)
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make(options)
          return yield* Stream.runCollect(
            mailer.sendAll(froms.map((from) => item(from)), { concurrency: 1 }).pipe(Stream.take(5))
          )
        })).pipe(Effect.provide(made.layer)),
        5000
      )
      assert.isTrue(result._tag === "Some", "hung")
      const received = (yield* made.received).length
      // past the 5 taken: the outcomes decided and not yet taken (a chunk of up to 16 waiting for
      // the consumer, one in its hands) and the batch's messages in flight (16 at most)
      assert.isAtMost(received, 5 + 16 + 16 + 16, `${received} delivered`)
    }))

  it.live("with BDAT, the writer dying after the write of the fourth message: each message delivered at most once, an early stop ends", () =>
    Effect.gen(function*() {
      const froms = [0, 1, 2, 3, 4].map((i) => `i${i}@x.test`)
      for (const take of [1, 5]) {
        const made = yield* TestTransport.make()
        let died = false
        const layer = withSocketWriter(made.layer, (text, chunk, write) => {
          if (died || !text.includes("MAIL FROM:<i3@x.test>")) return write(chunk)
          died = true
          return Effect.zipRight(write(chunk), Effect.dieMessage("transport bug"))
        })
        const result = yield* withinRealTime(
          Effect.scoped(Effect.gen(function*() {
            const mailer = yield* Mailer.make(options)
            return yield* Stream.runCollect(
              mailer.sendAll(froms.map((from) => item(from)), { concurrency: 1 }).pipe(Stream.take(take))
            )
          })).pipe(Effect.provide(layer)),
          5000
        )
        assert.isTrue(died)
        assert.isTrue(result._tag === "Some", `hung (take ${take})`)
        if (result._tag !== "Some") continue
        const outcomes = Chunk.toReadonlyArray(result.value)
        assert.strictEqual(outcomes.length, take)
        const received = (yield* made.received).map((r) => r.envelope.from)
        for (const from of froms) assert.isAtMost(received.filter((f) => f === from).length, 1, from)
        for (const outcome of outcomes) {
          const delivered = received.includes(froms[outcome.index])
          // Sent only when delivered; a message of the stopped batch is Unknown, delivered or not
          if (outcome._tag === "Sent") assert.isTrue(delivered)
          else assert.strictEqual(outcome.disposition, "unknown", JSON.stringify(outcome))
        }
      }
    }))
})
