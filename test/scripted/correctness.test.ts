/**
 * Regressions for the outside correctness campaign: the outcome after the end of data, stray
 * replies, a credential in error text, unsolicited floods, and DATA writes of bounded size.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Option, Schema, Stream, TestClock } from "effect"
import { Mailer, SmtpClient, SmtpError } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import { captureLogs, makeServer } from "../session/support.js"

const EHLO_CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
const EHLO_PIPELINING = "250-mx.test\r\n250 PIPELINING"
const MESSAGE = "Subject: hi\r\n\r\nhello\r\n"
const BDAT_LAST = `BDAT ${MESSAGE.length} LAST\r\n${MESSAGE}`
const connectOptions = { host: "mx.test", security: "none" } as const

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) throw new Error(`expected a typed failure: ${Cause.pretty(exit.cause)}`)
  return error.value
}

const send = (server: { readonly layer: ScriptedTransport.ScriptedTransport["layer"] }, message = MESSAGE) =>
  Effect.scoped(
    Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.sendmail("a@x.test", "b@x.test", message))
  ).pipe(Effect.exit, Effect.provide(server.layer))

describe("after the end of data the outcome is unknown", () => {
  // one flight: MAIL, RCPT and BDAT LAST with the message; the fault comes before any reply
  for (const [name, last] of [["closes", { close: true }], ["stays silent", {}]] as const) {
    it.effect(`BDAT in one flight, the server ${name} before any reply: SmtpDeliveryUnknown`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedTransport.make({
          steps: [
            { expect: "EHLO client.test", reply: EHLO_CHUNKING },
            { expect: "MAIL FROM:<a@x.test>" },
            { expect: "RCPT TO:<b@x.test>" },
            { expect: BDAT_LAST, ...last }
          ]
        })
        const fiber = yield* Effect.fork(send(server))
        yield* TestClock.adjust("11 minutes")
        const error = failure(yield* fiber.await.pipe(Effect.flatten))
        assert.strictEqual(error._tag, "SmtpDeliveryUnknown")
        assert.strictEqual(SmtpError.classify(error), "unknown")
        assert.isFalse(Mailer.isRetryable(error))
        // the cause names the first unanswered reply, as before
        const cause = (error as SmtpError.SmtpDeliveryUnknown).cause as SmtpError.SmtpError
        assert.include(["SmtpServerDisconnected", "SmtpTimeout"], cause._tag)
        assert.include(error.message, "may have accepted the message")
      }))
  }

  it.effect("BDAT in one flight: Mailer does not send it again after a close before any reply", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(
        {
          steps: [
            { expect: "EHLO client.test", reply: EHLO_CHUNKING },
            { expect: "MAIL FROM:<a@x.test>" },
            { expect: "RCPT TO:<b@x.test>" },
            { expect: BDAT_LAST, close: true }
          ]
        },
        {
          steps: [
            { expect: "EHLO client.test", reply: EHLO_CHUNKING },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
            { expect: BDAT_LAST, reply: "250 queued" },
            { expect: "QUIT", reply: "221 bye" }
          ],
          // there for a second attempt to find, which must not happen
          strict: false
        }
      )
      const exit = yield* Effect.scoped(
        Effect.flatMap(Mailer.make(connectOptions), (mailer) => mailer.sendmail("a@x.test", "b@x.test", MESSAGE))
      ).pipe(Effect.exit, Effect.provide(server.layer))
      assert.strictEqual(failure(exit)._tag, "SmtpDeliveryUnknown")
      assert.strictEqual(server.connections().length, 1, "never a second attempt: it could deliver twice")
    }))

  it.effect("BDAT in one flight, MAIL refused then a close: refused, not unknown (nothing can have been accepted)", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: EHLO_CHUNKING },
          { expect: "MAIL FROM:<a@x.test>", reply: "550 5.7.1 no" },
          { expect: "RCPT TO:<b@x.test>", reply: "503 5.5.1 no MAIL" },
          { expect: BDAT_LAST, close: true }
        ]
      })
      const error = failure(yield* send(server))
      assert.strictEqual(error._tag, "SmtpSenderRefused")
      assert.strictEqual(SmtpError.classify(error), "permanent")
    }))

  it.effect("pipelined DATA: a close after the final dot is unknown, a close during the upload is transient", () =>
    Effect.gen(function*() {
      const afterDot = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: EHLO_PIPELINING },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, close: true }
        ]
      })
      const unknown = failure(yield* send(afterDot))
      assert.strictEqual(unknown._tag, "SmtpDeliveryUnknown")

      // a Stream message: the server closes once it has the first part
      const duringUpload = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: EHLO_PIPELINING },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go", close: true }
        ]
      })
      const parts = Stream.fromIterable(["Subject: hi\r\n", "\r\n", "hello\r\n"]).pipe(
        Stream.map((s) => new TextEncoder().encode(s)),
        Stream.rechunk(1),
        Stream.tap(() => Effect.yieldNow())
      )
      const exit = yield* Effect.scoped(
        Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.sendmail("a@x.test", "b@x.test", parts))
      ).pipe(Effect.exit, Effect.provide(duringUpload.layer))
      const transient = failure(exit)
      assert.strictEqual(transient._tag, "SmtpServerDisconnected")
      assert.strictEqual(SmtpError.classify(transient), "transient")
      assert.notInclude(duringUpload.written(), ".\r\n", "the end of data was never written")
    }))

  it.effect("the public data(): a close after the final dot is unknown", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250 mx.test" },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, close: true }
        ]
      })
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        yield* smtp.ehlo()
        yield* smtp.mail("a@x.test")
        yield* smtp.rcpt("b@x.test")
        return yield* smtp.data(MESSAGE)
      })).pipe(Effect.exit, Effect.provide(server.layer))
      assert.strictEqual(failure(exit)._tag, "SmtpDeliveryUnknown")
    }))
})

describe("a reply no command asked for", () => {
  it.effect("a stray 250 after the EHLO reply never turns a 554 at BDAT LAST into a success", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: `${EHLO_CHUNKING}\r\n250 stray` },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: BDAT_LAST, reply: "554 5.7.1 rejected" },
          { expect: "QUIT", reply: "221 bye" }
        ],
        // the stray reply puts the stream out of step: the rest is deliberately never played
        strict: false
      })
      const error = failure(yield* send(server))
      assert.strictEqual(error._tag, "SmtpProtocolError")
      assert.include(error.message, "Unsolicited reply")
      assert.notInclude(server.written(), "MAIL FROM", "nothing more is sent on a stream out of step")
    }))

  it.effect("a flood of replies nobody asked for ends in a protocol error; NOOP never gets a stale 250", () =>
    Effect.gen(function*() {
      const flood = Array.from({ length: 2000 }, () => "250 ok\r\n")
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "EHLO client.test", reply: ["250 mx.test\r\n", ...flood] }]
      })
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        yield* smtp.ehlo()
        yield* Effect.yieldNow()
        return yield* smtp.noop
      })).pipe(Effect.exit, Effect.provide(server.layer))
      assert.strictEqual(failure(exit)._tag, "SmtpProtocolError")
      assert.notInclude(server.written(), "NOOP")
    }))

  it.effect("a partial reply nobody asked for is bounded too: a protocol error past 4 KiB", () =>
    Effect.gen(function*() {
      const lines = Array.from({ length: 80 }, (_, i) => `250-line ${i} ${"x".repeat(60)}\r\n`)
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "EHLO client.test", reply: ["250 mx.test\r\n", ...lines] }]
      })
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        yield* smtp.ehlo()
        yield* Effect.yieldNow()
        return yield* smtp.noop
      })).pipe(Effect.exit, Effect.provide(server.layer))
      const error = failure(exit)
      assert.strictEqual(error._tag, "SmtpProtocolError")
      assert.include(error.message, "Unsolicited data")
    }))

  it.effect("a 421 may come unasked: the connection is closed, the next operation says so", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "EHLO client.test", reply: "250 mx.test\r\n421 4.3.2 shutting down" }]
      })
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        yield* smtp.ehlo()
        yield* Effect.yieldNow()
        return yield* smtp.noop
      })).pipe(Effect.exit, Effect.provide(server.layer))
      assert.strictEqual(failure(exit)._tag, "SmtpServerDisconnected")
    }))
})

describe("a credential given to docmd appears nowhere", () => {
  const user = "dXNlckBleGFtcGxlLmNvbQ==" // base64 of the user name
  const password = "czNjcjN0LXBhc3N3b3Jk" // base64 of the password
  for (const [name, last] of [["drops", { close: true }], ["stalls", {}]] as const) {
    it.effect(`manual AUTH LOGIN, the server ${name} before the password's reply`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedTransport.make({
          steps: [
            { expect: "EHLO client.test", reply: "250-mx.test\r\n250 AUTH LOGIN" },
            { expect: "AUTH LOGIN", reply: "334 VXNlcm5hbWU6" },
            { expect: user, reply: "334 UGFzc3dvcmQ6" },
            { expect: password, ...last }
          ]
        })
        const logs = captureLogs()
        const fiber = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...connectOptions, debug: 1 })
          yield* smtp.ehlo()
          yield* smtp.docmd("AUTH", "LOGIN")
          yield* smtp.docmd(user)
          return yield* smtp.docmd(password)
        })).pipe(Effect.exit, Effect.provide(server.layer), logs.provide, Effect.fork)
        yield* TestClock.adjust("6 minutes")
        const exit = yield* fiber.await.pipe(Effect.flatten)
        const error = failure(exit)
        const texts = [
          error.message,
          String(error),
          JSON.stringify(error),
          JSON.stringify(Schema.encodeSync(SmtpError.SmtpError)(error)),
          Cause.pretty(exit._tag === "Failure" ? exit.cause : Cause.empty),
          ...logs.lines
        ]
        for (const text of texts) {
          assert.notInclude(text, password)
          assert.notInclude(text, password.toUpperCase())
          assert.notInclude(text, user)
          assert.notInclude(text, user.toUpperCase())
        }
        assert.include(error.message, "AUTH")
      }))
  }

  it.effect("an unknown docmd verb is not echoed in errors", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "XSECRET-TOKEN-1234 arg", close: true }]
        // the second session only shows the client-side refusal (and is opened under a second
        // Effect.provide, after the first released the layer)
      }, { steps: [], strict: false })
      const exit = yield* Effect.scoped(
        Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.docmd("XSECRET-TOKEN-1234", "arg"))
      ).pipe(Effect.exit, Effect.provide(server.layer))
      const error = failure(exit)
      assert.notInclude(error.message, "XSECRET")
      assert.include(error.message, "the command")
      const invalid = yield* Effect.scoped(
        Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.docmd("XSECRET-TOKEN-1234\r\n"))
      ).pipe(Effect.flip, Effect.provide(server.layer))
      assert.strictEqual(invalid._tag, "SmtpInvalidInput")
      assert.notInclude(invalid.message, "XSECRET")
    }))
})

describe("DATA writes are bounded whatever the stream's chunking", () => {
  it.effect("one Chunk of 32 pieces of 64 KiB goes out in writes of at most 64 KiB", () =>
    Effect.gen(function*() {
      const piece = new Uint8Array(64 * 1024).fill(120)
      piece[piece.length - 2] = 13
      piece[piece.length - 1] = 10
      const body = Stream.fromChunk(Chunk.fromIterable(Array.from({ length: 32 }, () => piece)))
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: EHLO_PIPELINING },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: /\.\r\n$/, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* Effect.scoped(
        Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.sendmail("a@x.test", "b@x.test", body))
      ).pipe(Effect.provide(server.layer))
      const writes = server.events().filter((e) => e.dir === "C").map((e) => e.text.length)
      assert.isAtMost(Math.max(...writes), 64 * 1024)
      assert.strictEqual(writes.reduce((a, b) => a + b, 0) > 32 * 64 * 1024, true)
    }))
})
