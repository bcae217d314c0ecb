/**
 * A small SMTP sink for benchmarks: answers every command at once, discards message data, counts
 * messages. PIPELINING always; CHUNKING when asked. One reply write per received chunk, as a
 * pipelining server answers a flight.
 *
 *   node --import tsx bench/sink.ts [--port 2525] [--chunking] [--latency-free]
 *
 * Prints `LISTENING <port>` once it accepts connections; on SIGTERM prints `MESSAGES <n>` and exits;
 * on SIGUSR2 prints `MESSAGES <n>` (the messages accepted so far) and goes on.
 */
import * as net from "node:net"

const CR = 13
const LF = 10

export interface SinkOptions {
  readonly port?: number
  readonly host?: string
  readonly chunking?: boolean
}

export interface Sink {
  readonly port: number
  readonly messages: () => number
  readonly close: () => Promise<void>
}

const ehlo = (chunking: boolean) =>
  Buffer.from(
    "250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n" +
      (chunking ? "250-CHUNKING\r\n" : "") + "250 ENHANCEDSTATUSCODES\r\n"
  )
const OK = Buffer.from("250 2.0.0 Ok\r\n")
const GO = Buffer.from("354 End data with <CR><LF>.<CR><LF>\r\n")
const BYE = Buffer.from("221 2.0.0 Bye\r\n")
const END = Buffer.from("\r\n.\r\n")
const UNKNOWN = Buffer.from("502 5.5.2 Error: command not recognized\r\n")

export const start = (options: SinkOptions = {}): Promise<Sink> => {
  let messages = 0
  let queueId = 0
  const chunking = options.chunking === true
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => socket.destroy())
    socket.setNoDelay(true)
    let mode: "command" | "data" | "bdat" = "command"
    let line: Array<Buffer> = []
    // data mode: the last bytes seen, to find CRLF.CRLF across chunks
    let tail = [0, 0, 0, 0]
    let bdatLeft = 0
    let bdatLast = false
    // QUIT ends the connection once the replies of its flight are written (a write after end fails)
    let quit = false
    const queued = () => {
      messages++
      return Buffer.from(`250 2.0.0 Ok: queued as S${(++queueId).toString(16).toUpperCase()}\r\n`)
    }
    const command = (text: string, out: Array<Buffer>): void => {
      const verb = text.slice(0, 4).toUpperCase()
      switch (verb) {
        case "EHLO":
        case "LHLO":
          out.push(ehlo(chunking))
          return
        case "HELO":
        case "MAIL":
        case "RCPT":
        case "RSET":
        case "NOOP":
          out.push(OK)
          return
        case "DATA":
          mode = "data"
          tail = [0, 0, CR, LF]
          out.push(GO)
          return
        case "BDAT": {
          const parts = text.split(" ")
          bdatLeft = Number(parts[1])
          bdatLast = (parts[2] ?? "").toUpperCase() === "LAST"
          mode = "bdat"
          if (bdatLeft === 0) {
            mode = "command"
            out.push(bdatLast ? queued() : OK)
          }
          return
        }
        case "QUIT":
          out.push(BYE)
          quit = true
          return
        default:
          out.push(UNKNOWN)
      }
    }
    socket.on("data", (chunk: Buffer) => {
      const out: Array<Buffer> = []
      let i = 0
      while (i < chunk.length && !quit) {
        if (mode === "command") {
          const lf = chunk.indexOf(LF, i)
          if (lf === -1) {
            line.push(chunk.subarray(i))
            break
          }
          line.push(chunk.subarray(i, lf))
          const text = Buffer.concat(line).toString("latin1").replace(/\r$/, "")
          line = []
          i = lf + 1
          command(text, out)
        } else if (mode === "bdat") {
          const take = Math.min(bdatLeft, chunk.length - i)
          bdatLeft -= take
          i += take
          if (bdatLeft === 0) {
            mode = "command"
            out.push(bdatLast ? queued() : OK)
          }
        } else {
          // data: find CRLF . CRLF, also across the boundary with the previous chunk
          const rest = chunk.subarray(i)
          const joint = Buffer.concat([Buffer.from(tail), rest.subarray(0, 4)])
          const atJoint = joint.indexOf(END)
          const end = atJoint !== -1 ? atJoint + 5 - tail.length : (() => {
            const at = rest.indexOf(END)
            return at === -1 ? -1 : at + 5
          })()
          if (end === -1) {
            const keep = Buffer.concat([Buffer.from(tail), rest]).subarray(-4)
            tail = Array.from(keep)
            break
          }
          i += end
          mode = "command"
          out.push(queued())
        }
      }
      if (out.length > 0) socket.write(out.length === 1 ? out[0] : Buffer.concat(out))
      if (quit) socket.end()
    })
    socket.write("220 sink.test ESMTP\r\n")
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      resolve({
        port: address.port,
        messages: () => messages,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, "/"))
if (isMain) {
  const args = process.argv.slice(2)
  const portArg = args.indexOf("--port")
  start({ port: portArg === -1 ? 0 : Number(args[portArg + 1]), chunking: args.includes("--chunking") }).then(
    (sink) => {
      process.stdout.write(`LISTENING ${sink.port}\n`)
      // the parent may be gone when SIGTERM comes (its end of the pipe closed): exit quietly
      process.stdout.on("error", () => process.exit(0))
      process.on("SIGUSR2", () => process.stdout.write(`MESSAGES ${sink.messages()}\n`))
      process.on("SIGTERM", () => {
        process.stdout.write(`MESSAGES ${sink.messages()}\n`)
        void sink.close().then(() => process.exit(0))
      })
    }
  )
}
