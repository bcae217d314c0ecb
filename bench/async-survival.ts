/**
 * What plain Effect (no effect-smtp, no socket) keeps past the young generation per `Effect.async`
 * step: one fiber runs N steps of `flatMap(Effect.async(register), next)`, each step allocating a
 * 3.2 KB array that the step's resume carries; V8's sampling heap profiler, with the objects that
 * a scavenge collected left out, prints the bytes per step that were promoted (or are alive at the
 * end) and where they were allocated. `--promise` runs the same loop with `await new Promise`.
 *
 *   node --no-opt bench/dist/bench/async-survival.js [N=200000] [--resume micro|sync|immediate] [--promise]
 *
 * See "What a scavenge keeps, in plain Effect" in bench/README.md.
 */
import { Effect } from "effect"
import { Session } from "node:inspector/promises"
import type { ProfileNode } from "./heapProfile.js"

const args = process.argv.slice(2)
const N = Number(args.find((a) => /^\d+$/.test(a)) ?? 200000)
const resumeIndex = args.indexOf("--resume")
const RESUME = resumeIndex === -1 ? "micro" : args[resumeIndex + 1]
const promise = args.includes("--promise")

class StepData {
  readonly values: Array<number>
  constructor(readonly i: number) {
    this.values = new Array<number>(400).fill(i)
  }
}

const later = (f: () => void) => {
  if (RESUME === "sync") f()
  else if (RESUME === "immediate") setImmediate(f)
  else queueMicrotask(f)
}

const step = (i: number, sum: number): Effect.Effect<number> =>
  i === N ? Effect.succeed(sum) : Effect.flatMap(
    Effect.async<StepData>((resume) => {
      const data = new StepData(i)
      later(() => resume(Effect.succeed(data)))
    }),
    (data) => step(i + 1, sum + data.i)
  )

const run = async () => {
  if (!promise) return Effect.runPromise(Effect.suspend(() => step(0, 0)))
  let sum = 0
  for (let i = 0; i < N; i++) {
    const data = await new Promise<StepData>((resolve) => {
      const d = new StepData(i)
      later(() => resolve(d))
    })
    sum += data.i
  }
  return sum
}

const inspector = new Session()
inspector.connect()
await run()
await inspector.post("HeapProfiler.startSampling", {
  samplingInterval: 256,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: false
})
await run()
const { profile } = await inspector.post("HeapProfiler.stopSampling")
inspector.disconnect()
const sizes = new Map<string, number>()
let total = 0
const walk = (node: ProfileNode) => {
  const frame = node.callFrame
  const where = `${frame.functionName || "(anonymous)"} ${frame.url.replace(/.*node_modules\//, "")}:${
    frame.lineNumber + 1
  }`
  sizes.set(where, (sizes.get(where) ?? 0) + node.selfSize)
  total += node.selfSize
  node.children.forEach(walk)
}
walk(profile.head as unknown as ProfileNode)
console.log(
  `${(total / N).toFixed(0)} bytes per step outlived the young generation (${
    promise ? "Promise" : "Effect.async"
  }, resume ${RESUME}, N=${N})`
)
for (const [where, size] of [...sizes].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
  console.log(`${(size / N).toFixed(0).padStart(7)}  ${where}`)
}
