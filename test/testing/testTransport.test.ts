import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream, TestClock } from "effect"
import { Message, SmtpClient } from "effect-smtp"
import { TestTransport } from "effect-smtp/testing"

const connect = (options: SmtpClient.Options = {}) => SmtpClient.connect({ host: "mx.test", ...options })

describe("TestTransport: SmtpClient code against the in-memory server", () => {
  it.effect("DATA (CHUNKING off): dot-stuffing undone, the bytes as sent; the layer form", () =>
    Effect.gen(function*() {
      yield* Effect.scoped(Effect.flatMap(
        connect(),
        (smtp) =>
          smtp.sendmail("a@x.test", ["b@x.test", "c@x.test"], "Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n")
      ))
      const test = yield* TestTransport.TestTransport
      const [received] = yield* test.received
      assert.strictEqual(received.via, "DATA")
      assert.strictEqual(new TextDecoder().decode(received.raw), "Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n")
      assert.deepStrictEqual(received.envelope, { from: "a@x.test", to: ["b@x.test", "c@x.test"] })
      // the server's side: pipelined commands, each answered in turn
      assert.deepStrictEqual(test.transcript().slice(-14, -4), [
        "C: MAIL FROM:<a@x.test> SIZE=38",
        "S: 250 2.1.0 Ok",
        "C: RCPT TO:<b@x.test>",
        "S: 250 2.1.5 Ok",
        "C: RCPT TO:<c@x.test>",
        "S: 250 2.1.5 Ok",
        "C: DATA",
        "S: 354 End data with <CR><LF>.<CR><LF>",
        "C: <message, 38 bytes>",
        "C: ."
      ])
      assert.strictEqual(test.connections(), 1)
    }).pipe(Effect.provide(TestTransport.layer({ disable: ["CHUNKING"] }))))

  it.effect("an international address: SMTPUTF8 is used and the message captured", () =>
    Effect.gen(function*() {
      const transport = yield* TestTransport.make()
      const message = yield* Message.make({
        from: "ñandú@ejemplo.test",
        to: "zoë@例え.test",
        subject: "¡Hola!",
        text: "hola"
      })
      const result = yield* Effect.scoped(Effect.flatMap(connect(), (smtp) => smtp.send(message))).pipe(
        Effect.provide(transport.layer)
      )
      assert.deepStrictEqual(result.accepted, ["zoë@例え.test"])
      const [mail] = yield* transport.messages
      assert.include(mail.mailParams, "SMTPUTF8")
      assert.strictEqual(mail.subject, "¡Hola!")
      // without SMTPUTF8 on the server, the client refuses before sending
      const plain = yield* TestTransport.make({ disable: ["SMTPUTF8"] })
      const error = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(connect(), (smtp) => smtp.send(message))).pipe(Effect.provide(plain.layer))
      )
      assert.strictEqual(error._tag, "SmtpNotSupportedError")
    }))

  it.effect("the size limit: a known size over it is refused by the client (SmtpMessageTooLarge), a Stream by the server", () =>
    Effect.gen(function*() {
      const transport = yield* TestTransport.make({ size: 100 })
      const big = `Subject: big\r\n\r\n${"x".repeat(200)}\r\n`
      const send = (message: string | Stream.Stream<Uint8Array>) =>
        Effect.flip(
          Effect.scoped(Effect.flatMap(connect(), (smtp) => smtp.sendmail("a@x.test", "b@x.test", message))).pipe(
            Effect.provide(transport.layer)
          )
        )
      const known = yield* send(big)
      assert.strictEqual(known._tag, "SmtpMessageTooLarge")
      const streamed = yield* send(Stream.succeed(new TextEncoder().encode(big)))
      assert.strictEqual(streamed._tag === "SmtpDataError" && streamed.code, 552)
      assert.deepStrictEqual(yield* transport.received, [])
    }))

  it.effect("a greeting refused (421) is SmtpConnectError; a stalled server is a timeout on the TestClock", () =>
    Effect.gen(function*() {
      const busy = yield* TestTransport.make({
        respond: (e) => (e.stage === "connect" ? "421 4.3.2 Too busy" : undefined)
      })
      const refused = yield* Effect.flip(Effect.scoped(connect()).pipe(Effect.provide(busy.layer)))
      assert.strictEqual(refused._tag === "SmtpConnectError" && refused.code, 421)
      const stalled = yield* TestTransport.make({ respond: (e) => (e.stage === "rcpt" ? "stall" : undefined) })
      const fiber = yield* Effect.fork(
        Effect.scoped(Effect.flatMap(
          connect({ timeout: "10 seconds" }),
          (smtp) => smtp.sendmail("a@x.test", "b@x.test", "x")
        )).pipe(Effect.provide(stalled.layer), Effect.flip)
      )
      yield* TestClock.adjust("11 seconds")
      // MAIL, RCPT and BDAT LAST went in one write: the message may have been delivered
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "SmtpDeliveryUnknown")
      assert.strictEqual(error._tag === "SmtpDeliveryUnknown" && (error.cause as { _tag: string })._tag, "SmtpTimeout")
    }))

  it.effect("awaitMessages waits for the messages sent by another fiber", () =>
    Effect.gen(function*() {
      const transport = yield* TestTransport.make()
      const waiting = yield* Effect.fork(transport.awaitMessages(2))
      yield* Effect.scoped(Effect.flatMap(connect(), (smtp) =>
        Effect.zipRight(
          smtp.sendmail("a@x.test", "b@x.test", "Subject: 1\r\n\r\n1\r\n"),
          smtp.sendmail("a@x.test", "b@x.test", "Subject: 2\r\n\r\n2\r\n")
        ))).pipe(Effect.provide(transport.layer))
      const messages = yield* Fiber.join(waiting)
      assert.deepStrictEqual(messages.map((m) => m.subject), ["1", "2"])
      yield* transport.clear
      assert.deepStrictEqual(yield* transport.messages, [])
    }))
})

describe("TestTransport: LMTP", () => {
  it.effect("one reply per recipient after the data, each settable with respond; DATA and BDAT", () =>
    Effect.gen(function*() {
      const transport = yield* TestTransport.make({
        lmtp: true,
        refuse: { "unknown@x.test": "550 5.1.1 No such mailbox" },
        respond: (e) => e.stage === "message" && e.recipient === "full@x.test" ? "452 4.2.2 Mailbox full" : undefined
      })
      for (const chunking of [true, false]) {
        const delivery = yield* Effect.scoped(Effect.flatMap(
          SmtpClient.connect({ protocol: "lmtp", host: "mx.test", chunking }),
          (lmtp) => lmtp.sendmail("a@x.test", ["b@x.test", "full@x.test", "unknown@x.test"], "Subject: l\r\n\r\nl\r\n")
        )).pipe(Effect.provide(transport.layer))
        assert.deepStrictEqual(
          delivery.recipients.map((r) => [r.recipient, r.status, r.stage, r.reply?.code]),
          [
            ["b@x.test", "delivered", "data", 250],
            ["full@x.test", "refused", "data", 452],
            ["unknown@x.test", "refused", "rcpt", 550]
          ]
        )
      }
      const messages = yield* transport.messages
      assert.deepStrictEqual(messages.map((m) => [m.via, m.envelope.to]), [["BDAT", ["b@x.test"]], ["DATA", [
        "b@x.test"
      ]]])
      // an SMTP client is refused by an LMTP server (EHLO is not LMTP)
      const smtp = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(
          SmtpClient.connect({ host: "mx.test" }),
          (s) => s.sendmail("a@x.test", "b@x.test", "x")
        )).pipe(Effect.provide(transport.layer))
      )
      assert.strictEqual(smtp._tag, "SmtpHeloError")
    }))
})
