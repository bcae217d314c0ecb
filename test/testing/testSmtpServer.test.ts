import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { Mailer, Message, SmtpClient, SmtpError } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import type { TestServer } from "effect-smtp/testing"
import { TestTransport } from "effect-smtp/testing"
import { TestSmtpServer } from "effect-smtp/testing/node"

const welcome = Message.make({
  from: { name: "Ärztekammer Köln", address: "noreply@example.com" },
  to: [{ name: "Zoë Müller", address: "zoe@example.com" }, "gone@example.com"],
  subject: "Ihr Termin am Dienstag — bestätigt ✓",
  text: "Grüezi Zoë",
  attachments: [{
    filename: "Termin übersicht.ics",
    contentType: "text/calendar",
    content: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
  }]
})

const options: TestServer.Options = {
  users: { app: "s3cret" },
  requireAuth: true,
  refuse: { "gone@example.com": "550 5.1.1 <gone@example.com>: Recipient address rejected" }
}
const auth = { user: "app", password: Redacted.make("s3cret") }

describe("TestSmtpServer: a real server on loopback", () => {
  it.scopedLive("STARTTLS under the generated certificate, verified; AUTH; per-recipient refusal; captured", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ ...options, tls: true })
      assert.strictEqual(server.host, "127.0.0.1")
      assert.include(server.ca ?? "", "-----BEGIN CERTIFICATE-----")
      const { result, tls } = yield* Effect.scoped(Effect.gen(function*() {
        // rejectUnauthorized is not set: the certificate is verified against the CA given
        const smtp = yield* SmtpClient.connect({ ...server.clientOptions, auth })
        return { result: yield* smtp.send(yield* welcome), tls: yield* smtp.tls }
      }))
      assert.isTrue(Option.isSome(tls) && tls.value.authorized)
      assert.deepStrictEqual(result.accepted, ["zoe@example.com"])
      assert.strictEqual(result.refused["gone@example.com"].code, 550)
      assert.strictEqual(result.refused["gone@example.com"].enhancedCode, "5.1.1")
      const [mail] = yield* server.awaitMessages(1)
      assert.strictEqual(result.queueId, mail.queueId)
      assert.isTrue(mail.secure)
      assert.strictEqual(mail.user, "app")
      assert.deepStrictEqual(mail.envelope.to, ["zoe@example.com"])
      assert.strictEqual(mail.subject, "Ihr Termin am Dienstag — bestätigt ✓")
      assert.deepStrictEqual(mail.to.map((m) => m.name), ["Zoë Müller", ""])
      assert.deepStrictEqual(mail.attachments.map((a) => [a.filename, a.contentType]), [[
        "Termin übersicht.ics",
        "text/calendar"
      ]])
      const transcript = server.transcript(0)
      assert.include(transcript, "C: STARTTLS")
      assert.include(transcript, "-- TLS started --")
      assert.include(transcript, "C: AUTH PLAIN <credentials>")
    }).pipe(Effect.provide(NodeSmtpTransport.layer)))

  it.scopedLive("the certificate is not trusted without the CA; the wrong password is refused; AUTH LOGIN", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ ...options, tls: true })
      const untrusted = yield* Effect.flip(Effect.scoped(SmtpClient.connect({ ...server.clientOptions, tls: {} })))
      assert.strictEqual(untrusted._tag, "SmtpTlsError")
      assert.strictEqual(untrusted._tag === "SmtpTlsError" && untrusted.reason, "untrusted")
      const wrong = yield* Effect.flip(Effect.scoped(
        SmtpClient.connect({ ...server.clientOptions, auth: { user: "app", password: Redacted.make("nope") } })
      ))
      assert.strictEqual(wrong._tag, "SmtpAuthenticationError")
      // MAIL without AUTH: 530 (requireAuth)
      const anonymous = yield* Effect.flip(Effect.scoped(Effect.flatMap(
        SmtpClient.connect(server.clientOptions),
        (smtp) => smtp.sendmail("a@example.com", "b@example.com", "Subject: x\r\n\r\nx\r\n")
      )))
      assert.strictEqual(anonymous._tag === "SmtpSenderRefused" && anonymous.code, 530)
      // LOGIN, when the client is told to use it
      const reply = yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect(server.clientOptions),
        (smtp) => smtp.login("app", Redacted.make("s3cret"), { mechanisms: ["LOGIN"] })
      ))
      assert.strictEqual(reply.code, 235)
      assert.include(server.transcript(), "C: AUTH LOGIN <credentials>")
    }).pipe(Effect.provide(NodeSmtpTransport.layer)))

  it.scopedLive("implicit TLS; a plaintext server; the layer form", () =>
    Effect.gen(function*() {
      const implicit = yield* TestSmtpServer.make({ tls: { implicit: true } })
      assert.strictEqual(implicit.clientOptions.security, "tls")
      yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect(implicit.clientOptions),
        (smtp) => smtp.sendmail("a@example.com", "b@example.com", "Subject: x\r\n\r\nx\r\n")
      ))
      assert.isTrue((yield* implicit.messages)[0].secure)
      const plain = yield* TestSmtpServer.TestSmtpServer
      assert.strictEqual(plain.clientOptions.security, "none")
      assert.isUndefined(plain.ca)
      yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ ...plain.clientOptions, chunking: false }),
        (smtp) => smtp.sendmail("a@example.com", "b@example.com", "Subject: y\r\n\r\n.dot\r\n")
      ))
      const [received] = yield* plain.received
      assert.strictEqual(received.via, "DATA")
      assert.isFalse(received.secure)
      assert.strictEqual(new TextDecoder().decode(received.raw), "Subject: y\r\n\r\n.dot\r\n")
    }).pipe(Effect.provide(Layer.merge(NodeSmtpTransport.layer, TestSmtpServer.layer()))))

  it.scopedLive("scripted per recipient and per stage: a Mailer sees 4xx, 5xx and a lost reply", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({
        tls: true,
        refuse: (address) => address.startsWith("busy") ? "452 4.2.2 Mailbox full" : undefined,
        respond: (event) =>
          event.stage === "message" && event.recipients?.includes("lost@example.com") ?
            "disconnect" :
            event.stage === "mail" && event.from === "spammer@example.com" ?
            "554 5.7.1 Go away" :
            undefined
      })
      const mailer = yield* Mailer.make({ ...server.clientOptions, retry: false })
      const send = (from: string, to: ReadonlyArray<string>) =>
        mailer.send({ from, to, message: "Subject: s\r\n\r\nbody\r\n" })
      const partly = yield* send("a@example.com", ["ok@example.com", "busy@example.com"])
      assert.deepStrictEqual(Object.keys(partly.refused), ["busy@example.com"])
      const busy = yield* Effect.flip(send("a@example.com", ["busy@example.com"]))
      assert.strictEqual(busy._tag, "SmtpRecipientsRefused")
      assert.strictEqual(SmtpError.classify(busy), "transient")
      const spam = yield* Effect.flip(send("spammer@example.com", ["ok@example.com"]))
      assert.strictEqual(spam._tag === "SmtpSenderRefused" && spam.code, 554)
      const lost = yield* Effect.flip(send("a@example.com", ["lost@example.com"]))
      assert.strictEqual(lost._tag, "SmtpDeliveryUnknown")
      assert.strictEqual((yield* server.messages).length, 1)
    }).pipe(Effect.provide(NodeSmtpTransport.layer)))
})

describe("one protocol, two adapters", () => {
  it.scopedLive("TestTransport and TestSmtpServer answer a session the same way", () =>
    Effect.gen(function*() {
      const run = (clientOptions: SmtpClient.Options) =>
        Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...clientOptions, localHostname: "client.test", auth })
          const result = yield* smtp.send(yield* welcome)
          const refused = yield* Effect.flip(smtp.sendmail("a@example.com", "gone@example.com", "x"))
          const noop = yield* smtp.noop
          return {
            accepted: result.accepted,
            refused: Object.entries(result.refused).map(([a, r]) => [a, r.code, r.text]),
            reply: result.reply.text.replace(/TEST\w+/, "<id>"),
            error: refused.message,
            noop: noop.text
          }
        }))
      const memory = yield* TestTransport.make(options)
      const overMemory = yield* run({ host: "mx.test", security: "starttls" }).pipe(Effect.provide(memory.layer))
      const server = yield* TestSmtpServer.make({ ...options, tls: true })
      const overSocket = yield* run(server.clientOptions).pipe(Effect.provide(NodeSmtpTransport.layer))
      assert.deepStrictEqual(overSocket, overMemory)
      assert.deepStrictEqual(server.transcript(0), memory.transcript(0))
      const [a] = yield* memory.messages
      const [b] = yield* server.messages
      assert.deepStrictEqual(
        [b.envelope, b.subject, b.text, b.attachments.length, b.user, b.secure, b.via],
        [a.envelope, a.subject, a.text, a.attachments.length, a.user, a.secure, a.via]
      )
    }))
})
