import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer } from "effect"
import { SmtpClient, SmtpConnection } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as EmbeddedServer from "../support/smtpServer.js"

describe("SmtpClient.layerConfig", () => {
  it.live("builds a session from Config (password as Redacted), logs in, sends, and QUITs with the layer", () =>
    Effect.gen(function*() {
      const logins: Array<string> = []
      const server = yield* EmbeddedServer.make({
        authMethods: ["PLAIN"],
        onAuth(auth, _session, callback) {
          logins.push(`${auth.username}:${auth.password}`)
          callback(null, { user: auth.username })
        }
      })
      const live = SmtpClient.layerConfig({
        host: Config.string("SMTP_HOST"),
        port: Config.integer("SMTP_PORT"),
        security: Config.succeed("none" as const),
        auth: Config.all({ user: Config.string("SMTP_USER"), password: Config.redacted("SMTP_PASSWORD") })
      }).pipe(
        Layer.provide(NodeSmtpTransport.layer),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
          new Map([
            ["SMTP_HOST", server.host],
            ["SMTP_PORT", String(server.port)],
            ["SMTP_USER", "app"],
            ["SMTP_PASSWORD", "s3cret"]
          ])
        )))
      )
      const refused = yield* Effect.gen(function*() {
        const smtp = yield* SmtpConnection.SmtpConnection
        assert.isTrue(yield* smtp.isAuthenticated)
        return yield* smtp.sendmail("app@example.test", "ops@example.test", "Subject: hi\r\n\r\nfrom a layer\r\n")
      }).pipe(Effect.provide(live))
      assert.deepStrictEqual(refused, {})
      assert.deepStrictEqual(logins, ["app:s3cret"])
      const [received] = yield* server.waitFor(1)
      assert.strictEqual(received.user, "app")
    }).pipe(Effect.scoped))

  it.live("a missing setting is a ConfigError, not a defect", () =>
    Effect.gen(function*() {
      const live = SmtpClient.layerConfig({ host: Config.string("SMTP_HOST") }).pipe(
        Layer.provide(NodeSmtpTransport.layer),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))
      )
      const exit = yield* Effect.exit(Effect.provide(SmtpConnection.SmtpConnection, live))
      assert.isTrue(exit._tag === "Failure" && exit.cause._tag === "Fail")
    }))
})
