// Sending through a SOCKS5 or HTTP CONNECT proxy (README): the Node transport opens the tunnel,
// TLS runs inside it and verifies the SMTP server's name.
import { Config, Effect, Layer, Redacted } from "effect"
import { Mailer } from "effect-smtp"
import { NodeSmtpProxy } from "effect-smtp/node"

export const TransportLive = NodeSmtpProxy.layer({
  proxy: { url: Redacted.make("socks5://user:password@proxy.internal:1080") } // or http://user:password@host:3128
})

// or from the environment: SMTP_PROXY=http://user:password@proxy.internal:3128
export const TransportFromConfig = NodeSmtpProxy.layerConfig({
  proxy: Config.map(Config.redacted("SMTP_PROXY"), (url) => ({ url }))
})

export const MailerLive = Mailer.layer({ host: "smtp.example.com", port: 587, security: "starttls" }).pipe(
  Layer.provide(TransportFromConfig)
)

export const send = Effect.flatMap(
  Mailer.Mailer,
  (mailer) => mailer.sendmail("a@example.com", "b@example.net", "Subject: hi\r\n\r\nhello\r\n")
)
