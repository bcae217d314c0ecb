/**
 * BDAT batch, a message larger than 64 KiB: its commands (RSET/MAIL/RCPT/BDAT line) go in one
 * write and its payload in a second. When the first write fails (or times out), the second one,
 * the whole message and its end of data, is never written: the outcome is NotSent, not Unknown.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream, TestClock } from "effect"
import { SmtpClient } from "../../src/index.js"
import { makeServerWith } from "../session/support.js"
import { CHUNKING, connectOptions, withSocketWriter, writeFailure } from "./batchSupport.js"

const big = `Subject: big\r\n\r\n${"x".repeat(100 * 1024)}\r\n`

describe("BDAT batch: a large message whose payload write never happened", () => {
  it.effect("the write of its commands fails: NotSent (its end of data never went out)", () =>
    Effect.gen(function*() {
      const server = yield* makeServerWith({ syncWrite: false }, {
        strict: false,
        steps: [{ expect: "EHLO client.test", reply: CHUNKING }]
      })
      let payloadWrites = 0
      const layer = withSocketWriter(server.layer, (text, chunk, w) => {
        if (text.startsWith("MAIL FROM")) {
          return writeFailure("EPIPE")
        }
        if (text.startsWith("Subject: big")) payloadWrites++
        return w(chunk)
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        return Chunk.toReadonlyArray(
          yield* Stream.runCollect(smtp.sendBatch([{ from: "a@x.test", to: "r1@x.test", message: big }]))
        )
      })).pipe(Effect.provide(layer))
      assert.strictEqual(payloadWrites, 0, "the payload was never written")
      assert.deepStrictEqual(outcomes.map((o) => o._tag), ["NotSent"])
    }))

  it.effect("two large messages, the second's commands write fails: the first Sent or Unknown, the second NotSent", () =>
    Effect.gen(function*() {
      const server = yield* makeServerWith({ syncWrite: false }, {
        strict: false,
        steps: [
          { expect: "EHLO client.test", reply: CHUNKING },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<r1@x.test>", reply: "250 ok" },
          { expect: /^BDAT \d+ LAST/, reply: "250 ok queued" }
        ]
      })
      // each large message is a write group of its own: commands, then payload; the second
      // group's commands start with RSET
      const layer = withSocketWriter(server.layer, (text, chunk, w) =>
        text.startsWith("RSET") ?
          writeFailure("EPIPE") :
          w(chunk))
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        return Chunk.toReadonlyArray(
          yield* Stream.runCollect(smtp.sendBatch([
            { from: "a@x.test", to: "r1@x.test", message: big },
            { from: "a@x.test", to: "r2@x.test", message: big }
          ]))
        )
      })).pipe(Effect.provide(layer))
      // the first message's BDAT LAST went out: Sent if its replies came before the failure, else
      // Unknown; the second one's never went out
      assert.include(["Sent", "Unknown"], outcomes[0]._tag)
      assert.strictEqual(outcomes[1]._tag, "NotSent")
    }))

  it.effect("the write of its commands times out (the `timeout` option): NotSent", () =>
    Effect.gen(function*() {
      const server = yield* makeServerWith({ syncWrite: false }, {
        strict: false,
        steps: [{ expect: "EHLO client.test", reply: CHUNKING }]
      })
      let payloadWrites = 0
      const gate = yield* Effect.makeLatch(false)
      const layer = withSocketWriter(server.layer, (text, chunk, w) => {
        // a congested socket: the write of the commands does not complete; when the socket is
        // destroyed (the timeout), the pending write fails
        if (text.startsWith("MAIL FROM")) {
          return Effect.zipRight(
            gate.await,
            writeFailure("destroyed")
          )
        }
        if (text.startsWith("Subject: big")) payloadWrites++
        return w(chunk)
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "5 seconds" })
        yield* smtp.ehlo()
        const fiber = yield* Effect.fork(
          Stream.runCollect(smtp.sendBatch([{ from: "a@x.test", to: "r1@x.test", message: big }]))
        )
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
        yield* TestClock.adjust("6 seconds")
        yield* gate.open
        return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      })).pipe(Effect.provide(layer))
      assert.strictEqual(payloadWrites, 0, "the payload was never written")
      assert.deepStrictEqual(outcomes.map((o) => o._tag), ["NotSent"])
    }))
})
