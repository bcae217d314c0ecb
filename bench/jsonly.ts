/**
 * The JavaScript cost of `sendmail` alone: the client against an in-process fake server behind a
 * transport whose write answers from a microtask (no socket, no system calls, no other process),
 * so that CPU per message is the library's and Effect's, and a CPU profile shows nothing else.
 *
 *   node bench/dist/bench/jsonly.js [N=20000] [REPS=5] [--chunking] [--batch | --mailer]   # compiled: npx tsc -p bench/tsconfig.json
 *   node --cpu-prof bench/dist/bench/jsonly.js 50000 1
 *
 * The fake server answers EHLO with PIPELINING (and CHUNKING with `--chunking`), every command
 * with 250 (354 to DATA), and the end of data with 250.
 */
import type * as Socket from "@effect/platform/Socket"
import { Effect, Layer, Stream } from "effect"
import { Mailer, SmtpClient, SmtpTransport } from "../src/index.js"

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const chunking = process.argv.includes("--chunking")
/** `sendBatch` of N messages instead of N `sendmail`. */
const batch = process.argv.includes("--batch")
/** `Mailer.sendmail` (one connection) instead of the session's. */
const mailer = process.argv.includes("--mailer")
const N = Number(args[0] ?? 20000)
const REPS = Number(args[1] ?? 5)

const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const body = Buffer.from(HEADER + LINE.repeat(Math.ceil((1000 - HEADER.length) / LINE.length)))

const encoder = new TextEncoder()
const EHLO = encoder.encode(`250-fake.test\r\n250-PIPELINING\r\n${chunking ? "250-CHUNKING\r\n" : ""}250 8BITMIME\r\n`)
const OK = encoder.encode("250 2.0.0 ok\r\n")
const GO = encoder.encode("354 go ahead\r\n")
const QUEUED = encoder.encode("250 2.0.0 queued as 12345\r\n")
const BYE = encoder.encode("221 bye\r\n")

/** A server that reads commands (and message data) and answers them from a microtask. */
const fakeConnection = (): SmtpTransport.Connection => {
  let handler: ((chunk: Uint8Array) => unknown) | undefined
  let inData = false
  let bdat = 0
  let carry = ""
  const out: Array<Uint8Array> = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    const parts = out.splice(0)
    let size = 0
    for (const p of parts) size += p.length
    // a Buffer, as Node's socket reads are (off the heap)
    const chunk = Buffer.allocUnsafeSlow(size)
    let at = 0
    for (const p of parts) {
      chunk.set(p, at)
      at += p.length
    }
    handler?.(chunk)
  }
  const reply = (bytes: Uint8Array) => {
    out.push(bytes)
    if (!scheduled) {
      scheduled = true
      queueMicrotask(flush)
    }
  }
  const receive = (bytes: Uint8Array) => {
    let text = carry + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1")
    carry = ""
    while (text.length > 0) {
      if (bdat > 0) {
        const take = Math.min(bdat, text.length)
        bdat -= take
        text = text.slice(take)
        if (bdat === 0) reply(QUEUED)
        continue
      }
      if (inData) {
        const end = text.indexOf("\r\n.\r\n")
        if (end === -1) {
          carry = text.slice(-4)
          return
        }
        inData = false
        text = text.slice(end + 5)
        reply(QUEUED)
        continue
      }
      const lf = text.indexOf("\n")
      if (lf === -1) {
        carry = text
        return
      }
      const line = text.slice(0, lf + 1)
      text = text.slice(lf + 1)
      const verb = line.slice(0, 4).toUpperCase()
      if (verb === "EHLO") reply(EHLO)
      else if (verb === "DATA") {
        inData = true
        reply(GO)
      } else if (verb === "BDAT") bdat = Number(line.split(" ")[1])
      else if (verb === "QUIT") reply(BYE)
      else reply(OK)
    }
  }
  const write = (bytes: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> => {
    if (typeof bytes === "string") receive(encoder.encode(bytes))
    else if (bytes instanceof Uint8Array) receive(bytes)
    return Effect.void
  }
  const socket = {
    [Symbol.for("@effect/platform/Socket")]: Symbol.for("@effect/platform/Socket"),
    run: (h: (chunk: Uint8Array) => unknown) =>
      Effect.suspend(() => {
        handler = h
        reply(encoder.encode("220 fake.test ESMTP\r\n"))
        return Effect.never
      }),
    runRaw: (h: (chunk: Uint8Array) => unknown) =>
      Effect.suspend(() => {
        handler = h
        return Effect.never
      }),
    writer: Effect.succeed(write)
  } as unknown as Socket.Socket
  return {
    socket,
    secure: false,
    upgradeTls: () => Effect.dieMessage("no TLS"),
    close: Effect.void,
    write: (bytes) => write(bytes)
  }
}

const transport = Layer.succeed(SmtpTransport.SmtpTransport, {
  localHostname: Effect.succeed("bench.local"),
  connect: () => Effect.sync(fakeConnection)
})

const measureLoop = (loop: (n: number) => Effect.Effect<void, unknown>) =>
  Effect.gen(function*() {
    yield* loop(5000)
    const results: Array<number> = []
    for (let rep = 0; rep < REPS; rep++) {
      const cpu0 = process.cpuUsage()
      yield* loop(N)
      const cpu = process.cpuUsage(cpu0)
      results.push((cpu.user + cpu.system) / N)
      console.log(`rep ${rep + 1}: ${results[rep].toFixed(2)} µs/msg of CPU`)
    }
    const sorted = [...results].sort((a, b) => a - b)
    console.log(`median ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} µs/msg, min ${sorted[0].toFixed(2)}`)
  })

/** `Mailer` with one connection: its per-message layer over the session's `sendmail`. */
const mailerProgram = Effect.scoped(Effect.gen(function*() {
  const mailer = yield* Mailer.make({ host: "fake.test", port: 25, security: "none", chunking, maxConnections: 1 })
  yield* measureLoop((n) =>
    Effect.gen(function*() {
      for (let i = 0; i < n; i++) yield* mailer.sendmail("sender@example.com", ["rcpt1@example.com"], body)
    })
  )
})).pipe(Effect.provide(transport))

const program = Effect.scoped(Effect.gen(function*() {
  const smtp = yield* SmtpClient.connect({ host: "fake.test", port: 25, security: "none", chunking })
  const item = { from: "sender@example.com", to: ["rcpt1@example.com"], message: body }
  const loop = (n: number): Effect.Effect<void, unknown> =>
    batch ?
      Stream.runDrain(smtp.sendBatch(Array.from({ length: n }, () => item))) :
      Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* smtp.sendmail("sender@example.com", ["rcpt1@example.com"], body)
      })
  yield* measureLoop(loop)
})).pipe(Effect.provide(transport))

await Effect.runPromise(mailer ? mailerProgram : program)
