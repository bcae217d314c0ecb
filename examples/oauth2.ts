// OAuth 2.0 (Gmail, Microsoft 365) in a Mailer Layer (README).
import { Config, Effect, Layer, Redacted } from "effect"
import { Mailer, type SmtpAuth } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"

/** Your token source: an HTTP call to the provider's token endpoint with a refresh token, say. */
declare const fetchAccessToken: (user: string, forceRefresh: boolean) => Effect.Effect<string, Error>

// told why it is asked: a cached token is fine unless the server just rejected one (renew)
const tokens: SmtpAuth.OAuth2TokenProvider = ({ renew, user }) =>
  Effect.map(fetchAccessToken(user, renew), Redacted.make)

// Gmail: smtp.gmail.com:465 (implicit TLS) or 587 (STARTTLS), XOAUTH2 or OAUTHBEARER
export const GmailMailer = Mailer.layerConfig({
  host: Config.succeed("smtp.gmail.com"),
  port: Config.succeed(465),
  auth: Config.map(Config.string("GMAIL_USER"), (user) => ({ user, oauth2: tokens }))
}).pipe(Layer.provide(NodeSmtpTransport.layer))

// Microsoft 365: smtp.office365.com:587 with STARTTLS, XOAUTH2
export const Microsoft365Mailer = Mailer.layerConfig({
  host: Config.succeed("smtp.office365.com"),
  port: Config.succeed(587),
  security: Config.succeed("starttls" as const),
  auth: Config.map(Config.string("M365_USER"), (user) => ({ user, oauth2: tokens, mechanism: "XOAUTH2" as const }))
}).pipe(Layer.provide(NodeSmtpTransport.layer))
