/**
 * effect-smtp as a contestant of `bench/run.ts` (same contract as the team harness): reads
 * HOST PORT N RCPTS SIZE CONNS from the environment, sends N messages of about SIZE bytes (the
 * harness's message, lib/common.mjs) to RCPTS recipients over CONNS connections, prints
 * `RESULT sent=<n> ms=<float>` with ms from just before connecting to the last reply after the
 * data (module loading and QUIT excluded). lib/preload.mjs appends the CPU time and peak RSS.
 *
 *   MODE=single  (default) a `sendmail` loop per connection; a message of 1 MiB or more is a
 *                Stream of 64 KiB chunks
 *   MODE=batch   one `sendBatch` per connection (all its messages; in-memory bytes only)
 *   MODE=batch-all  the same with `sendBatchAll` (one Effect, every outcome in an array: no Stream)
 *   MODE=mailer  `Mailer.make({ maxConnections: CONNS, retry: false })`, N `sendmail` calls run
 *                CONNS at a time
 *   MODE=sendall the same Mailer, the N messages through `mailer.sendAll` (from a generator),
 *                concurrency CONNS
 *   CHUNKING=0   `chunking: false` (DATA even where the server offers CHUNKING)
 */
import { Effect, Stream } from "effect"
import { Mailer, SmtpClient } from "../../src/index.js"
import { NodeSmtpTransport } from "../../src/node.js"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const HOST = process.env.HOST ?? "127.0.0.1"
const PORT = env("PORT", 25250)
const N = env("N", 1)
const RCPTS = env("RCPTS", 1)
const SIZE = env("SIZE", 1000)
const CONNS = env("CONNS", 1)
const MODE = process.env.MODE ?? "single"
const chunking = process.env.CHUNKING !== "0"

const FROM = "sender@example.com"
const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const lines = Math.max(1, Math.ceil((SIZE - HEADER.length) / LINE.length))
const encoder = new TextEncoder()
const recipients = Array.from({ length: RCPTS }, (_, i) => `rcpt${i + 1}@example.com`)
const size = HEADER.length + lines * LINE.length
const streamed = SIZE >= 1 << 20

/** The message as a Stream of 64 KiB chunks (819 lines), generated as it is pulled. */
const messageStream = (): Stream.Stream<Uint8Array> => {
  const perChunk = 819
  const block = encoder.encode(LINE.repeat(perChunk))
  const full = Math.floor(lines / perChunk)
  const rest = lines % perChunk
  return Stream.concat(
    Stream.succeed(encoder.encode(HEADER)),
    Stream.concat(
      Stream.repeatValue(block).pipe(Stream.take(full)),
      rest === 0 ? Stream.empty : Stream.succeed(block.subarray(0, rest * LINE.length))
    )
  )
}
const bytes = streamed ? undefined : encoder.encode(HEADER + LINE.repeat(lines))
const message = () => bytes ?? messageStream()

const shares = Array.from({ length: CONNS }, (_, i) => Math.floor(N / CONNS) + (i < N % CONNS ? 1 : 0)).filter((n) =>
  n > 0
)
const connectOptions = { host: HOST, port: PORT, security: "none", localHostname: "bench.local", chunking } as const

let finished = 0
const done = () => {
  finished = Math.max(finished, performance.now())
}

const single = (n: number) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect(connectOptions)
    for (let i = 0; i < n; i++) yield* smtp.sendmail(FROM, recipients, message(), { size })
    done()
    return n
  }))

const batch = (n: number) =>
  Effect.scoped(Effect.gen(function*() {
    if (bytes === undefined) return yield* Effect.dieMessage("MODE=batch takes in-memory messages only")
    const smtp = yield* SmtpClient.connect(connectOptions)
    const item = { from: FROM, to: recipients, message: bytes, options: { size } }
    const items = {
      *[Symbol.iterator]() {
        for (let i = 0; i < n; i++) yield item
      }
    }
    const sent = MODE === "batch-all" ?
      (yield* smtp.sendBatchAll(items)).reduce((count, outcome) => {
        if (outcome._tag !== "Sent") throw new Error(`message ${outcome.index}: ${outcome._tag}`)
        return count + 1
      }, 0) :
      yield* smtp.sendBatch(items).pipe(
        Stream.runFold(0, (count, outcome) => {
          if (outcome._tag !== "Sent") throw new Error(`message ${outcome.index}: ${outcome._tag}`)
          return count + 1
        })
      )
    done()
    return sent
  }))

const mailer = Effect.scoped(Effect.gen(function*() {
  const mailer = yield* Mailer.make({ ...connectOptions, maxConnections: CONNS, retry: false })
  yield* Effect.forEach(
    Array.from({ length: N }),
    () => mailer.sendmail(FROM, recipients, message(), { size }),
    { concurrency: CONNS, discard: true }
  )
  done()
  return [N]
}))

const sendAll = Effect.scoped(Effect.gen(function*() {
  if (bytes === undefined) return yield* Effect.dieMessage("MODE=sendall takes in-memory messages only")
  const mailer = yield* Mailer.make({ ...connectOptions, maxConnections: CONNS, retry: false })
  const item = { from: FROM, to: recipients, message: bytes, options: { size } }
  const items = {
    *[Symbol.iterator]() {
      for (let i = 0; i < N; i++) yield item
    }
  }
  const sent = yield* mailer.sendAll(items, { concurrency: CONNS }).pipe(
    Stream.runFold(0, (count, outcome) => {
      if (outcome._tag !== "Sent") throw new Error(`message ${outcome.index}: ${outcome._tag}`)
      return count + 1
    })
  )
  done()
  return [sent]
}))

const program = Effect.gen(function*() {
  const t0 = performance.now()
  const counts = MODE === "mailer" ? yield* mailer : MODE === "sendall" ? yield* sendAll : yield* Effect.all(
    shares.map(MODE === "batch" || MODE === "batch-all" ? batch : single),
    { concurrency: "unbounded" }
  )
  return { sent: counts.reduce((a, b) => a + b, 0), t0 }
}).pipe(Effect.provide(NodeSmtpTransport.layer))

Effect.runPromise(program).then(
  ({ sent, t0 }) => {
    // printed after QUIT (the Scopes have closed), timed up to the last reply after the data
    process.stdout.write(
      `RESULT sent=${sent} ms=${(finished - t0).toFixed(3)} mode=${MODE}${chunking ? "" : "+nochunking"}\n`
    )
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
