import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule, TestClock } from "effect"
import { Mailer, SmtpTransport } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
const QUIT = { expect: "QUIT", reply: "221 bye" }
const accepted = (options: { readonly close?: boolean } = {}) => [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: "hi\r\n.\r\n", reply: "250 queued", close: options.close ?? false }
]
const options = { host: "mx.test", security: "none", retry: Schedule.recurs(3) } as const

/** The deepest FiberRef stack of the current fiber (FiberRefs keep one entry per fiber that set a value). */
const fiberRefsDepth = Effect.map(
  Effect.getFiberRefs,
  (refs) => Math.max(...Array.from(refs.locals.values(), (stack) => stack.length))
)

describe("Mailer connections", () => {
  it.live("a connection dropped while idle is replaced even when it holds the only place (no deadlock)", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(
        { steps: [EHLO, ...accepted()] },
        { steps: [EHLO, ...accepted(), QUIT] }
      )
      yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
        server.connection(0).hangUp()
        // let the session read the end of the connection: the next send finds it closed
        yield* Effect.repeatN(Effect.yieldNow(), 20)
        yield* mailer.sendmail("a@x.test", "b@x.test", "hi").pipe(
          // only a guard: the send completes at once, or never when the pool deadlocks
          Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "deadlock" as const })
        )
      })).pipe(Effect.provide(server.layer))
      assert.strictEqual(server.connections().length, 2)
      assert.deepStrictEqual(server.connection(1).mismatches(), [])
      assert.strictEqual(server.connection(1).remaining(), 0, "QUIT when the Mailer closed")
    }))

  it.scoped("the fiber context does not grow with every replaced connection", () =>
    Effect.gen(function*() {
      const n = 12
      const server = yield* ScriptedTransport.make(
        ...Array.from({ length: n }, () => ({ steps: [EHLO, ...accepted({ close: true })] }))
      )
      const atConnect: Array<number> = []
      const transport: SmtpTransport.Service = {
        ...server.service,
        connect: (o) => Effect.zipRight(Effect.map(fiberRefsDepth, (d) => atConnect.push(d)), server.service.connect(o))
      }
      const inSender: Array<number> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        for (let i = 0; i < n; i++) {
          yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
          inSender.push(yield* fiberRefsDepth)
        }
      })).pipe(Effect.provideService(SmtpTransport.SmtpTransport, transport))
      assert.strictEqual(server.connections().length, n)
      assert.strictEqual(atConnect.length, n)
      // opening connection k must not carry the context of connections 1..k-1
      assert.deepStrictEqual(atConnect, atConnect.map(() => atConnect[0]), `depth at each connect: ${atConnect}`)
      assert.deepStrictEqual(inSender, inSender.map(() => inSender[0]), `sender's depth after each send: ${inSender}`)
    }))

  it.effect("a connection unused for idleTimeout is closed with QUIT; the next message opens another", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make(
        { steps: [EHLO, ...accepted(), QUIT] },
        { steps: [EHLO, ...accepted(), QUIT] }
      )
      yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, idleTimeout: "10 seconds" })
        yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
        yield* TestClock.adjust("9 seconds")
        assert.isFalse(server.connection(0).written().includes("QUIT"))
        yield* TestClock.adjust("2 seconds")
        yield* Effect.repeatN(Effect.yieldNow(), 20)
        assert.isTrue(server.connection(0).written().endsWith("QUIT\r\n"))
        assert.isTrue(server.connection(0).clientClosed())
        yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
        assert.strictEqual(server.connections().length, 2)
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(server.connection(1).mismatches(), [])
      assert.strictEqual(server.connection(1).remaining(), 0)
    }))
})
