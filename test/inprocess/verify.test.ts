/**
 * verify: what a server says about itself at start-up, over real sockets (smtp-server with STARTTLS,
 * a certificate made by the test's CA, AUTH), and the usual typed errors.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, type Scope } from "effect"
import { Mailer, SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import { testPki } from "../support/certs.js"
import * as EmbeddedServer from "../support/smtpServer.js"

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

const pki = Effect.promise(() => testPki())

const server = (cert: { cert: string; key: string }) =>
  EmbeddedServer.make({
    disabledCommands: [],
    key: cert.key,
    cert: cert.cert,
    authMethods: ["PLAIN", "LOGIN"],
    size: 10_000_000,
    onAuth(auth, _session, callback) {
      if (auth.username === "me" && auth.password === "right") callback(null, { user: "me" })
      else callback(new Error("bad credentials"))
    }
  })

describe("verify", () => {
  it.live("STARTTLS and AUTH: greeting, extensions, SIZE, mechanisms, TLS protocol and certificate; QUIT", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const smtp = yield* server(cert)
      const report = yield* SmtpClient.verify({
        host: "localhost",
        port: smtp.port,
        security: "starttls",
        tls: { ca: ca.cert },
        auth: { user: "me", password: Redacted.make("right") }
      })
      assert.strictEqual(report.greeting.code, 220)
      assert.isTrue(report.extensions.has("pipelining"))
      assert.strictEqual(report.sizeLimit, 10_000_000)
      assert.includeMembers([...report.authMechanisms], ["PLAIN", "LOGIN"])
      assert.isTrue(report.authenticated)
      assert.isDefined(report.tls)
      assert.match(report.tls!.protocol ?? "", /^TLSv1\.[23]$/)
      assert.isString(report.tls!.cipher)
      assert.isTrue(report.tls!.authorized)
      assert.include(report.tls!.certificate!.subject, "CN=")
      assert.isTrue(report.tls!.certificate!.validTo.getTime() > Date.now())
      assert.include(report.tls!.certificate!.subjectAltNames.join(","), "localhost")
    })))

  it.live("a wrong password is SmtpAuthenticationError at start-up (Mailer.verify too)", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const smtp = yield* server(cert)
      const options = {
        host: "localhost",
        port: smtp.port,
        security: "starttls",
        tls: { ca: ca.cert },
        auth: { user: "me", password: Redacted.make("wrong") }
      } as const
      const error = yield* Effect.flip(SmtpClient.verify(options))
      assert.strictEqual(error._tag, "SmtpAuthenticationError")
      const mailer = yield* Mailer.make(options)
      const viaMailer = yield* Effect.flip(mailer.verify)
      assert.strictEqual(viaMailer._tag, "SmtpAuthenticationError")
    })))

  it.live("an unreachable server is SmtpConnectError", () =>
    live(Effect.gen(function*() {
      const error = yield* Effect.flip(SmtpClient.verify({ host: "127.0.0.1", port: 1, security: "none" }))
      assert.strictEqual(error._tag, "SmtpConnectError")
    })))
})
