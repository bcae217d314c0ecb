/**
 * Heap of a busy `Mailer` whose server closes every connection after `CLOSE_AFTER` messages
 * (default 1: a new connection for every message), over `N` messages, then after an idle period.
 *
 *   node --expose-gc --import tsx bench/mailer-memory.ts
 *
 * Environment: N (50000), WORKERS (8: fibers sending one message after another), MAX_CONNECTIONS (4),
 * CLOSE_AFTER (1; 0: never), DROP_RATE (0: fraction of connections dropped at the end of the data), TEMPFAIL_RATE
 * (0: fraction of RCPTs answered 451), EVERY (5000: report interval), IDLE_MS (8000: idle period;
 * the Mailer's idleTimeout is 2 seconds).
 *
 * The senders are a fixed number of fibers pulling from a counter (not `Effect.forEach` over the
 * N messages, whose own retention is measured by bench/mailer-bulk.ts), so what grows here is the
 * Mailer's.
 */
import { Effect, Ref, Schedule } from "effect"
import { Mailer } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import * as Sink from "./faultSink.js"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const N = env("N", 50_000)
const WORKERS = env("WORKERS", 8)
const MAX_CONNECTIONS = env("MAX_CONNECTIONS", 4)
const CLOSE_AFTER = env("CLOSE_AFTER", 1)
const DROP_RATE = env("DROP_RATE", 0)
const TEMPFAIL_RATE = env("TEMPFAIL_RATE", 0)
const EVERY = env("EVERY", 5000)
const IDLE_MS = env("IDLE_MS", 8000)

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")

const mb = (n: number) => (n / 1024 / 1024).toFixed(1)
const heapAfterGc = () => {
  gc()
  gc()
  return process.memoryUsage()
}
const report = (label: string) =>
  Effect.sync(() => {
    const m = heapAfterGc()
    console.log(`${label.padEnd(18)} heapUsed ${mb(m.heapUsed).padStart(7)} MB   rss ${mb(m.rss).padStart(7)} MB`)
  })

const main = Effect.gen(function*() {
  const sink = yield* Effect.promise(() =>
    Sink.start({
      closeAfter: CLOSE_AFTER > 0 ? CLOSE_AFTER : undefined,
      dropRate: DROP_RATE,
      tempFailRate: TEMPFAIL_RATE
    })
  )
  yield* Effect.addFinalizer(() => Effect.promise(() => sink.close()))
  console.log(
    `N=${N} WORKERS=${WORKERS} MAX_CONNECTIONS=${MAX_CONNECTIONS} CLOSE_AFTER=${CLOSE_AFTER} ` +
      `DROP_RATE=${DROP_RATE} TEMPFAIL_RATE=${TEMPFAIL_RATE} node ${process.version}`
  )
  yield* report("start")
  yield* Effect.scoped(Effect.gen(function*() {
    const mailer = yield* Mailer.make({
      host: "127.0.0.1",
      port: sink.port,
      security: "none",
      localHostname: "bench.test",
      maxConnections: MAX_CONNECTIONS,
      idleTimeout: "2 seconds",
      retry: Schedule.recurs(5)
    })
    const next = yield* Ref.make(0)
    const failed = yield* Ref.make(0)
    const started = Date.now()
    const worker = Effect.gen(function*() {
      for (;;) {
        const i = yield* Ref.getAndUpdate(next, (n) => n + 1)
        if (i >= N) return
        yield* mailer.sendmail("a@bench.test", `r${i % 100}@bench.test`, "Subject: bench\r\n\r\nhello\r\n").pipe(
          Effect.catchAll(() => Ref.update(failed, (n) => n + 1))
        )
        if ((i + 1) % EVERY === 0) yield* report(`${i + 1} sent`)
      }
    })
    yield* Effect.all(Array.from({ length: WORKERS }, () => worker), { concurrency: "unbounded", discard: true })
    console.log(
      `sent ${N} in ${((Date.now() - started) / 1000).toFixed(1)} s; failed ${yield* Ref.get(failed)}; ` +
        `server: ${sink.stats.connections} connections, ${sink.stats.messages} messages, ` +
        `${sink.stats.dropped} dropped, ${sink.stats.tempFailed} RCPTs 451`
    )
    yield* Effect.sleep(IDLE_MS)
    yield* report(`idle ${IDLE_MS / 1000} s`)
  }))
  yield* report("mailer closed")
})

Effect.runPromise(main.pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))).catch((e) => {
  console.error(e)
  process.exit(1)
})
