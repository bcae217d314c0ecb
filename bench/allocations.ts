/**
 * Bytes allocated per message by `sendmail` (or `sendBatch` with `--batch`) (1 KB message, 1 recipient, pipelined DATA, or BDAT with
 * `--chunking`) and, with `--ops`, where: V8's sampling heap profiler with collected objects
 * included, against the project's sink in a child process, after a warm-up.
 *
 *   [WARMUP=500] node --import tsx bench/allocations.ts [N=5000] [--chunking] [--batch] [--top 25] [--stack "Map :0"] [--promoted]
 *
 * Prints bytes/message and the functions that allocate most (per message).
 */
import { Effect, Stream } from "effect"
import { Session } from "node:inspector/promises"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import type { ProfileNode } from "./heapProfile.js"
import { startSinkProcess } from "./sinkProcess.js"

const args = process.argv.slice(2)
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 5000)
const chunking = args.includes("--chunking")
/** One `sendBatch` of N messages instead of N `sendmail`. */
const batch = args.includes("--batch")
const topIndex = args.indexOf("--top")
const TOP = topIndex === -1 ? 25 : Number(args[topIndex + 1])
const promoted = args.includes("--promoted")
const stackIndex = args.indexOf("--stack")
const STACK = stackIndex === -1 ? undefined : args[stackIndex + 1]
/** Messages sent before the measurement (`WARMUP=0`: from the first message of a cold process). */
const WARMUP = Number(process.env.WARMUP ?? 500)

const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const body = Buffer.from(HEADER + LINE.repeat(12))

const sink = await startSinkProcess({ chunking })

const inspector = new Session()
inspector.connect()

await Effect.runPromise(
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({
      host: "127.0.0.1",
      port: sink.port,
      security: "none",
      localHostname: "bench.local",
      chunking
    })
    const item = { from: "sender@example.com", to: ["rcpt1@example.com"], message: body }
    const send = (n: number) =>
      batch ?
        Stream.runDrain(smtp.sendBatch(Array.from({ length: n }, () => item))) :
        Effect.gen(function*() {
          for (let i = 0; i < n; i++) yield* smtp.sendmail("sender@example.com", ["rcpt1@example.com"], body)
        })
    yield* send(WARMUP)
    yield* Effect.promise(() =>
      inspector.post("HeapProfiler.startSampling", {
        samplingInterval: 512,
        includeObjectsCollectedByMajorGC: true,
        // with --promoted, only what outlived the young generation (what makes scavenges and
        // mark-compacts expensive)
        includeObjectsCollectedByMinorGC: !promoted
      })
    )
    yield* send(N)
    const { profile } = yield* Effect.promise(() => inspector.post("HeapProfiler.stopSampling"))
    const sizes = new Map<string, number>()
    let total = 0
    /** With `--stack NAME`: the callers of the functions whose place starts with NAME, by bytes. */
    const stacks = new Map<string, number>()
    const walk = (node: ProfileNode, callers: ReadonlyArray<string>) => {
      const frame = node.callFrame
      const where = `${frame.functionName || "(anonymous)"} ${
        frame.url.replace(/.*node_modules\//, "").replace(/.*\/(src|bench)\//, "$1/")
      }:${frame.lineNumber + 1}`
      sizes.set(where, (sizes.get(where) ?? 0) + node.selfSize)
      total += node.selfSize
      if (STACK !== undefined && where.startsWith(STACK) && node.selfSize > 0) {
        const key = callers.slice(-4).join(" < ")
        stacks.set(key, (stacks.get(key) ?? 0) + node.selfSize)
      }
      node.children.forEach((child) => walk(child, [...callers, where]))
    }
    walk(profile.head as unknown as ProfileNode, [])
    console.log(`${(total / N).toFixed(0)} bytes allocated per message (${chunking ? "BDAT" : "DATA"}, N=${N})`)
    for (const [where, size] of [...sizes].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
      console.log(`${(size / N).toFixed(0).padStart(7)}  ${where}`)
    }
    for (const [stack, size] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 10)) {
      console.log(`${(size / N).toFixed(0).padStart(7)}  ${STACK} < ${stack}`)
    }
  })).pipe(Effect.provide(NodeSmtpTransport.layer))
)
sink.stop()
inspector.disconnect()
