// The pooled Mailer as an application's Layer (README).
import { Effect, Layer, Redacted } from "effect"
import { Mailer, Message } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"

export const MailerLive = Mailer.layer({
  host: "smtp.example.com",
  port: 587,
  security: "starttls",
  auth: { user: "me@example.com", password: Redacted.make("app-password") },
  maxConnections: 4,
  rateLimit: { limit: 10, interval: "1 second" }
}).pipe(Layer.provide(NodeSmtpTransport.layer))

export const notify = (to: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const message = yield* Message.make({ from: "me@example.com", to: [to], subject: "Hello", text: "Hi!" })
    return yield* mailer.sendMessage(message)
  })

export const main = notify("you@example.com").pipe(Effect.provide(MailerLive))
