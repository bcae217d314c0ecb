/**
 * Heap while sending N messages through one `Mailer`, the naive way or with `sendAll`:
 *
 *   MODE=forEach node --expose-gc --import tsx bench/mailer-bulk.ts   # Effect.forEach(items, send, { concurrency })
 *   MODE=sendAll node --expose-gc --import tsx bench/mailer-bulk.ts   # mailer.sendAll(items, { concurrency })
 *
 * Environment: N (50000), CONCURRENCY (8), MAX_CONNECTIONS (4), EVERY (5000: report interval),
 * CLOSE_AFTER (0: the sink keeps connections), TEMPFAIL_RATE (0: fraction of RCPTs answered 451), RATE (0: the
 * Mailer's rateLimit in messages per second; 0: none).
 * forEach gets an array of the N items (made before the start figure) and collects the results, as
 * code usually does; sendAll reads them lazily from a generator.
 */
import { Effect, Schedule, Stream } from "effect"
import { Mailer } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import * as Sink from "./faultSink.js"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const MODE = process.env.MODE ?? "sendAll"
const N = env("N", 50_000)
const CONCURRENCY = env("CONCURRENCY", 8)
const MAX_CONNECTIONS = env("MAX_CONNECTIONS", 4)
const EVERY = env("EVERY", 5000)
const CLOSE_AFTER = env("CLOSE_AFTER", 0)
const TEMPFAIL_RATE = env("TEMPFAIL_RATE", 0)
const RATE = env("RATE", 0)

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")

const mb = (n: number) => (n / 1024 / 1024).toFixed(1)
let peakRss = 0
const report = (label: string) => {
  gc()
  gc()
  const m = process.memoryUsage()
  peakRss = Math.max(peakRss, m.rss)
  console.log(`${label.padEnd(16)} heapUsed ${mb(m.heapUsed).padStart(7)} MB   rss ${mb(m.rss).padStart(7)} MB`)
}

function* items(n: number): Generator<Mailer.BulkEnvelope> {
  for (let i = 0; i < n; i++) {
    yield { from: "a@bench.test", to: `r${i % 100}@bench.test`, message: `Subject: ${i}\r\n\r\nhello ${i}\r\n` }
  }
}

const main = Effect.gen(function*() {
  const sink = yield* Effect.promise(() =>
    Sink.start({ closeAfter: CLOSE_AFTER > 0 ? CLOSE_AFTER : undefined, tempFailRate: TEMPFAIL_RATE })
  )
  yield* Effect.addFinalizer(() => Effect.promise(() => sink.close()))
  console.log(
    `MODE=${MODE} N=${N} CONCURRENCY=${CONCURRENCY} MAX_CONNECTIONS=${MAX_CONNECTIONS} CLOSE_AFTER=${CLOSE_AFTER} ` +
      `TEMPFAIL_RATE=${TEMPFAIL_RATE} RATE=${RATE} node ${process.version}`
  )
  const messages = MODE === "forEach" ? Array.from(items(N)) : undefined
  report("start")
  const mailer = yield* Mailer.make({
    host: "127.0.0.1",
    port: sink.port,
    security: "none",
    localHostname: "bench.test",
    maxConnections: MAX_CONNECTIONS,
    retry: Schedule.recurs(5),
    rateLimit: RATE > 0 ? { limit: RATE, interval: "1 second" } : undefined
  })
  const started = Date.now()
  let done = 0
  let failed = 0
  const progress = () => {
    if (++done % EVERY === 0) report(`${done} done`)
  }
  if (MODE === "forEach") {
    // the natural way: an array of messages, and the results collected
    yield* Effect.forEach(
      messages!,
      (item) =>
        mailer.sendmail(item.from, item.to, item.message).pipe(
          Effect.catchAll(() => Effect.sync(() => failed++)),
          Effect.ensuring(Effect.sync(progress))
        ),
      { concurrency: CONCURRENCY }
    )
  } else {
    yield* mailer.sendAll(items(N), { concurrency: CONCURRENCY }).pipe(
      Stream.runForEach((outcome) =>
        Effect.sync(() => {
          if (outcome._tag === "Failed") failed++
          progress()
        })
      )
    )
  }
  const seconds = (Date.now() - started) / 1000
  report("returned")
  console.log(
    `${done} messages in ${seconds.toFixed(1)} s (${(done / seconds).toFixed(0)}/s), ${failed} failed; ` +
      `peak rss at the reports ${mb(peakRss)} MB; server: ${sink.stats.connections} connections`
  )
})

Effect.runPromise(main.pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))).catch((e) => {
  console.error(e)
  process.exit(1)
})
