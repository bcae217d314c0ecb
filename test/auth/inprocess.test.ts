import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, type Scope } from "effect"
import { SmtpClient, SmtpError, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import type { SMTPServerOptions } from "smtp-server"
import * as EmbeddedServer from "../support/smtpServer.js"
import { authError, oauthErrorJson, tokenProvider } from "./helpers.js"

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

const secret = "correct horse battery staple"
const message = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: auth\r\n\r\nafter AUTH\r\n"

interface Seen {
  readonly method: string
  readonly username: string | undefined
  readonly accessToken?: string | undefined
}

/**
 * smtp-server with AUTH required (authOptional false) offering `methods`; alice's password is
 * `secret`; XOAUTH2 accepts only `ya29.refreshed` and answers other tokens with Google's error JSON.
 */
const authServer = (methods: ReadonlyArray<string>, options: SMTPServerOptions = {}) =>
  Effect.gen(function*() {
    const seen: Array<Seen> = []
    const server = yield* EmbeddedServer.make({
      authMethods: methods.slice(),
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        const method = String(auth.method)
        seen.push({ method, username: auth.username, accessToken: auth.accessToken })
        const ok = auth.username === "alice" && (
          method === "CRAM-MD5" ?
            auth.validatePassword(secret) :
            method === "XOAUTH2" ?
            auth.accessToken === "ya29.refreshed" :
            auth.password === secret
        )
        if (ok) return callback(null, { user: auth.username })
        if (method === "XOAUTH2") return callback(null, { data: JSON.parse(oauthErrorJson) })
        return callback(null, {})
      },
      ...options
    })
    const connect = SmtpClient.connect({ host: server.host, port: server.port, security: "none" })
    return { server, seen, connect }
  })

describe("AUTH against smtp-server in process (127.0.0.1: loopback, so PLAIN/LOGIN are allowed in clear)", () => {
  for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
    it.live(`${mechanism}: login, then a message the server attributes to the user`, () =>
      live(Effect.gen(function*() {
        const { connect, seen, server } = yield* authServer([mechanism])
        const smtp = yield* connect
        const reply = yield* smtp.login("alice", Redacted.make(secret))
        assert.strictEqual(reply.code, 235)
        assert.isTrue(yield* smtp.isAuthenticated)
        assert.deepStrictEqual(seen.map((s) => [s.method, s.username]), [[mechanism, "alice"]])
        yield* smtp.sendmail("alice@example.test", "bob@example.test", message)
        const [received] = yield* server.waitFor(1)
        assert.strictEqual(received.user, "alice")
        assert.strictEqual(received.data.toString("utf8"), message)
      })))
  }

  it.live("all three offered: CRAM-MD5 is the one used", () =>
    live(Effect.gen(function*() {
      const { connect, seen } = yield* authServer(["PLAIN", "LOGIN", "CRAM-MD5"])
      const smtp = yield* connect
      yield* smtp.login("alice", Redacted.make(secret))
      assert.deepStrictEqual(seen.map((s) => s.method), ["CRAM-MD5"])
    })))

  it.live("a wrong password: every mechanism tried, SmtpAuthenticationError 535; the right one then works", () =>
    live(Effect.gen(function*() {
      const { connect, seen, server } = yield* authServer(["PLAIN", "LOGIN", "CRAM-MD5"])
      const smtp = yield* connect
      const error = authError(yield* Effect.flip(smtp.login("alice", Redacted.make("wrong password"))))
      assert.strictEqual(error.code, 535)
      assert.strictEqual(error.command, "AUTH")
      assert.deepStrictEqual(error.mechanisms, ["CRAM-MD5", "PLAIN", "LOGIN"])
      assert.deepStrictEqual(seen.map((s) => s.method), ["CRAM-MD5", "PLAIN", "LOGIN"])
      assert.notInclude(error.message, "wrong password")
      assert.isFalse(yield* smtp.isAuthenticated)

      yield* smtp.login("alice", Redacted.make(secret), { mechanisms: ["PLAIN"] })
      assert.isTrue(yield* smtp.isAuthenticated)
      yield* smtp.sendmail("alice@example.test", "bob@example.test", message)
      assert.strictEqual((yield* server.waitFor(1))[0].user, "alice")
    })))

  it.live("a second login gets smtp-server's 503 (no identity changes), which counts as success", () =>
    live(Effect.gen(function*() {
      const { connect } = yield* authServer(["PLAIN"])
      const smtp = yield* connect
      yield* smtp.login("alice", Redacted.make(secret))
      const again = yield* smtp.login("alice", Redacted.make(secret))
      assert.strictEqual(again.code, 503)
      assert.isTrue(yield* smtp.isAuthenticated)
    })))

  it.live("without login the server refuses MAIL (AUTH really is required here)", () =>
    live(Effect.gen(function*() {
      const { connect } = yield* authServer(["PLAIN"])
      const smtp = yield* connect
      const error = yield* Effect.flip(smtp.sendmail("alice@example.test", "bob@example.test", message))
      assert.instanceOf(error, SmtpError.SmtpSenderRefused)
      assert.strictEqual((error as SmtpError.SmtpSenderRefused).code, 530)
    })))

  it.live("XOAUTH2: the first token is rejected with the error JSON, the refreshed one accepted", () =>
    live(Effect.gen(function*() {
      const { connect, seen, server } = yield* authServer(["PLAIN", "XOAUTH2"])
      const smtp = yield* connect
      const tokens = tokenProvider("ya29.first", "ya29.refreshed")
      const reply = yield* smtp.loginOAuth2("alice", tokens.provider)
      assert.strictEqual(reply.code, 235)
      assert.strictEqual(tokens.runs(), 2)
      assert.deepStrictEqual(seen.map((s) => [s.method, s.username, s.accessToken]), [
        ["XOAUTH2", "alice", "ya29.first"],
        ["XOAUTH2", "alice", "ya29.refreshed"]
      ])
      yield* smtp.sendmail("alice@example.test", "bob@example.test", message)
      assert.strictEqual((yield* server.waitFor(1))[0].user, "alice")
    })))

  it.live("XOAUTH2: both tokens rejected: SmtpAuthenticationError 535 with the status, not the token", () =>
    live(Effect.gen(function*() {
      const { connect, seen } = yield* authServer(["XOAUTH2"])
      const smtp = yield* connect
      const tokens = tokenProvider("ya29.first", "ya29.second")
      const error = authError(yield* Effect.flip(smtp.loginOAuth2("alice", tokens.provider)))
      assert.strictEqual(error.code, 535)
      assert.deepStrictEqual(error.mechanisms, ["XOAUTH2"])
      assert.include(error.detail ?? "", "status 401")
      assert.strictEqual(tokens.runs(), 2)
      assert.strictEqual(seen.length, 2)
      for (const text of [error.message, String(error), JSON.stringify(error)]) assert.notInclude(text, "ya29")
    })))
})
