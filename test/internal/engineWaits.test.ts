/**
 * The engine's waits are one-shot (`Async.once`): every Effect it hands out for a wait must make a
 * new one at each run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either } from "effect"
import { SmtpTransport } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import * as Codec from "../../src/internal/command.js"
import * as Engine from "../../src/internal/engine.js"

describe("the engine's waits, run more than once", () => {
  it.scoped("the greeting, and a group's wait taken from its getter each time", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "NOOP", reply: "250 ok" }]
      })
      const transport = yield* Effect.provide(SmtpTransport.SmtpTransport, server.layer)
      const connection = yield* transport.connect({ host: "mx.test", port: 25, timeout: Duration.seconds(5) })
      const engine = yield* Engine.make(connection, {
        debug: 0,
        replyTimeout: () => Duration.seconds(5),
        writeTimeout: Duration.seconds(5)
      })
      const first = yield* engine.greeting
      const again = yield* engine.greeting
      assert.strictEqual(first.code, 220)
      assert.strictEqual(again, first)
      const pending = yield* engine.send([Either.getOrThrow(Codec.encode("NOOP"))])
      const batch = yield* pending.await
      assert.strictEqual((yield* pending.await).replies[0], batch.replies[0])
      assert.strictEqual(batch.replies[0].code, 250)
    }))
})
