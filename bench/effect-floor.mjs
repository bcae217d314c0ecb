// What the first connection of a cold process costs any Effect program, effect-smtp aside: a
// Scope, a socket acquired with acquireRelease, a reader fiber forked into the Scope, the greeting
// awaited through a Deferred, then the Scope closed. Prints the CPU from the program's start to the
// greeting and to the end (ms). MODE=platform reads through @effect/platform's NodeSocket
// (`fromDuplex`, `runRaw`, its writer) as effect-smtp's Node transport does; MODE=bare (default)
// reads the node:net socket's 'data' events; MODE=effect-smtp is `SmtpClient.connect` itself (to
// the end of EHLO; needs the compiled bench/dist, `npx tsc -p bench/tsconfig.json`).
//
//   node bench/dist/bench/sink.js --port 25253 &
//   PORT=25253 MODE=bare taskset -c 1 node bench/effect-floor.mjs
import * as NodeSocket from "@effect/platform-node-shared/NodeSocket"
import { Deferred, Effect } from "effect"
import net from "node:net"

const port = Number(process.env.PORT ?? 25253)
const mode = process.env.MODE ?? "bare"
const cpu = () => {
  const d = process.cpuUsage()
  return (d.user + d.system) / 1000
}
const t0 = cpu()
if (mode === "effect-smtp") {
  const { SmtpClient } = await import("./dist/src/index.js")
  const { NodeSmtpTransport } = await import("./dist/src/node.js")
  const start = cpu()
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      yield* SmtpClient.connect({ host: "127.0.0.1", port, security: "none", localHostname: "bench.local" })
      console.log(`${mode}: CPU to the end of EHLO ${(cpu() - start).toFixed(2)} ms`)
    })).pipe(Effect.provide(NodeSmtpTransport.layer))
  )
  console.log(`${mode}: CPU to the end ${(cpu() - start).toFixed(2)} ms`)
  process.exit(0)
}
await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const socket = yield* Effect.acquireRelease(
    Effect.async((resume) => {
      const s = net.connect(port, "127.0.0.1")
      s.once("connect", () => resume(Effect.succeed(s)))
    }),
    (s) => Effect.sync(() => s.destroy())
  )
  const greeting = yield* Deferred.make()
  if (mode === "platform") {
    const platform = yield* NodeSocket.fromDuplex(Effect.succeed(socket))
    yield* Effect.forkScoped(platform.runRaw((data) => Deferred.succeed(greeting, data)))
    yield* platform.writer
  } else {
    yield* Effect.forkScoped(Effect.async(() => {
      socket.on("data", (data) => Deferred.unsafeDone(greeting, Effect.succeed(data)))
    }))
  }
  yield* Deferred.await(greeting)
  console.log(`${mode}: CPU to the greeting ${(cpu() - t0).toFixed(2)} ms`)
})))
console.log(`${mode}: CPU to the end ${(cpu() - t0).toFixed(2)} ms`)
