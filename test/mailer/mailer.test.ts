import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Schedule, TestClock } from "effect"
import { Mailer, SmtpError, SmtpReply } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import { ScriptedTransport } from "effect-smtp/testing"
import { guard } from "../session/support.js"
import * as EmbeddedServer from "../support/smtpServer.js"
import { accepted, EHLO, QUIT } from "./steps.js"

const noDelay = Schedule.recurs(3)
const options = { host: "mx.test", security: "none", retry: noDelay } as const

describe("Mailer", () => {
  it.scoped("a transient 451 at MAIL is retried on the same connection, after RSET", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          { expect: "MAIL FROM:<a@x.test>", reply: "451 4.3.0 try again" },
          { expect: "RCPT TO:<b@x.test>", reply: "503 5.5.1 no" },
          { expect: "DATA", reply: "503 5.5.1 no" },
          { expect: "RSET", reply: "250 ok" },
          ...accepted(),
          QUIT
        ]
      })
      const refused = yield* Effect.scoped(
        Effect.flatMap(Mailer.make(options), (mailer) => mailer.sendmail("a@x.test", "b@x.test", "hi"))
      ).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(refused, {})
      assert.strictEqual(server.connections().length, 1)
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.scoped("a permanent 550 is not retried", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          { expect: "MAIL FROM:<a@x.test>", reply: "550 5.7.1 no" },
          { expect: "RCPT TO:<b@x.test>", reply: "503 5.5.1 no" },
          { expect: "DATA", reply: "503 5.5.1 no" },
          { expect: "RSET", reply: "250 ok" },
          QUIT
        ]
      })
      const error = yield* Effect.flip(Effect.scoped(
        Effect.flatMap(Mailer.make(options), (mailer) => mailer.sendmail("a@x.test", "b@x.test", "hi"))
      )).pipe(Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpSenderRefused")
      assert.strictEqual(server.written(0).split("MAIL FROM").length - 1, 1)
    }))

  it.scoped("a connection the server closed is replaced by a fresh one", () =>
    Effect.gen(function*() {
      const first = accepted()
      const server = yield* ScriptedTransport.make(
        { steps: [EHLO, ...first.slice(0, 3), { ...first[3], close: true }] },
        { steps: [EHLO, ...accepted("c@x.test"), QUIT] }
      )
      yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
        yield* mailer.sendmail("c@x.test", "b@x.test", "hi")
      })).pipe(Effect.provide(server.layer))
      assert.strictEqual(server.connections().length, 2)
      assert.deepStrictEqual(server.connection(1).mismatches(), [])
    }))

  it.scoped("a refused connection is retried with a new one", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ refuse: true, steps: [] }, { steps: [EHLO, ...accepted(), QUIT] })
      const refused = yield* Effect.scoped(
        Effect.flatMap(Mailer.make(options), (mailer) => mailer.sendmail("a@x.test", "b@x.test", "hi"))
      ).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(refused, {})
      assert.strictEqual(server.connections().length, 2)
    }))

  it.scoped("lost while waiting for the reply to the end of data: not retried (it may have been delivered)", () =>
    Effect.gen(function*() {
      const steps = accepted()
      const server = yield* ScriptedTransport.make(
        { steps: [EHLO, ...steps.slice(0, 3), { expect: steps[3].expect, close: true }] },
        // there for a second attempt to find, which must not happen
        { steps: [EHLO, ...accepted(), QUIT], strict: false }
      )
      const error = yield* Effect.flip(Effect.scoped(
        Effect.flatMap(Mailer.make(options), (mailer) => mailer.sendmail("a@x.test", "b@x.test", "hi"))
      )).pipe(Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpDeliveryUnknown")
      assert.strictEqual(server.connections().length, 1, "no second attempt")
    }))

  it.scoped("an input whose property throws when read dies, and gives its connection back to the pool", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* ScriptedTransport.make({ steps: [EHLO, ...accepted(), QUIT] })
        yield* Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
          const unreadable = {
            from: "a@x.test",
            get to(): string {
              throw new Error("a getter that throws")
            },
            message: "hi"
          }
          const exit = yield* Effect.exit(mailer.send(unreadable))
          assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), "a defect, not a typed failure")
          // the pool's one connection is free again: before, this waited forever
          const result = yield* mailer.send({ from: "a@x.test", to: "b@x.test", message: "hi" })
          assert.deepStrictEqual(result.envelope, { from: "a@x.test", to: ["b@x.test"] })
        })).pipe(Effect.provide(server.layer))
        assert.strictEqual(server.connections().length, 1)
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "a send after an input that threw"
    ))

  it.effect("the rate limit spaces the messages out", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ steps: [EHLO, ...accepted(), ...accepted(), ...accepted(), QUIT] })
      const fiber = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({
          ...options,
          maxConnections: 1,
          rateLimit: { limit: 1, interval: "1 second" }
        })
        for (let i = 0; i < 3; i++) yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
      })).pipe(Effect.provide(server.layer), Effect.fork)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(server.written(0).split("MAIL FROM").length - 1, 1, "one message in the first second")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(server.written(0).split("MAIL FROM").length - 1, 2)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(server.written(0).split("MAIL FROM").length - 1, 3)
    }))

  it.live("over real sockets: many concurrent messages share at most maxConnections connections", () =>
    Effect.gen(function*() {
      let connections = 0
      let open = 0
      let maxOpen = 0
      const server = yield* EmbeddedServer.make({
        onConnect(_session, callback) {
          connections++
          maxOpen = Math.max(maxOpen, ++open)
          callback()
        },
        onClose() {
          open--
        }
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({
          host: server.host,
          port: server.port,
          maxConnections: 3,
          idleTimeout: "200 millis"
        })
        yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) => mailer.sendmail("a@example.test", `r${i}@example.test`, `Subject: ${i}\r\n\r\nbody ${i}\r\n`),
          { concurrency: 10 }
        )
      })).pipe(Effect.provide(NodeSmtpTransport.layer))
      const received = yield* server.waitFor(30)
      assert.strictEqual(received.length, 30)
      assert.isAtMost(maxOpen, 3)
      assert.isAtMost(connections, 3)
      yield* Effect.sleep("100 millis")
      assert.strictEqual(open, 0, "the Scope closed every connection")
    }).pipe(Effect.scoped))

  it("isRetryable: 4xx, lost connections, timeouts and malformed replies, but never an unknown outcome", () => {
    const reply = (code: number) => SmtpReply.make(code, "x")
    const cases: ReadonlyArray<readonly [SmtpError.SmtpError, boolean]> = [
      [new SmtpError.SmtpSenderRefused({ code: 451, text: "x", sender: "a" }), true],
      [new SmtpError.SmtpSenderRefused({ code: 550, text: "x", sender: "a" }), false],
      [new SmtpError.SmtpRecipientsRefused({ recipients: { a: reply(450), b: reply(451) } }), true],
      [new SmtpError.SmtpRecipientsRefused({ recipients: { a: reply(450), b: reply(550) } }), false],
      [new SmtpError.SmtpDataError({ code: 452, text: "x" }), true],
      [new SmtpError.SmtpDataError({ code: 554, text: "x" }), false],
      [new SmtpError.SmtpConnectError({ address: "x:25" }), true],
      [new SmtpError.SmtpConnectError({ address: "x:25", code: 421, text: "busy" }), true],
      [new SmtpError.SmtpConnectError({ address: "x:25", code: 554, text: "no" }), false],
      [new SmtpError.SmtpServerDisconnected({ during: "waiting for the reply to RCPT" }), true],
      // before the end of data was written: the message cannot have been accepted
      [new SmtpError.SmtpServerDisconnected({ during: "writing the message data" }), true],
      [new SmtpError.SmtpTimeout({ phase: "waiting for the reply to MAIL", timeoutMillis: 1 }), true],
      [new SmtpError.SmtpProtocolError({ reason: "Malformed reply" }), true],
      // after it: the message may have been accepted
      [
        new SmtpError.SmtpDeliveryUnknown({
          during: "waiting for the reply to <end of data>",
          cause: new SmtpError.SmtpServerDisconnected({ during: "waiting for the reply to <end of data>" })
        }),
        false
      ],
      [new SmtpError.SmtpDeliveryUnknown({ during: "waiting for the reply to BDAT" }), false],
      [new SmtpError.SmtpTimeout({ phase: "connecting to x:25", timeoutMillis: 1 }), true],
      [new SmtpError.SmtpAuthenticationError({ code: 535, text: "x", mechanisms: [] }), false],
      [new SmtpError.SmtpAuthenticationError({ code: 454, text: "x", mechanisms: [] }), true],
      [new SmtpError.SmtpNotSupportedError({ feature: "SMTPUTF8", detail: "x" }), false],
      [new SmtpError.SmtpInvalidInput({ reason: "x" }), false],
      [new SmtpError.SmtpTlsError({ reason: "untrusted", detail: "x" }), false]
    ]
    for (const [error, expected] of cases) assert.strictEqual(Mailer.isRetryable(error), expected, error.message)
  })
})
