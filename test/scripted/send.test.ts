/**
 * send: the result an application logs (envelope, Message-ID, accepted and refused recipients,
 * final reply, queue id), for raw input and for a Message.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { Mailer, Message, SmtpClient } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const connectOptions = { host: "mx.test", security: "none" } as const
const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
const RAW = "From: a@x.test\r\nTo: b@x.test\r\nMessage-ID: <m1@x.test>\r\nSubject: hi\r\n\r\nhello\r\n"

describe("send", () => {
  it.effect("raw input: envelope, Message-ID from the headers, accepted and refused, the queue id", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          { expect: "MAIL FROM:<a@x.test>", reply: "250 2.1.0 Ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 2.1.5 Ok" },
          { expect: "RCPT TO:<nobody@x.test>", reply: "550 5.1.1 unknown" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${RAW}.\r\n`, reply: "250 2.0.0 Ok: queued as 4Ld3Xb2hGzz9sQ" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const result = yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect(connectOptions),
        (smtp) => smtp.send({ from: "a@x.test", to: ["b@x.test", "nobody@x.test"], message: RAW })
      )).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(result.envelope, { from: "a@x.test", to: ["b@x.test", "nobody@x.test"] })
      assert.strictEqual(result.messageId, "<m1@x.test>")
      assert.deepStrictEqual(result.accepted, ["b@x.test"])
      assert.deepStrictEqual(Object.keys(result.refused), ["nobody@x.test"])
      assert.strictEqual(result.refused["nobody@x.test"].code, 550)
      assert.strictEqual(result.reply.code, 250)
      assert.strictEqual(result.queueId, "4Ld3Xb2hGzz9sQ")
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.effect("a Message: the envelope from its headers (Bcc not transmitted), its Message-ID", () =>
    Effect.gen(function*() {
      const message = yield* Message.make({
        from: "a@x.test",
        to: ["b@x.test"],
        bcc: ["c@x.test"],
        subject: "hi",
        text: "hello",
        messageId: "<m2@x.test>"
      })
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          { expect: "MAIL FROM:<a@x.test>", reply: "250 Ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 Ok" },
          { expect: "RCPT TO:<c@x.test>", reply: "250 Ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: /\.\r\n$/, reply: "250 OK id=1rKx2N-0003fD-1h" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const result = yield* Effect.scoped(
        Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.send(message))
      )
        .pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(result.envelope, { from: "a@x.test", to: ["b@x.test", "c@x.test"] })
      assert.strictEqual(result.messageId, "<m2@x.test>")
      assert.deepStrictEqual(result.accepted, ["b@x.test", "c@x.test"])
      assert.strictEqual(result.queueId, "1rKx2N-0003fD-1h")
      assert.notInclude(server.written(), "Bcc:")
    }))

  it.effect("a refusal fails as sendmail does", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          { expect: "MAIL FROM:<a@x.test>", reply: "250 Ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 Ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${RAW}.\r\n`, reply: "554 5.7.1 spam" },
          { expect: "RSET", reply: "250 Ok" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const error = yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect(connectOptions),
        (smtp) => smtp.send({ from: "a@x.test", to: "b@x.test", message: RAW })
      )).pipe(Effect.flip, Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpDataError")
    }))
})

describe("Mailer.send", () => {
  it.effect("the same result through the pool, retried on a 4xx as sendmail is", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          { expect: "MAIL FROM:<a@x.test>", reply: "451 4.3.0 try again" },
          { expect: "RCPT TO:<b@x.test>", reply: "503 5.5.1 no" },
          { expect: "DATA", reply: "503 5.5.1 no" },
          { expect: "RSET", reply: "250 Ok" },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 Ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 Ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${RAW}.\r\n`, reply: "250 2.0.0 Ok: queued as 9A1B2C3D" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const result = yield* Effect.scoped(Effect.flatMap(
        Mailer.make({ ...connectOptions, retry: Schedule.recurs(1) }),
        (mailer) => mailer.send({ from: "a@x.test", to: "b@x.test", message: RAW })
      )).pipe(Effect.provide(server.layer))
      assert.strictEqual(result.queueId, "9A1B2C3D")
      assert.strictEqual(result.messageId, "<m1@x.test>")
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))
})
