/**
 * What a connection costs the client: CPU of `SmtpClient.connect` (greeting, EHLO), of the first
 * `sendmail` and of the close (QUIT, the Scope's finalizers), in a cold process (each of `RUNS`
 * child processes makes one connection: module loading left out, the first run of every code path
 * in) and warm (one process: `N` connections after 50 to warm up), against the project's sink in a
 * process of its own. Also the fibers a connection forks (deterministic).
 *
 *   node bench/dist/bench/connect-cost.js [RUNS=9] [N=300] [--fqdn]
 *
 * `--fqdn`: without `localHostname`, so the first connection looks the host's name up (as a
 * program that does not set it); by default `localHostname` is given, as the bench's contestants do.
 * Pin it (`taskset -c 1`) to compare commits on a busy machine; alternate the two builds. It runs
 * the compiled `bench/dist` (rebuild it first: `npx tsc -p bench/tsconfig.json`) or, through tsx,
 * the sources.
 */
import { Effect, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import { startSinkProcess } from "./sinkProcess.js"

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const fqdn = process.argv.includes("--fqdn")
const child = process.argv.includes("--child")
const cpu = () => {
  const d = process.cpuUsage()
  return (d.user + d.system) / 1000
}
const options = (port: number) => ({
  host: "127.0.0.1",
  port,
  security: "none" as const,
  ...(fqdn ? {} : { localHostname: "bench.local" })
})
const MESSAGE = "Subject: cost\r\n\r\none message\r\n"

/** One connection: CPU of connect, first send, close (ms). */
const once = (port: number) =>
  Effect.gen(function*() {
    let connected = 0
    let sent = 0
    const t0 = cpu()
    yield* Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect(options(port))
      connected = cpu()
      yield* smtp.sendmail("a@example.test", "b@example.test", MESSAGE)
      sent = cpu()
    }))
    return { connect: connected - t0, send: sent - connected, close: cpu() - sent }
  })

class Forks extends Supervisor.AbstractSupervisor<void> {
  started = 0
  value = Effect.void
  override onStart() {
    this.started++
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (x: number) => x.toFixed(2).padStart(6)

if (child) {
  const port = Number(args[0])
  const cost = await Effect.runPromise(once(port).pipe(Effect.provide(NodeSmtpTransport.layer)))
  console.log(JSON.stringify(cost))
} else {
  const RUNS = Number(args[0] ?? 9)
  const N = Number(args[1] ?? 300)
  const sink = await startSinkProcess()
  try {
    const cold = Array.from({ length: RUNS }, () => {
      // (with this process's flags: `--import tsx` when run from source)
      const run = spawnSync(
        process.execPath,
        [
          ...process.execArgv,
          fileURLToPath(import.meta.url),
          String(sink.port),
          "--child",
          ...(fqdn ? ["--fqdn"] : [])
        ],
        { encoding: "utf8" }
      )
      if (run.status !== 0) throw new Error(`a child failed: ${run.stderr}`)
      return JSON.parse(run.stdout) as { connect: number; send: number; close: number }
    })
    console.log(`cold (first connection of a process, ${RUNS} processes), CPU ms, median (min–max):`)
    for (const key of ["connect", "send", "close"] as const) {
      const xs = cold.map((c) => c[key])
      console.log(`  ${key.padEnd(8)} ${fmt(median(xs))} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`)
    }
    const forks = new Forks()
    const warm = await Effect.runPromise(
      Effect.gen(function*() {
        for (let i = 0; i < 50; i++) yield* once(sink.port)
        const costs = []
        for (let i = 0; i < N; i++) costs.push(yield* once(sink.port))
        const counted = yield* Effect.scoped(Effect.gen(function*() {
          yield* SmtpClient.connect(options(sink.port)).pipe(
            Effect.supervised(forks),
            Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
          )
          return forks.started
        }))
        return { costs, counted }
      }).pipe(Effect.provide(NodeSmtpTransport.layer))
    )
    console.log(`warm (${N} connections in one process after 50), CPU ms per connection, median:`)
    for (const key of ["connect", "send", "close"] as const) {
      console.log(`  ${key.padEnd(8)} ${fmt(median(warm.costs.map((c) => c[key])))}`)
    }
    console.log(`fibers forked by a connect: ${warm.counted}`)
  } finally {
    sink.stop()
  }
}
