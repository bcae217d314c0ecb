import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { Mailer, SmtpTransport } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
const acceptedThenClose = [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: "hi\r\n.\r\n", reply: "250 queued", close: true }
]

/** A full collection (vitest runs the test files with --expose-gc: vitest.config.ts). */
const collect = Effect.promise(async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("global.gc is missing: run node with --expose-gc")
  // a WeakRef keeps its target alive until the end of the job that made it
  await new Promise((resolve) => setTimeout(resolve, 0))
  gc()
  gc()
})

describe("Mailer memory", () => {
  it.live("connections replaced after every message become garbage", () =>
    Effect.gen(function*() {
      const n = 40
      const server = yield* ScriptedTransport.make(
        ...Array.from({ length: n }, () => ({ steps: [EHLO, ...acceptedThenClose] }))
      )
      // the transport's connection objects are held by the session only (the scripted server keeps its own records)
      const opened: Array<WeakRef<object>> = []
      const transport: SmtpTransport.Service = {
        ...server.service,
        connect: (o) => Effect.tap(server.service.connect(o), (c) => Effect.sync(() => opened.push(new WeakRef(c))))
      }
      const live = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({
          host: "mx.test",
          security: "none",
          retry: Schedule.recurs(3),
          maxConnections: 2
        })
        for (let i = 0; i < n; i++) yield* mailer.sendmail("a@x.test", "b@x.test", "hi")
        const reachable = () => opened.filter((ref) => ref.deref() !== undefined).length
        // Under Bun, JavaScriptCore's concurrent JIT can hold objects a moment longer: its work list of
        // compilations in flight is a GC root (a heap snapshot shows connections reached only from
        // "JITWorkList"). Collecting again a few times, 10 ms apart, lets those compilations finish; a
        // connection the Mailer really kept stays reachable throughout. V8 passes on the first collection.
        yield* collect
        for (let i = 0; i < 20 && reachable() > 2; i++) {
          yield* Effect.sleep("10 millis")
          yield* collect
        }
        return reachable()
      })).pipe(Effect.provideService(SmtpTransport.SmtpTransport, transport))
      assert.strictEqual(opened.length, n)
      assert.isAtMost(live, 2, `${live} of ${n} replaced connections still reachable while the Mailer is open`)
    }))
})
