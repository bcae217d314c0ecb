/**
 * Client CPU per message, measured inside this process (`process.cpuUsage` around the send loop,
 * after a warm-up), for effect-smtp's `sendmail` and, when its file is given, the team's lean
 * Effect client (`effect-lean.mjs` from the shared harness), interleaved rep by rep against the
 * same sink (`bench/sink.ts` in a child process).
 *
 *   node --import tsx bench/cpu.ts [N=2000] [REPS=5] [path/to/effect-lean.mjs] [--chunking]
 *
 * Prints µs of CPU per message (user + system) and messages per second for each rep, then the
 * medians and the ratio effect-smtp / lean.
 */
import { Effect } from "effect"
import { pathToFileURL } from "node:url"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import { startSinkProcess } from "./sinkProcess.js"

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const chunking = process.argv.includes("--chunking")
const N = Number(args[0] ?? 2000)
const REPS = Number(args[1] ?? 5)
const leanPath = args[2]
const WARM = 300

const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const body = Buffer.from(HEADER + LINE.repeat(Math.ceil((1000 - HEADER.length) / LINE.length)))

interface Result {
  readonly cpuMicros: number
  readonly msgsPerSecond: number
}

const measure = <E, R>(loop: (n: number) => Effect.Effect<void, E, R>) =>
  Effect.gen(function*() {
    yield* loop(WARM)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    yield* loop(N)
    const t1 = performance.now()
    const cpu = process.cpuUsage(cpu0)
    return { cpuMicros: (cpu.user + cpu.system) / N, msgsPerSecond: N / ((t1 - t0) / 1000) } satisfies Result
  })

const effectSmtp = (port: number) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({
      host: "127.0.0.1",
      port,
      security: "none",
      localHostname: "bench.local",
      chunking
    })
    return yield* measure((n) =>
      Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* smtp.sendmail("sender@example.com", ["rcpt1@example.com"], body)
      })
    )
  })).pipe(Effect.provide(NodeSmtpTransport.layer))

const lean = async (port: number): Promise<Result> => {
  const mod = await import(pathToFileURL(leanPath!).href)
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const session = yield* mod.connectSession("127.0.0.1", port)
    return yield* measure((n) =>
      Effect.gen(function*() {
        for (let i = 0; i < n; i++) yield* session.sendmail("sender@example.com", ["rcpt1@example.com"], body)
      })
    )
  })) as Effect.Effect<Result>)
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const sink = await startSinkProcess({ chunking })
const results: Record<string, Array<Result>> = { "effect-smtp": [], "effect-lean": [] }
for (let rep = 0; rep < REPS; rep++) {
  results["effect-smtp"].push(await Effect.runPromise(effectSmtp(sink.port)))
  if (leanPath !== undefined) results["effect-lean"].push(await lean(sink.port))
  const line = Object.entries(results).filter(([, r]) => r.length > 0).map(([name, r]) =>
    `${name} ${r[rep].cpuMicros.toFixed(0)} µs/msg ${r[rep].msgsPerSecond.toFixed(0)} msgs/s`
  ).join(" | ")
  console.log(`rep ${rep + 1}: ${line}`)
}
sink.stop()
const smtpCpu = median(results["effect-smtp"].map((r) => r.cpuMicros))
console.log(
  `median effect-smtp: ${smtpCpu.toFixed(0)} µs/msg, ${
    median(results["effect-smtp"].map((r) => r.msgsPerSecond)).toFixed(0)
  } msgs/s`
)
if (leanPath !== undefined) {
  const leanCpu = median(results["effect-lean"].map((r) => r.cpuMicros))
  console.log(
    `median effect-lean: ${leanCpu.toFixed(0)} µs/msg, ${
      median(results["effect-lean"].map((r) => r.msgsPerSecond)).toFixed(0)
    } msgs/s`
  )
  console.log(`ratio (CPU per message, effect-smtp / effect-lean): ${(smtpCpu / leanCpu).toFixed(2)}`)
}
