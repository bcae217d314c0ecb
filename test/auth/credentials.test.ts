/**
 * The `auth` option with every kind of credentials: OAuth 2.0 token providers (told why they are
 * called), custom mechanisms, through connect, layerConfig and Mailer (one token shared by the
 * connections, renewed once per rejection).
 */
import { assert, describe, it } from "@effect/vitest"
import { Config, Effect, Layer, Redacted, Schedule } from "effect"
import type { SmtpAuth } from "effect-smtp"
import { Mailer, SmtpClient, SmtpConnection } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import { b64, EHLO, oauthErrorJson, QUIT, xoauth2 } from "./helpers.js"

const user = "someone@example.com"
const connectOptions = { host: "mx.test", security: "tls" } as const

/** A provider that records its requests and hands out the tokens in turn. */
const recordingProvider = (...tokens: ReadonlyArray<string>) => {
  const requests: Array<{ renew: boolean; rejected: string | undefined }> = []
  const provider: SmtpAuth.OAuth2TokenProvider = (request) =>
    Effect.sync(() => {
      requests.push({
        renew: request.renew,
        rejected: request.rejected === undefined ? undefined : Redacted.value(request.rejected)
      })
      return Redacted.make(tokens[Math.min(requests.length - 1, tokens.length - 1)])
    })
  return { provider, requests }
}

const accepted = (token: string): ReadonlyArray<ScriptedTransport.Step> => [
  { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, token))}`, reply: "235 2.7.0 Accepted" }
]
const rejected = (token: string): ReadonlyArray<ScriptedTransport.Step> => [
  { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, token))}`, reply: `334 ${b64(oauthErrorJson)}` },
  { expect: "", reply: "535 5.7.8 Username and Password not accepted" }
]

describe("auth: OAuth 2.0 through connect", () => {
  it.effect("the provider is asked once (renew: false), the session is authenticated", () =>
    Effect.gen(function*() {
      const tokens = recordingProvider("ya29.first")
      const server = yield* ScriptedTransport.make({ steps: [EHLO("XOAUTH2"), ...accepted("ya29.first"), QUIT] })
      const authenticated = yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ ...connectOptions, auth: { user, oauth2: tokens.provider } }),
        (smtp) => smtp.isAuthenticated
      )).pipe(Effect.provide(server.layer))
      assert.isTrue(authenticated)
      assert.deepStrictEqual(tokens.requests, [{ renew: false, rejected: undefined }])
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.effect("a rejected token: asked again with renew: true and the rejected token", () =>
    Effect.gen(function*() {
      const tokens = recordingProvider("ya29.expired", "ya29.fresh")
      const server = yield* ScriptedTransport.make({
        steps: [EHLO("XOAUTH2"), ...rejected("ya29.expired"), ...accepted("ya29.fresh"), QUIT]
      })
      yield* Effect.scoped(SmtpClient.connect({ ...connectOptions, auth: { user, oauth2: tokens.provider } })).pipe(
        Effect.provide(server.layer)
      )
      assert.deepStrictEqual(tokens.requests, [
        { renew: false, rejected: undefined },
        { renew: true, rejected: "ya29.expired" }
      ])
    }))

  it.effect("a failing provider: SmtpAuthenticationError with its error as cause; no AUTH written", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ steps: [EHLO("XOAUTH2"), QUIT] })
      const error = yield* Effect.scoped(SmtpClient.connect({
        ...connectOptions,
        auth: { user, oauth2: () => Effect.fail(new Error("token endpoint unreachable")) }
      })).pipe(Effect.flip, Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpAuthenticationError")
      assert.include(error.message, "token provider failed")
      assert.notInclude(server.written(0), "AUTH")
    }))

  it.effect("a custom mechanism through connect", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [EHLO("X-TOKEN"), { expect: "AUTH X-TOKEN c2VjcmV0", reply: "235 ok" }, QUIT]
      })
      const authenticated = yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({
          ...connectOptions,
          auth: { mechanism: "X-TOKEN", authenticator: () => Effect.succeed("secret") }
        }),
        (smtp) => smtp.isAuthenticated
      )).pipe(Effect.provide(server.layer))
      assert.isTrue(authenticated)
    }))

  it.effect("layerConfig takes a provider (Config.succeed) beside values read from Config", () =>
    Effect.gen(function*() {
      const tokens = recordingProvider("ya29.first")
      const server = yield* ScriptedTransport.make({ steps: [EHLO("XOAUTH2"), ...accepted("ya29.first"), QUIT] })
      const layer = SmtpClient.layerConfig({
        host: Config.succeed("mx.test"),
        security: Config.succeed("tls" as const),
        auth: Config.succeed({ user, oauth2: tokens.provider })
      })
      const authenticated = yield* Effect.flatMap(SmtpConnection.SmtpConnection, (smtp) => smtp.isAuthenticated).pipe(
        Effect.provide(Layer.provide(layer, server.layer)),
        Effect.scoped
      )
      assert.isTrue(authenticated)
      assert.strictEqual(tokens.requests.length, 1)
    }))
})

describe("auth: OAuth 2.0 through Mailer", () => {
  it.effect("one token for every connection; a rejection renews it once", () =>
    Effect.gen(function*() {
      const tokens = recordingProvider("ya29.first", "ya29.second")
      // each connection is closed by the server after its message: every send opens a new one
      const send = (from: string) => [
        { expect: `MAIL FROM:<${from}>`, reply: "250 ok" },
        { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
        { expect: "DATA", reply: "354 go" },
        { expect: "hi\r\n.\r\n", reply: "250 queued", close: true }
      ]
      const server = yield* ScriptedTransport.make(
        { steps: [EHLO("XOAUTH2"), ...accepted("ya29.first"), ...send("a@x.test")] },
        // the second connection: the cached token is rejected (it expired), renewed once
        { steps: [EHLO("XOAUTH2"), ...rejected("ya29.first"), ...accepted("ya29.second"), ...send("c@x.test")] },
        // the third: the renewed token, from the cache (the provider is not asked again)
        { steps: [EHLO("XOAUTH2"), ...accepted("ya29.second"), ...send("d@x.test")] }
      )
      yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({
          ...connectOptions,
          auth: { user, oauth2: tokens.provider },
          maxConnections: 1,
          retry: Schedule.stop
        })
        for (const from of ["a@x.test", "c@x.test", "d@x.test"]) yield* mailer.sendmail(from, "b@x.test", "hi")
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(tokens.requests, [
        { renew: false, rejected: undefined },
        { renew: true, rejected: "ya29.first" }
      ])
      for (const c of server.connections()) assert.deepStrictEqual(c.mismatches(), [])
    }))
})
