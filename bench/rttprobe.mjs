// The round trip through the latency proxy, as the team harness's tools/rttprobe.mjs: EHLO, then
// COUNT (100) NOOPs one at a time; prints `rtt_ms=<median>`. run.ts divides W5 times by it.
import net from "node:net"

const port = Number(process.env.PORT)
const count = Number(process.env.COUNT ?? 100)
const sock = net.connect({ host: process.env.HOST ?? "127.0.0.1", port })
sock.setNoDelay(true)
const times = []
let state = 0
let t = 0n
let carry = ""
sock.on("data", (d) => {
  const lines = (carry + d.toString("latin1")).split("\n")
  carry = lines.pop()
  for (const l of lines) {
    if (l[3] === "-" || state === 3) continue
    if (state === 0) {
      state = 1
      sock.write("EHLO probe\r\n")
      continue
    }
    if (state === 1) state = 2
    else times.push(Number(process.hrtime.bigint() - t) / 1e6)
    if (times.length === count) {
      state = 3
      sock.end("QUIT\r\n")
      times.sort((a, b) => a - b)
      process.stdout.write(
        `rtt_ms=${times[count >> 1].toFixed(3)} min_ms=${times[0].toFixed(3)} max_ms=${times[count - 1].toFixed(3)}\n`
      )
      return
    }
    t = process.hrtime.bigint()
    sock.write("NOOP\r\n")
  }
})
sock.on("error", (e) => {
  process.stderr.write(`${e}\n`)
  process.exit(1)
})
