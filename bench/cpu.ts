/**
 * Client CPU per message, measured inside this process (`process.cpuUsage` around the send loop,
 * after a warm-up), for effect-smtp's `sendmail` and, when its file is given, the team's lean
 * Effect client (`effect-lean.mjs` from the shared harness), interleaved rep by rep against the
 * same sink (`bench/sink.ts` in a child process).
 *
 *   node --import tsx bench/cpu.ts [N=2000] [REPS=5] [path/to/effect-lean.mjs] [--chunking] [--lean-only]
 *
 * Both clients connect once and warm up (2 × 1000 messages each); then each rep sends N messages
 * with one and N with the other (the order flipped every rep). The lean client's file must resolve
 * `effect` from this repository: copy it into `bench/dist/` (gitignored) first. Prints µs of CPU per
 * message (user + system) and messages per second for each rep, then the medians and the median
 * of the per-rep ratios effect-smtp / lean.
 */
import { Effect, Exit, Scope } from "effect"
import { pathToFileURL } from "node:url"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import { startSinkProcess } from "./sinkProcess.js"

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const chunking = process.argv.includes("--chunking")
/** Only the lean client (for a CPU profile of it alone). */
const leanOnly = process.argv.includes("--lean-only")
const N = Number(args[0] ?? 2000)
const REPS = Number(args[1] ?? 5)
const leanPath = args[2]
const WARM = 1000

const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const body = Buffer.from(HEADER + LINE.repeat(Math.ceil((1000 - HEADER.length) / LINE.length)))

interface Result {
  readonly cpuMicros: number
  /** Of which user time (the rest is system time: mostly the socket writes, loopback included). */
  readonly userMicros: number
  readonly msgsPerSecond: number
}

/** A client as a connected sender of `n` messages. */
type Sender = (n: number) => Promise<void>

const effectSmtp = async (port: number): Promise<{ readonly send: Sender; readonly close: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const smtp = await Effect.runPromise(
    SmtpClient.connect({ host: "127.0.0.1", port, security: "none", localHostname: "bench.local", chunking }).pipe(
      Effect.provide(NodeSmtpTransport.layer),
      Scope.extend(scope)
    )
  )
  return {
    send: (n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* smtp.sendmail("sender@example.com", ["rcpt1@example.com"], body)
      })),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const lean = async (port: number): Promise<{ readonly send: Sender; readonly close: () => Promise<void> }> => {
  const mod = await import(pathToFileURL(leanPath!).href)
  const scope = Effect.runSync(Scope.make())
  const session = await Effect.runPromise(
    (mod.connectSession("127.0.0.1", port) as Effect.Effect<
      { sendmail: (f: string, t: Array<string>, b: Uint8Array) => Effect.Effect<unknown> },
      unknown,
      Scope.Scope
    >).pipe(Scope.extend(scope))
  )
  return {
    send: (n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* session.sendmail("sender@example.com", ["rcpt1@example.com"], body)
      })),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const measure = async (send: Sender, n: number): Promise<Result> => {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await send(n)
  const t1 = performance.now()
  const cpu = process.cpuUsage(cpu0)
  return { cpuMicros: (cpu.user + cpu.system) / n, userMicros: cpu.user / n, msgsPerSecond: n / ((t1 - t0) / 1000) }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const sink = await startSinkProcess({ chunking })
try {
  // both clients stay connected; after a warm-up, blocks of N messages alternate between them
  // (the order flipped every rep), so that both see the same load on this shared machine
  const clients: Array<readonly [string, { readonly send: Sender; readonly close: () => Promise<void> }]> = []
  if (!leanOnly) clients.push(["effect-smtp", await effectSmtp(sink.port)])
  if (leanPath !== undefined) clients.push(["effect-lean", await lean(sink.port)])
  for (const [, c] of clients) await c.send(WARM)
  for (const [, c] of clients) await c.send(WARM)
  const results: Record<string, Array<Result>> = { "effect-smtp": [], "effect-lean": [] }
  const ratios: Array<number> = []
  const userRatios: Array<number> = []
  for (let rep = 0; rep < REPS; rep++) {
    const order = rep % 2 === 0 ? clients : [...clients].reverse()
    for (const [name, c] of order) results[name].push(await measure(c.send, N))
    const line = Object.entries(results).filter(([, r]) => r.length > 0).map(([name, r]) =>
      `${name} ${r[rep].cpuMicros.toFixed(1)} µs/msg (user ${r[rep].userMicros.toFixed(1)}) ${
        r[rep].msgsPerSecond.toFixed(0)
      } msgs/s`
    ).join(" | ")
    const both = leanPath !== undefined && !leanOnly
    if (both) {
      ratios.push(results["effect-smtp"][rep].cpuMicros / results["effect-lean"][rep].cpuMicros)
      userRatios.push(results["effect-smtp"][rep].userMicros / results["effect-lean"][rep].userMicros)
    }
    console.log(`rep ${rep + 1}: ${line}${both ? ` | ratio ${ratios[rep].toFixed(2)}` : ""}`)
  }
  for (const [, c] of clients) await c.close()
  const smtpCpu = median(results["effect-smtp"].map((r) => r.cpuMicros))
  if (!leanOnly) {
    console.log(
      `median effect-smtp: ${smtpCpu.toFixed(1)} µs/msg, ${
        median(results["effect-smtp"].map((r) => r.msgsPerSecond)).toFixed(0)
      } msgs/s`
    )
  }
  if (leanPath !== undefined) {
    const leanCpu = median(results["effect-lean"].map((r) => r.cpuMicros))
    console.log(
      `median effect-lean: ${leanCpu.toFixed(1)} µs/msg, ${
        median(results["effect-lean"].map((r) => r.msgsPerSecond)).toFixed(0)
      } msgs/s`
    )
    if (!leanOnly) {
      console.log(
        `ratio (CPU per message, effect-smtp / effect-lean): median of reps ${median(ratios).toFixed(2)} (user time ${
          median(userRatios).toFixed(2)
        })`
      )
    }
  }
} finally {
  sink.stop()
}
