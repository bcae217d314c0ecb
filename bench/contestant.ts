/**
 * effect-smtp as a contestant of the shared SMTP client benchmark harness (see bench/README.md):
 * reads HOST PORT N RCPTS SIZE CONNS from the environment, sends N messages of about SIZE bytes
 * to RCPTS recipients over CONNS connections, prints `RESULT sent=<n> ms=<float>` (from just
 * before connecting to the last reply after the data; module loading and QUIT excluded).
 *
 *   node --import tsx bench/contestant.ts
 *
 * CHUNKING=0 turns BDAT off; messages of 1 MiB or more are sent as a Stream of 64 KiB chunks.
 */
import { Effect, Stream } from "effect"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const HOST = process.env.HOST ?? "127.0.0.1"
const PORT = env("PORT", 25250)
const N = env("N", 1)
const RCPTS = env("RCPTS", 1)
const SIZE = env("SIZE", 1000)
const CONNS = env("CONNS", 1)
const chunking = process.env.CHUNKING !== "0"

const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const lines = Math.max(1, Math.ceil((SIZE - HEADER.length) / LINE.length))
const encoder = new TextEncoder()
const recipients = Array.from({ length: RCPTS }, (_, i) => `rcpt${i + 1}@example.com`)

const message = (): Uint8Array | Stream.Stream<Uint8Array> => {
  if (SIZE < 1 << 20) return encoder.encode(HEADER + LINE.repeat(lines))
  const perChunk = 819
  const block = encoder.encode(LINE.repeat(perChunk))
  const full = Math.floor(lines / perChunk)
  const rest = lines % perChunk
  return Stream.concat(
    Stream.succeed(encoder.encode(HEADER)),
    Stream.concat(
      Stream.repeatValue(block).pipe(Stream.take(full)),
      Stream.succeed(block.subarray(0, rest * LINE.length))
    )
  )
}
const size = HEADER.length + lines * LINE.length

const shares = Array.from({ length: CONNS }, (_, i) => Math.floor(N / CONNS) + (i < N % CONNS ? 1 : 0)).filter((n) =>
  n > 0
)
const data = message()

let t0 = 0
let finished = 0
const connection = (n: number) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({
      host: HOST,
      port: PORT,
      security: "none",
      localHostname: "bench.local",
      chunking
    })
    for (let i = 0; i < n; i++) yield* smtp.sendmail("sender@example.com", recipients, data, { size })
    // the last reply after the data: QUIT (the Scope closing) is not timed
    finished = Math.max(finished, performance.now())
    return n
  }))

const program = Effect.gen(function*() {
  t0 = performance.now()
  const counts = yield* Effect.all(shares.map(connection), { concurrency: "unbounded" })
  return counts.reduce((a, b) => a + b, 0)
}).pipe(Effect.provide(NodeSmtpTransport.layer))

Effect.runPromise(program).then(
  (sent) => {
    process.stdout.write(`RESULT sent=${sent} ms=${(finished - t0).toFixed(3)}\n`)
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
