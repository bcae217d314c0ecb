/** Bad options end in typed errors, never defects; an interrupted STARTTLS closes the session. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted, type Scope } from "effect"
import { SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as RawServer from "../support/rawServer.js"
import * as EmbeddedServer from "../support/smtpServer.js"

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

/** The failure's tag, or "defect"/"success": a thrown exception must never come out. */
const outcome = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(
    Effect.exit(effect),
    (exit) => Exit.isSuccess(exit) ? "success" : exit.cause._tag === "Fail" ? exit.cause.error._tag : "defect"
  )

describe("bad options are typed errors", () => {
  it.live("closeTimeout and tls.handshakeTimeout that are not durations: SmtpInvalidInput", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const base = { host: server.host, port: server.port, security: "none" } as const
      assert.strictEqual(
        yield* outcome(SmtpClient.connect({ ...base, closeTimeout: "5 s" as any })),
        "SmtpInvalidInput"
      )
      assert.strictEqual(
        yield* outcome(SmtpClient.connect({ ...base, tls: { handshakeTimeout: "3 s" as any } })),
        "SmtpInvalidInput"
      )
      assert.strictEqual(yield* outcome(SmtpClient.connect({ ...base, closeTimeout: "0 millis" })), "SmtpInvalidInput")
    })))

  it.live("a malformed certificate or key: SmtpTlsError", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const connect = SmtpClient.connect({
        host: server.host,
        port: server.port,
        security: "tls",
        tls: { cert: "not a certificate", key: Redacted.make("not a key") }
      })
      assert.strictEqual(yield* outcome(connect), "SmtpTlsError")
    })))

  it.live("a source address that is not an address: SmtpConnectError", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      assert.strictEqual(
        yield* outcome(
          SmtpClient.connect({
            host: server.host,
            port: server.port,
            security: "none",
            sourceAddress: { host: "bogus" }
          })
        ),
        "SmtpConnectError"
      )
    })))

  it.live("an interrupted STARTTLS handshake leaves the session closed, not half-open", () =>
    live(Effect.gen(function*() {
      const raw = yield* RawServer.make((socket, lines) => {
        socket.write("220 raw.test ESMTP\r\n")
        const stop = RawServer.onLines(socket, lines, (line) => {
          if (line.startsWith("EHLO")) socket.write("250-raw.test\r\n250 STARTTLS\r\n")
          else if (line === "STARTTLS") {
            stop()
            socket.write("220 go ahead\r\n") // and never speaks TLS
          }
        })
      })
      const smtp = yield* SmtpClient.connect({
        host: "127.0.0.1",
        port: raw.port,
        security: "none",
        localHostname: "c.test"
      })
      const timedOut = yield* Effect.either(Effect.timeout(smtp.starttls(), "200 millis"))
      assert.strictEqual(timedOut._tag, "Left")
      assert.isTrue(yield* smtp.isClosed)
      assert.strictEqual(yield* outcome(smtp.noop), "SmtpServerDisconnected")
    })))
})
