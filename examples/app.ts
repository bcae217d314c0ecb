// The application setup the README leads with: Mailer.layerConfig and the send result.
import { Config, Effect, Layer } from "effect"
import { Mailer, Message } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"

export const MailerLive = Mailer.layerConfig({
  host: Config.string("SMTP_HOST"),
  port: Config.integer("SMTP_PORT").pipe(Config.withDefault(587)),
  security: Config.succeed("starttls" as const),
  auth: Config.all({ user: Config.string("SMTP_USER"), password: Config.redacted("SMTP_PASSWORD") })
}).pipe(Layer.provide(NodeSmtpTransport.layer))

export const welcome = (to: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const message = yield* Message.make({ from: "app@example.com", to: [to], subject: "Welcome", text: "Hi!" })
    const result = yield* mailer.send(message) // envelope, Message-ID, accepted, refused, queue id
    yield* Effect.log("sent", result.messageId, result.queueId)
  })

export const main = welcome("you@example.com").pipe(Effect.provide(MailerLive))
