// Loaded with `node --import` into every Node contestant (as the team harness's cpu-preload.mjs):
// appends the client's own figures to its `RESULT sent=<n> ms=<float>` line:
//   cpu_ms  user + system CPU time from the first socket connect (just after the contestant's t0)
//           to the moment RESULT is printed (module loading and start-up left out)
//   rss_kb  the process's peak resident set so far (process.resourceUsage().maxRSS, KiB)
import net from "node:net"

let cpu0 = null
const connect = net.Socket.prototype.connect
net.Socket.prototype.connect = function(...args) {
  if (cpu0 === null) cpu0 = process.cpuUsage()
  return connect.apply(this, args)
}
const write = process.stdout.write.bind(process.stdout)
process.stdout.write = function(chunk, ...rest) {
  if (typeof chunk === "string" && chunk.startsWith("RESULT")) {
    const d = process.cpuUsage(cpu0 ?? undefined)
    chunk = chunk.replace(
      /\n?$/,
      ` cpu_ms=${((d.user + d.system) / 1000).toFixed(1)} rss_kb=${process.resourceUsage().maxRSS}\n`
    )
  }
  return write(chunk, ...rest)
}
