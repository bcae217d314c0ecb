/**
 * Fiber operations per message: every Effect operation the runtime executes for `sendmail` (1 KB
 * message, 1 recipient, pipelined DATA, or BDAT with `--chunking`), counted by a `Supervisor` with
 * the `OpSupervision` runtime flag (on every fiber of the client: the sender, the reader, the
 * watchdog), and how many of them are suspensions (`Async`). Deterministic, unlike CPU time on a
 * shared machine. With the lean client's file, the same for it.
 *
 *   node --import tsx bench/ops.ts [N=1000] [path/to/effect-lean.mjs] [--chunking]
 *
 * The lean client's file must resolve `effect` from this repository: copy it into `bench/dist/`.
 */
import { Effect, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import { pathToFileURL } from "node:url"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import { startSinkProcess } from "./sinkProcess.js"

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const chunking = process.argv.includes("--chunking")
const N = Number(args[0] ?? 1000)
const leanPath = args[1]

const HEADER = "From: <sender@example.com>\r\nTo: <rcpt1@example.com>\r\nSubject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
const body = Buffer.from(HEADER + LINE.repeat(Math.ceil((1000 - HEADER.length) / LINE.length)))

class Counter extends Supervisor.AbstractSupervisor<void> {
  ops = 0
  asyncs = 0
  byOp = new Map<string, number>()
  value = Effect.void
  override onEffect(_fiber: unknown, effect: Effect.Effect<unknown, unknown, unknown>) {
    this.ops++
    const op = (effect as unknown as { readonly _op: string })._op
    if (op === "Async") this.asyncs++
    this.byOp.set(op, (this.byOp.get(op) ?? 0) + 1)
  }
  reset() {
    this.ops = 0
    this.asyncs = 0
    this.byOp.clear()
  }
}

const counted = <A, E>(counter: Counter, effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(
    effect.pipe(
      Effect.supervised(counter),
      Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
    )
  )

type Send = (from: string, to: Array<string>, data: Uint8Array) => Effect.Effect<unknown, unknown>

const run = (name: string, connect: Effect.Effect<Send, unknown, never>) => {
  const counter = new Counter()
  return counted(
    counter,
    Effect.scoped(Effect.gen(function*() {
      const send = yield* connect
      for (let i = 0; i < 200; i++) yield* send("sender@example.com", ["rcpt1@example.com"], body)
      counter.reset()
      for (let i = 0; i < N; i++) yield* send("sender@example.com", ["rcpt1@example.com"], body)
      const ops = counter.ops / N
      const byOp = [...counter.byOp].sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${(n / N).toFixed(1)}`)
      console.log(
        `${name}: ${ops.toFixed(1)} fiber operations per message, ${(counter.asyncs / N).toFixed(2)} suspensions (${
          byOp.join(", ")
        })`
      )
    }) as Effect.Effect<void, unknown, never>)
  )
}

const sink = await startSinkProcess({ chunking })
try {
  await run(
    "effect-smtp",
    Effect.map(
      SmtpClient.connect({
        host: "127.0.0.1",
        port: sink.port,
        security: "none",
        localHostname: "bench.local",
        chunking
      })
        .pipe(Effect.provide(NodeSmtpTransport.layer)),
      (smtp): Send => (from, to, data) => smtp.sendmail(from, to, data)
    ) as unknown as Effect.Effect<Send, unknown, never>
  )
  if (leanPath !== undefined) {
    const mod = await import(pathToFileURL(leanPath).href)
    await run(
      "effect-lean",
      Effect.map(
        mod.connectSession("127.0.0.1", sink.port) as Effect.Effect<{ readonly sendmail: Send }>,
        (session): Send => session.sendmail
      ) as unknown as Effect.Effect<Send, unknown, never>
    )
  }
} finally {
  sink.stop()
}
