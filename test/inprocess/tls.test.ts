import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, type Scope } from "effect"
import { SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as Tls from "node:tls"
import { testPki } from "../support/certs.js"
import * as RawServer from "../support/rawServer.js"
import * as EmbeddedServer from "../support/smtpServer.js"

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

const pki = Effect.promise(() => testPki())
const message = "Subject: tls\r\n\r\nover TLS\r\n"

/** An smtp-server offering STARTTLS (or implicit TLS) with the given certificate. */
const tlsServer = (cert: { cert: string; key: string }, options: { secure?: boolean } = {}) =>
  EmbeddedServer.make({ disabledCommands: [], key: cert.key, cert: cert.cert, secure: options.secure ?? false })

describe("TLS", () => {
  it.live("STARTTLS required: upgrades, verifies the certificate, EHLOs again, sends", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const server = yield* tlsServer(cert)
      const smtp = yield* SmtpClient.connect({
        host: "localhost",
        port: server.port,
        security: "starttls",
        tls: { ca: ca.cert }
      })
      assert.isTrue(yield* smtp.isSecure)
      // session knowledge was dropped by the upgrade: nothing known until the next EHLO
      assert.strictEqual((yield* smtp.esmtpFeatures).size, 0)
      yield* smtp.sendmail("a@example.test", "b@example.test", message)
      assert.isTrue(yield* smtp.hasExtn("pipelining"))
      assert.isFalse(yield* smtp.hasExtn("starttls"), "smtp-server stops offering STARTTLS once encrypted")
      const [received] = yield* server.waitFor(1)
      assert.isTrue(received.secure)
      assert.strictEqual(received.data.toString(), message)
    })))

  it.live("opportunistic (the default) upgrades when offered", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const server = yield* tlsServer(cert)
      const smtp = yield* SmtpClient.connect({ host: "127.0.0.1", port: server.port, tls: { ca: ca.cert } })
      assert.isTrue(yield* smtp.isSecure)
      yield* smtp.sendmail("a@example.test", "b@example.test", message)
      assert.isTrue((yield* server.waitFor(1))[0].secure)
    })))

  it.live("opportunistic stays in plaintext when STARTTLS is not offered", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const smtp = yield* SmtpClient.connect({ host: "127.0.0.1", port: server.port })
      assert.isFalse(yield* smtp.isSecure)
      yield* smtp.sendmail("a@example.test", "b@example.test", message)
      assert.isFalse((yield* server.waitFor(1))[0].secure)
    })))

  it.live("implicit TLS (security: \"tls\")", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const server = yield* tlsServer(cert, { secure: true })
      const smtp = yield* SmtpClient.connect({
        host: "127.0.0.1",
        port: server.port,
        security: "tls",
        tls: { ca: ca.cert }
      })
      assert.isTrue(yield* smtp.isSecure)
      assert.strictEqual(smtp.greeting.code, 220)
      yield* smtp.sendmail("a@example.test", "b@example.test", message)
      assert.isTrue((yield* server.waitFor(1))[0].secure)
    })))

  it.live("explicit starttls() with security none: smtplib's semantics", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const server = yield* tlsServer(cert)
      const smtp = yield* SmtpClient.connect({
        host: "127.0.0.1",
        port: server.port,
        security: "none",
        tls: { ca: ca.cert }
      })
      assert.isFalse(yield* smtp.isSecure)
      const reply = yield* smtp.starttls()
      assert.strictEqual(reply.code, 220)
      assert.isTrue(yield* smtp.isSecure)
      assert.isFalse(yield* smtp.doesEsmtp)
      assert.strictEqual((yield* smtp.ehloResp)._tag, "None")
      const again = yield* Effect.flip(smtp.starttls())
      assert.strictEqual(again._tag, "SmtpNotSupportedError")
    })))

  const failures = [
    { name: "self-signed, CA not given", cert: "selfSigned", ca: true, host: "127.0.0.1", reason: "untrusted" },
    { name: "no CA given at all", cert: "server", ca: false, host: "127.0.0.1", reason: "untrusted" },
    {
      name: "certificate for another name",
      cert: "otherName",
      ca: true,
      host: "127.0.0.1",
      reason: "hostname-mismatch"
    },
    {
      name: "certificate for another name (DNS)",
      cert: "otherName",
      ca: true,
      host: "localhost",
      reason: "hostname-mismatch"
    },
    { name: "expired certificate", cert: "expired", ca: true, host: "localhost", reason: "expired" }
  ] as const
  for (const security of ["starttls", "tls", "opportunistic"] as const) {
    for (const f of failures) {
      it.live(`${security}: ${f.name} is SmtpTlsError(${f.reason}) and nothing is sent`, () =>
        live(Effect.gen(function*() {
          const p = yield* pki
          let mails = 0
          const server = yield* EmbeddedServer.make({
            disabledCommands: [],
            key: p[f.cert].key,
            cert: p[f.cert].cert,
            secure: security === "tls",
            onMailFrom: (_a, _s, cb) => {
              mails++
              cb()
            }
          })
          const error = yield* Effect.flip(
            SmtpClient.connect({ host: f.host, port: server.port, security, tls: f.ca ? { ca: p.ca.cert } : {} }).pipe(
              Effect.flatMap((smtp) => smtp.sendmail("a@example.test", "b@example.test", message))
            )
          )
          assert.strictEqual(error._tag, "SmtpTlsError")
          if (error._tag === "SmtpTlsError") {
            assert.strictEqual(error.reason, f.reason)
            assert.include(error.message, f.reason)
          }
          assert.strictEqual(mails, 0)
        })))
    }
  }

  it.live("rejectUnauthorized: false is the explicit opt-out", () =>
    live(Effect.gen(function*() {
      const { selfSigned } = yield* pki
      const server = yield* tlsServer(selfSigned)
      const smtp = yield* SmtpClient.connect({
        host: "127.0.0.1",
        port: server.port,
        security: "starttls",
        tls: { rejectUnauthorized: false }
      })
      assert.isTrue(yield* smtp.isSecure)
    })))

  it.live("STARTTLS required but not offered: SmtpTlsError(downgrade), no MAIL or AUTH sent", () =>
    live(Effect.gen(function*() {
      const raw = yield* RawServer.make((socket, lines) => {
        socket.write("220 raw.test ESMTP\r\n")
        RawServer.onLines(socket, lines, (line) => {
          if (line.startsWith("EHLO")) socket.write("250-raw.test\r\n250-AUTH PLAIN\r\n250 PIPELINING\r\n")
          else if (line === "QUIT") socket.end("221 bye\r\n")
          else socket.write("250 ok\r\n")
        })
      })
      const error = yield* Effect.flip(
        Effect.scoped(
          SmtpClient.connect({ host: "127.0.0.1", port: raw.port, security: "starttls", localHostname: "c.test" })
        )
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "downgrade")
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(raw.lines[0].filter((l) => /^(MAIL|RCPT|AUTH|DATA)/.test(l)), [])
    })))

  it.live("STARTTLS required and answered 454: SmtpTlsError(downgrade), no MAIL sent", () =>
    live(Effect.gen(function*() {
      const raw = yield* RawServer.make((socket, lines) => {
        socket.write("220 raw.test ESMTP\r\n")
        RawServer.onLines(socket, lines, (line) => {
          if (line.startsWith("EHLO")) socket.write("250-raw.test\r\n250 STARTTLS\r\n")
          else if (line === "STARTTLS") socket.write("454 4.7.0 TLS not available due to temporary reason\r\n")
          else if (line === "QUIT") socket.end("221 bye\r\n")
          else socket.write("250 ok\r\n")
        })
      })
      const error = yield* Effect.flip(
        Effect.scoped(
          SmtpClient.connect({ host: "127.0.0.1", port: raw.port, security: "starttls", localHostname: "c.test" })
        )
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") {
        assert.strictEqual(error.reason, "downgrade")
        assert.include(error.detail, "454")
      }
      assert.deepStrictEqual(raw.lines[0], ["EHLO c.test", "STARTTLS", "QUIT"])
    })))

  it.live("opportunistic and answered 454: goes on in plaintext", () =>
    live(Effect.gen(function*() {
      const raw = yield* RawServer.make((socket, lines) => {
        socket.write("220 raw.test ESMTP\r\n")
        RawServer.onLines(socket, lines, (line) => {
          if (line.startsWith("EHLO")) socket.write("250-raw.test\r\n250 STARTTLS\r\n")
          else if (line === "STARTTLS") socket.write("454 4.7.0 TLS not available\r\n")
          else if (line === "QUIT") socket.end("221 bye\r\n")
          else socket.write("250 ok\r\n")
        })
      })
      const smtp = yield* SmtpClient.connect({ host: "127.0.0.1", port: raw.port, localHostname: "c.test" })
      assert.isFalse(yield* smtp.isSecure)
      assert.strictEqual((yield* smtp.noop).code, 250)
    })))

  it.live("STARTTLS response injection: bytes after the 220 in the same packet are refused, never read as replies", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const raw = yield* RawServer.make((socket, lines) => {
        socket.write("220 raw.test ESMTP\r\n")
        const stop = RawServer.onLines(socket, lines, (line) => {
          if (line.startsWith("EHLO")) socket.write("250-raw.test\r\n250 STARTTLS\r\n")
          else if (line === "STARTTLS") {
            stop()
            // the attack: a reply for the client's next command, injected before the handshake
            socket.write("220 go ahead\r\n250-injected.test\r\n250 AUTH PLAIN\r\n")
            const secure = new Tls.TLSSocket(socket, { isServer: true, key: cert.key, cert: cert.cert })
            secure.on("error", () => {})
            RawServer.onLines(secure as any, lines, (l) => {
              if (l.startsWith("EHLO")) secure.write("250-raw.test\r\n250 PIPELINING\r\n")
              else secure.write("250 ok\r\n")
            })
          } else socket.write("250 ok\r\n")
        })
      })
      const error = yield* Effect.flip(
        Effect.scoped(
          SmtpClient.connect({ host: "127.0.0.1", port: raw.port, security: "starttls", tls: { ca: ca.cert } }).pipe(
            Effect.flatMap((smtp) => smtp.ehlo())
          )
        )
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "injection")
    })))

  it.live("SNI: sent for a DNS name, never for an IP literal", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const seen: Array<string | false> = []
      const server = yield* Effect.acquireRelease(
        Effect.async<Tls.Server>((resume) => {
          const s = Tls.createServer({ key: cert.key, cert: cert.cert }, (socket) => {
            seen.push((socket as any).servername ?? false)
            socket.on("error", () => {})
            socket.write("220 sni.test ESMTP\r\n")
            RawServer.onLines(socket as any, [], (line) => {
              if (line === "QUIT") socket.end("221 bye\r\n")
              else socket.write("250 ok\r\n")
            })
          })
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) =>
          Effect.async<void>((resume) => {
            s.close(() => resume(Effect.void))
          })
      )
      const port = (server.address() as any).port
      for (const host of ["localhost", "127.0.0.1"]) {
        yield* Effect.scoped(
          SmtpClient.connect({ host, port, security: "tls", tls: { ca: ca.cert }, localHostname: "c.test" })
        )
      }
      assert.deepStrictEqual(seen, ["localhost", false])
    })))

  it.live("a client certificate is presented when given (and the server verifies it)", () =>
    live(Effect.gen(function*() {
      const { ca, client, server: cert } = yield* pki
      const seen: Array<{ authorized: boolean; cn: string | undefined }> = []
      const server = yield* Effect.acquireRelease(
        Effect.async<Tls.Server>((resume) => {
          const s = Tls.createServer(
            { key: cert.key, cert: cert.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: false },
            (socket) => {
              seen.push({
                authorized: socket.authorized,
                cn: socket.getPeerCertificate().subject?.CN as string | undefined
              })
              socket.on("error", () => {})
              socket.write("220 mtls.test ESMTP\r\n")
              RawServer.onLines(socket as any, [], (line) => {
                if (line === "QUIT") socket.end("221 bye\r\n")
                else socket.write("250 ok\r\n")
              })
            }
          )
          s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
        }),
        (s) =>
          Effect.async<void>((resume) => {
            s.close(() => resume(Effect.void))
          })
      )
      const port = (server.address() as any).port
      yield* Effect.scoped(SmtpClient.connect({
        host: "127.0.0.1",
        port,
        security: "tls",
        localHostname: "c.test",
        tls: { ca: ca.cert, cert: client.cert, key: Redacted.make(client.key) }
      }))
      yield* Effect.scoped(
        SmtpClient.connect({ host: "127.0.0.1", port, security: "tls", localHostname: "c.test", tls: { ca: ca.cert } })
      )
      assert.deepStrictEqual(seen, [{ authorized: true, cn: "client.test" }, { authorized: false, cn: undefined }])
    })))

  it.live("the handshake has its own timeout", () =>
    live(Effect.gen(function*() {
      const raw = yield* RawServer.make((socket, lines) => {
        socket.write("220 raw.test ESMTP\r\n")
        const stop = RawServer.onLines(socket, lines, (line) => {
          if (line.startsWith("EHLO")) socket.write("250-raw.test\r\n250 STARTTLS\r\n")
          else if (line === "STARTTLS") {
            stop()
            socket.write("220 go ahead\r\n") // ... and then never speaks TLS
          }
        })
      })
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({
          host: "127.0.0.1",
          port: raw.port,
          security: "starttls",
          tls: { handshakeTimeout: "300 millis" }
        }))
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "handshake-timeout")
    })))

  it.live("minimum TLS version is enforced (protocol error)", () =>
    live(Effect.gen(function*() {
      const { ca, server: cert } = yield* pki
      const server = yield* EmbeddedServer.make({
        disabledCommands: [],
        key: cert.key,
        cert: cert.cert,
        secure: true,
        maxVersion: "TLSv1.2"
      } as any)
      const error = yield* Effect.flip(
        SmtpClient.connect({
          host: "127.0.0.1",
          port: server.port,
          security: "tls",
          tls: { ca: ca.cert, minVersion: "TLSv1.3" }
        })
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "protocol")
    })))
})
