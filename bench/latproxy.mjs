// A loopback TCP proxy that holds every server→client chunk for a fixed time (default 2 ms) and
// forwards client→server bytes at once: the Node version of the team harness's tools/latproxy.c.
// Order is kept; the delay is per chunk read from the server, so pipelined replies that arrive
// together leave together, delayed once, as on a link with that latency.
//
//   node bench/latproxy.mjs LISTEN_PORT UPSTREAM_PORT [DELAY_US=2000]
//
// Listens on 127.0.0.1 (LISTEN_PORT 0: any free port), connects to 127.0.0.1:UPSTREAM_PORT for each
// client, prints `LISTENING <port>`.
//
// Node's timers have a resolution of 1 ms (libuv's loop clock), which would make a 2 ms delay
// anything from 1 to 3 ms. The due times are therefore kept on the high-resolution clock and a
// worker thread sleeps until the earliest one with Atomics.wait (a timed wait on a futex, no
// spinning, ~0.1 ms late at most), then wakes this thread with a message.
import net from "node:net"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"

const now = () => Number(process.hrtime.bigint()) / 1e6 // ms
// the timer fires this early, and a chunk leaves when it is due within it: what waking the main
// thread costs (measured through the proxy: a 2 ms delay gives a NOOP round trip of about 2.1 ms)
const LEAD = Number(process.env.LATPROXY_LEAD_MS ?? 0.2)

if (!isMainThread) {
  // the timer: shared[0] is a version bumped on every change, due[0] the earliest due time (ms, 0: none)
  const shared = new Int32Array(workerData, 0, 1)
  const due = new Float64Array(workerData, 8, 1)
  for (;;) {
    const version = Atomics.load(shared, 0)
    const at = due[0]
    if (at === 0) {
      Atomics.wait(shared, 0, version)
      continue
    }
    const wait = at - LEAD - now()
    if (wait > 0) {
      Atomics.wait(shared, 0, version, wait)
      continue
    }
    due[0] = 0
    parentPort.postMessage(0)
  }
} else {
  const [listenPort, upstreamPort, delayUs = "2000"] = process.argv.slice(2)
  const delay = Number(delayUs) / 1000
  const buffer = new SharedArrayBuffer(16)
  const shared = new Int32Array(buffer, 0, 1)
  const due = new Float64Array(buffer, 8, 1)
  const timer = new Worker(new URL(import.meta.url), { workerData: buffer })
  timer.unref()

  // every chunk held, in arrival order (the delay is the same for all, so due times only grow);
  // a null chunk is the server's end of stream
  const queue = []
  let head = 0
  const arm = () => {
    due[0] = head < queue.length ? queue[head].at : 0
    Atomics.add(shared, 0, 1)
    Atomics.notify(shared, 0)
  }
  const hold = (client, chunk) => {
    queue.push({ client, chunk, at: now() + delay })
    if (queue.length - head === 1) arm()
  }
  const flush = () => {
    const t = now() + LEAD
    while (head < queue.length && queue[head].at <= t) {
      const { chunk, client } = queue[head]
      queue[head++] = undefined
      if (client.destroyed) continue
      if (chunk === null) client.end()
      else client.write(chunk)
    }
    if (head === queue.length) {
      queue.length = 0
      head = 0
    }
    arm()
  }
  timer.on("message", flush)

  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: "127.0.0.1", port: Number(upstreamPort), noDelay: true })
    client.pipe(upstream) // client→server at once (with backpressure)
    upstream.on("data", (chunk) => hold(client, chunk))
    upstream.on("end", () => hold(client, null))
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on("error", close)
    upstream.on("error", close)
    client.on("close", () => upstream.destroy())
  })
  server.listen(Number(listenPort), "127.0.0.1", () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`)
  })
  process.on("SIGTERM", () => process.exit(0))
}
