/**
 * Peak memory of one large Stream message, over DATA and over BDAT, for two chunkings of the same
 * bytes: Effect's default (`Stream.fromIterable` of 64 KiB pieces: 4096 pieces, 256 MiB, per Chunk)
 * and one 64 KiB piece per Chunk. The sink runs in a child process, so the figures are the client's.
 *
 *   node --import tsx bench/stream-memory.ts [MiB=1024] [data|bdat|both] [default|single|both]
 *
 * Prints one line per run: mode, chunking, bytes sent, seconds, peak RSS (MiB).
 */
import { Effect, Stream } from "effect"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import { startSinkProcess } from "./sinkProcess.js"

const PIECE = 64 * 1024
const [mibArg, modeArg = "both", chunkingArg = "both"] = process.argv.slice(2)
const MIB = Number(mibArg ?? 1024)

const line = new TextEncoder().encode(
  "The quick brown fox jumps over the lazy dog 0123456789 .abcdefghijklmnopqrstu\r\n"
)
const piece = new Uint8Array(PIECE)
for (let i = 0; i < PIECE; i++) piece[i] = line[i % line.length]
piece[PIECE - 2] = 13
piece[PIECE - 1] = 10
const pieces = (MIB * 1024 * 1024) / PIECE

const message = (chunking: "default" | "single"): Stream.Stream<Uint8Array> =>
  // Stream.range makes Chunks of 4096 elements by default (Effect's default chunk size)
  (chunking === "default" ? Stream.range(1, pieces) : Stream.range(1, pieces, 1)).pipe(
    Stream.map(() => piece.slice())
  )

let peak = 0
const sample = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss())
}, 20)

const run = async (mode: "data" | "bdat", chunking: "default" | "single") => {
  const sink = await startSinkProcess({ chunking: mode === "bdat" })
  global.gc?.()
  peak = process.memoryUsage.rss()
  const t0 = performance.now()
  await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect({ host: "127.0.0.1", port: sink.port, security: "none" })
      yield* smtp.sendmail("a@example.com", "b@example.com", message(chunking))
    })).pipe(Effect.provide(NodeSmtpTransport.layer))
  )
  const seconds = (performance.now() - t0) / 1000
  peak = Math.max(peak, process.memoryUsage.rss())
  sink.stop()
  console.log(
    `${mode.padEnd(5)} ${chunking.padEnd(8)} ${MIB} MiB  ${seconds.toFixed(1)} s  peak RSS ${
      (peak / 1024 / 1024).toFixed(0)
    } MiB`
  )
}

const modes = modeArg === "both" ? (["data", "bdat"] as const) : [modeArg as "data" | "bdat"]
const chunkings = chunkingArg === "both" ? (["default", "single"] as const) : [chunkingArg as "default" | "single"]
for (const chunking of chunkings) for (const mode of modes) await run(mode, chunking)
clearInterval(sample)
