// DKIM signing (README). CI type-checks this file (tsconfig includes examples/).
// The signers are built once (keys checked and imported then) and shared by every send.
import { Config, Context, Effect, Layer, Stream } from "effect"
import { Mailer, Message } from "effect-smtp"
import * as Dkim from "effect-smtp/Dkim"
import { NodeSmtpTransport } from "effect-smtp/node"

// Ed25519 and RSA together, as RFC 8463 recommends while receivers still learn Ed25519: each
// verifies on its own. Publish each signer's `dnsRecord` at its `dnsName`.
export class Signers extends Context.Tag("app/DkimSigners")<Signers, ReadonlyArray<Dkim.Signer>>() {}

export const SignersLive = Layer.effect(
  Signers,
  Effect.gen(function*() {
    const ed25519 = yield* Dkim.signer({
      domain: "example.com",
      selector: "ed2026",
      privateKey: yield* Config.redacted("DKIM_ED25519_KEY"), // PEM, or the base64 32-byte seed
      expiresIn: "7 days"
    })
    const rsa = yield* Dkim.signer({
      domain: "example.com",
      selector: "rsa2026",
      privateKey: yield* Config.redacted("DKIM_RSA_KEY") // BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY
    })
    yield* Effect.logDebug("publish", ed25519.dnsName, ed25519.dnsRecord, rsa.dnsName, rsa.dnsRecord)
    return [ed25519, rsa]
  })
)

export const MailerLive = Mailer.layerConfig({
  host: Config.string("SMTP_HOST"),
  port: Config.succeed(587),
  security: Config.succeed("starttls" as const)
}).pipe(Layer.provide(NodeSmtpTransport.layer))

/** Compose, sign, send. */
export const welcome = (to: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const signers = yield* Signers
    const message = yield* Message.make({ from: "Team <team@example.com>", to, subject: "Welcome", text: "Hello!" })
    const signed = yield* Dkim.sign(message, signers)
    return yield* mailer.sendMessage(signed)
  })

/**
 * A streamed body: `replay` hashes the Stream, then runs it again as it is sent, so nothing is
 * held in memory. The Stream must give the same bytes each run (here, built from data); the
 * default, `spool`, holds the body in memory up to `maxBodyBytes` instead.
 */
export const report = (rows: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const signers = yield* Signers
    const message = yield* Message.make({
      from: "reports@example.com",
      to: "ops@example.com",
      subject: "Nightly report",
      attachments: [{
        filename: "report.csv",
        content: Stream.fromIterable(rows).pipe(Stream.map((row) => new TextEncoder().encode(`${row}\r\n`)))
      }]
    })
    return yield* mailer.sendMessage(yield* Dkim.sign(message, signers, { streamBody: "replay" }))
  })

export const main = welcome("new.user@example.net").pipe(
  Effect.provide(Layer.merge(MailerLive, SignersLive))
)
