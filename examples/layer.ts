// A session as a Layer, configured from the environment (SMTP_HOST, SMTP_USER, SMTP_PASSWORD).
import { Config, Effect, Layer } from "effect"
import { SmtpClient, SmtpConnection } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"

export const SmtpLive = SmtpClient.layerConfig({
  host: Config.string("SMTP_HOST"),
  port: Config.integer("SMTP_PORT").pipe(Config.withDefault(587)),
  security: Config.succeed("starttls" as const),
  auth: Config.all({
    user: Config.string("SMTP_USER"),
    password: Config.redacted("SMTP_PASSWORD")
  })
}).pipe(Layer.provide(NodeSmtpTransport.layer))

export const notify = (to: string, text: string) =>
  Effect.gen(function*() {
    const smtp = yield* SmtpConnection.SmtpConnection
    return yield* smtp.sendmail("alerts@example.com", to, `Subject: alert\r\n\r\n${text}\r\n`)
  })

export const main = notify("ops@example.com", "disk full").pipe(Effect.provide(SmtpLive))
