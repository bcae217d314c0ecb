import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SmtpClient } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const ehloTls = "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS"
const ehloAfter = "250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN"

describe("STARTTLS over the scripted transport", () => {
  it.scoped("upgrades, drops session knowledge, EHLOs again before MAIL", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: ehloTls },
          { expect: "STARTTLS", reply: "220 2.0.0 Ready to start TLS", tls: true },
          { expect: "EHLO client.test", reply: ehloAfter },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: "hi\r\n.\r\n", reply: "250 ok" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({
          host: "mx.test",
          security: "starttls",
          tls: { servername: "mx.test" }
        })
        assert.isTrue(yield* smtp.isSecure)
        assert.isFalse(yield* smtp.doesEsmtp)
        assert.strictEqual((yield* smtp.esmtpFeatures).size, 0)
        yield* smtp.sendmail("a@x.test", "b@x.test", "hi")
        assert.isTrue(yield* smtp.hasExtn("auth"))
      })).pipe(Effect.provide(server.layer))
      const c = server.connection(0)
      assert.deepStrictEqual(c.mismatches(), [])
      assert.isTrue(c.secure())
      assert.deepStrictEqual(c.tlsOptions().map((o) => o.servername), ["mx.test"])
      assert.strictEqual(
        c.written(),
        "EHLO client.test\r\nSTARTTLS\r\nEHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
      )
    }))

  it.scoped("injection: a reply in the same chunk as the 220 is refused, the connection closed", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: ehloTls },
          { expect: "STARTTLS", reply: ["220 go ahead\r\n250-evil.test\r\n250 AUTH PLAIN\r\n"], tls: true }
        ]
      })
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({ host: "mx.test", security: "starttls" })).pipe(Effect.provide(server.layer))
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "injection")
      assert.strictEqual(server.written(0), "EHLO client.test\r\nSTARTTLS\r\n")
      assert.isFalse(server.connection(0).secure())
    }))

  it.scoped("injection: bytes after the 220 in the same chunk, even half a line", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: ehloTls },
          { expect: "STARTTLS", reply: ["220 go ahead\r\n250 hal"], tls: true }
        ]
      })
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({ host: "mx.test", security: "opportunistic" })).pipe(
          Effect.provide(server.layer)
        )
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "injection")
    }))

  it.scoped("STARTTLS required but not offered: downgrade refused, nothing but EHLO sent", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250 AUTH PLAIN" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({ host: "mx.test", security: "starttls" })).pipe(Effect.provide(server.layer))
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "downgrade")
      assert.strictEqual(server.written(0), "EHLO client.test\r\nQUIT\r\n")
    }))

  it.scoped("explicit starttls(): 454 is SmtpResponseException, not advertised is SmtpNotSupportedError", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: ehloTls },
          { expect: "STARTTLS", reply: "454 4.7.0 TLS not available due to temporary reason" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      }, {
        steps: [
          { expect: "EHLO client.test", reply: "250 mx.test" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const [refused, unsupported] = yield* Effect.all([
        Effect.scoped(
          Effect.flatMap(SmtpClient.connect({ host: "mx.test", security: "none" }), (s) => Effect.flip(s.starttls()))
        ),
        Effect.scoped(
          Effect.flatMap(SmtpClient.connect({ host: "mx.test", security: "none" }), (s) => Effect.flip(s.starttls()))
        )
      ]).pipe(Effect.provide(server.layer))
      assert.strictEqual(refused._tag, "SmtpResponseException")
      if (refused._tag === "SmtpResponseException") {
        assert.strictEqual(refused.code, 454)
        assert.strictEqual(refused.enhancedCode, "4.7.0")
      }
      assert.strictEqual(unsupported._tag, "SmtpNotSupportedError")
    }))

  it.scoped("a failed handshake is SmtpTlsError with its reason and the connection is closed", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: ehloTls },
          { expect: "STARTTLS", reply: "220 go ahead", tls: { fail: "hostname-mismatch" } }
        ]
      })
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({ host: "mx.test" })).pipe(Effect.provide(server.layer))
      )
      assert.strictEqual(error._tag, "SmtpTlsError")
      if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "hostname-mismatch")
      assert.strictEqual(server.written(0), "EHLO client.test\r\nSTARTTLS\r\n")
    }))

  it.scoped("implicit TLS: port 465 by default and the handshake before the greeting", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ steps: [{ expect: "QUIT", reply: "221 bye" }] })
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "tls" })
        assert.isTrue(yield* smtp.isSecure)
      })).pipe(Effect.provide(server.layer))
      const c = server.connection(0)
      assert.strictEqual(c.connectOptions.port, 465)
      assert.isDefined(c.connectOptions.tls)
      const implicit = yield* ScriptedTransport.make({ steps: [{ expect: "QUIT", reply: "221 bye" }] })
      yield* Effect.scoped(SmtpClient.connect({ host: "mx.test", port: 465 })).pipe(
        Effect.provide(implicit.layer),
        Effect.ignore
      )
      assert.isDefined(implicit.connection(0).connectOptions.tls, "port 465 means implicit TLS by default")
    }))
})
