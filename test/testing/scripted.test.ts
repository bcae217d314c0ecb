import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { Mailer, SmtpClient } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
const QUIT = { expect: "QUIT", reply: "221 bye" }
const sendTo = (to: string) =>
  Effect.scoped(
    Effect.flatMap(
      SmtpClient.connect({ host: "mx.test", security: "none" }),
      (smtp) => smtp.sendmail("a@x.test", to, "Subject: hi\r\n\r\nhello")
    )
  )
const script = (rcpt: string): ScriptedTransport.Script => ({
  steps: [
    EHLO,
    { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
    { expect: `RCPT TO:<${rcpt}>`, reply: "250 ok" },
    { expect: "DATA", reply: "354 go" },
    { reply: "250 queued" },
    QUIT
  ]
})

/** The ScriptMismatch a failed Exit died with. */
const mismatch = <A, E>(exit: Exit.Exit<A, E>): ScriptedTransport.ScriptMismatch => {
  assert.isTrue(Exit.isFailure(exit), "the test should have failed")
  const defect = Cause.dieOption((exit as Exit.Failure<A, E>).cause)
  assert.isTrue(Option.isSome(defect), "a defect")
  const value = Option.getOrThrow(defect)
  assert.instanceOf(value, ScriptedTransport.ScriptMismatch)
  return value as ScriptedTransport.ScriptMismatch
}

describe("ScriptedTransport: a script is a test", () => {
  it.effect("a mismatch is answered 500 5.5.2 with the expectation, never the step's reply", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ ...script("bob@x.test"), strict: false })
      const error = yield* Effect.flip(sendTo("ada@x.test").pipe(Effect.provide(server.layer)))
      assert.strictEqual(error._tag, "SmtpRecipientsRefused")
      if (error._tag !== "SmtpRecipientsRefused") return
      const reply = error.recipients["ada@x.test"]
      assert.strictEqual(reply.code, 500)
      assert.strictEqual(reply.text, "5.5.2 scripted server: expected \"RCPT TO:<bob@x.test>\"")
      assert.include(error.message, "<ada@x.test> 500 5.5.2 scripted server: expected \"RCPT TO:<bob@x.test>\"")
      // pipelined: DATA went with RCPT, then the empty message and RSET, so the script is out of step
      assert.deepStrictEqual(server.connection(0).mismatches(), [
        "step 3: expected \"RCPT TO:<bob@x.test>\", got \"RCPT TO:<ada@x.test>\"",
        "step 6: expected \"QUIT\", got \"RSET\"",
        "unexpected \"QUIT\" after the end of the script"
      ])
    }))

  it.effect("a mismatch fails the test: the layer's release dies with expected and actual lines", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(script("bob@x.test"))
      const exit = yield* Effect.exit(sendTo("ada@x.test").pipe(Effect.provide(server.layer)))
      const defect = mismatch(exit)
      assert.strictEqual(
        defect.message,
        [
          "The SMTP conversation did not go as scripted:",
          "connection 0:",
          "  step 3: expected \"RCPT TO:<bob@x.test>\"",
          "            actual \"RCPT TO:<ada@x.test>\"",
          "  step 6: expected \"QUIT\"",
          "            actual \"RSET\"",
          "  after the end of the script: \"QUIT\""
        ].join("\n")
      )
    }))

  it.effect("a script not played to its end fails, listing the steps not played", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [EHLO, { expect: "NOOP", reply: "250 ok" }, { expect: "NOOP", reply: "250 ok" }, QUIT]
      })
      const exit = yield* Effect.exit(
        Effect.scoped(Effect.flatMap(SmtpClient.connect({ host: "mx.test", security: "none" }), (smtp) => smtp.ehlo()))
          .pipe(Effect.provide(server.layer))
      )
      assert.include(
        mismatch(exit).message,
        "connection 0:\n  step 2: expected \"NOOP\"\n            actual \"QUIT\"\n  not played (2 of 4 steps): step 3 \"NOOP\", step 4 \"QUIT\""
      )
    }))

  it.effect("a script never connected fails when the layer is released", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(script("b@x.test"), script("c@x.test"))
      const exit = yield* Effect.exit(sendTo("b@x.test").pipe(Effect.provide(server.layer)))
      assert.strictEqual(mismatch(exit).message.split("\n")[1], "script 1: never connected (6 steps)")
    }))

  it.effect("in a Scope (it.scoped), the check runs when it closes, after the connections", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const server = yield* ScriptedTransport.make(script("bob@x.test"))
        // the connection lives in the same Scope, beyond the layer's own
        const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none" }).pipe(
          Effect.provide(server.layer)
        )
        yield* Effect.ignore(smtp.sendmail("a@x.test", "ada@x.test", "hi"))
      })))
      assert.include(mismatch(exit).message, "actual \"RCPT TO:<ada@x.test>\"")
    }))

  it.scoped("in a Scope, a connection opened under one Effect.provide and used later is not a divergence", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(script("bob@x.test"))
      const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none" }).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(yield* smtp.sendmail("a@x.test", "bob@x.test", "hi"), {})
    }))

  it.effect("a Mailer's pooled connections are checked when the layer is released", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(script("bob@x.test"))
      const exit = yield* Effect.exit(
        Effect.flatMap(Mailer.Mailer, (mailer) => Effect.ignore(mailer.sendmail("a@x.test", "ada@x.test", "hi"))).pipe(
          Effect.provide(
            Mailer.layer({ host: "mx.test", security: "none", retry: false }).pipe(
              Layer.provide(server.layer)
            )
          )
        )
      )
      assert.include(mismatch(exit).message, "actual \"RCPT TO:<ada@x.test>\"")
    }))

  it.effect("a script played as written: no defect; strict: false turns the check off", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(script("bob@x.test"), { ...script("never@x.test"), strict: false })
      assert.deepStrictEqual(yield* sendTo("bob@x.test").pipe(Effect.provide(server.layer)), {})
      assert.deepStrictEqual(server.problems(), [])
      yield* server.assertPlayed
    }))

  it.effect("problems() and assertPlayed report on demand, open connections included", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(script("bob@x.test"))
      assert.deepStrictEqual(server.problems(), ["script 0: never connected (6 steps)"])
      const exit = yield* Effect.exit(server.assertPlayed)
      assert.include(mismatch(exit).message, "never connected")
      yield* sendTo("bob@x.test").pipe(Effect.provide(server.layer))
      yield* server.assertPlayed
    }))
})
