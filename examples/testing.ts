// Testing your own code: the three test layers of effect-smtp/testing, and the scripted server.
import { Effect, Layer, Redacted } from "effect"
import { Mailer, Message, SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import { ScriptedTransport, TestMailer, TestTransport } from "effect-smtp/testing"
import { TestSmtpServer } from "effect-smtp/testing/node"

// The code under test: it only knows Mailer.
export const sendWelcome = (name: string, address: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const message = yield* Message.make({
      from: "hello@example.com",
      to: { name, address },
      subject: `Willkommen, ${name}!`,
      text: `Hallo ${name}, schön, dass du da bist.`
    })
    return yield* mailer.send(message)
  })

// 1. TestMailer: provides Mailer in memory and records every message, decoded.
export const withTestMailer = Effect.gen(function*() {
  const result = yield* sendWelcome("Zoë", "zoe@example.com")
  // the last message matching; a mismatch dies with what was sent (and a diff in vitest)
  const mail = yield* TestMailer.expectSent({ to: "zoe@example.com", subject: "Willkommen, Zoë!" })
  // a refused recipient is in `refused`, with the reply; every one refused is SmtpRecipientsRefused
  yield* TestMailer.refuse("gone@example.com", "550 5.1.1 No such user")
  const refused = yield* Effect.flip(sendWelcome("Gone", "gone@example.com"))
  return { result, text: mail.text, refused: refused._tag }
}).pipe(Effect.provide(TestMailer.layer()))

// 2. TestTransport: SmtpClient code against an in-memory server that captures what it accepts.
export const withTestTransport = Effect.gen(function*() {
  const transport = yield* TestTransport.make({ users: { app: "secret" } })
  yield* Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({
      host: "mx.test",
      auth: { user: "app", password: Redacted.make("secret") }
    })
    yield* smtp.sendmail("app@example.com", "user@example.com", "Subject: hi\r\n\r\nhello\r\n")
  })).pipe(Effect.provide(transport.layer))
  const [received] = yield* transport.messages
  return { subject: received.subject, user: received.user }
})

// 3. TestSmtpServer: a real server on 127.0.0.1 with STARTTLS under a generated certificate
// (its CA in `clientOptions.tls.ca`, so the certificate is verified) and AUTH.
export const withTestSmtpServer = Effect.gen(function*() {
  const server = yield* TestSmtpServer.make({ tls: true, users: { app: "secret" } })
  const MailerLive = Mailer.layer({
    ...server.clientOptions,
    auth: { user: "app", password: Redacted.make("secret") }
  }).pipe(Layer.provide(NodeSmtpTransport.layer))
  yield* sendWelcome("Ada", "ada@example.com").pipe(Effect.provide(MailerLive))
  const [received] = yield* server.messages
  return { subject: received.subject, secure: received.secure }
}).pipe(Effect.scoped)

// 4. ScriptedTransport: the exact bytes of a conversation. A mismatch is answered 500, and a
// script not played as written fails the test when the layer is released.
export const test = Effect.gen(function*() {
  const server = yield* ScriptedTransport.make({
    steps: [
      { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
      { expect: "MAIL FROM:<app@example.com>", reply: "250 2.1.0 ok" },
      { expect: "RCPT TO:<user@example.com>", reply: "250 2.1.5 ok" },
      { expect: "DATA", reply: "354 go ahead" },
      { expect: "Subject: hi\r\n\r\nhello\r\n.\r\n", reply: "250 2.0.0 queued" },
      { expect: "QUIT", reply: "221 bye" }
    ]
  })
  yield* Effect.scoped(
    Effect.flatMap(
      SmtpClient.connect({ host: "mx.test", security: "none" }),
      (smtp) => smtp.sendmail("app@example.com", "user@example.com", "Subject: hi\r\n\r\nhello")
    )
  ).pipe(Effect.provide(server.layer))
  // everything the client wrote, byte for byte, and whether the script matched
  return { written: server.written(0), mismatches: server.connection(0).mismatches() }
})
