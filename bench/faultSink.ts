/**
 * A tiny SMTP sink with faults for the Mailer memory benches, in the bench's own process: it speaks just enough SMTP
 * (greeting, EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps nothing, and can
 *
 * - close the connection after every `closeAfter` messages (right after the 250 to the end of data),
 * - drop a fraction of connections at the end of the data (no reply: the outcome is unknown),
 * - answer a fraction of RCPTs with 451 (a transient refusal).
 *
 * Randomness comes from a seeded generator, so a run is repeatable.
 */
import * as Net from "node:net"

export interface SinkOptions {
  /** Close the connection after this many messages. Default: never. */
  readonly closeAfter?: number | undefined
  /** Fraction of messages whose connection is dropped instead of answering the end of data. */
  readonly dropRate?: number | undefined
  /** Fraction of RCPT commands answered with 451. */
  readonly tempFailRate?: number | undefined
  readonly seed?: number | undefined
}

export interface Sink {
  readonly port: number
  readonly stats: { connections: number; messages: number; dropped: number; tempFailed: number }
  readonly close: () => Promise<void>
}

/** mulberry32: a small seeded PRNG. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

export const start = (options: SinkOptions = {}): Promise<Sink> => {
  const random = prng(options.seed ?? 42)
  const stats = { connections: 0, messages: 0, dropped: 0, tempFailed: 0 }
  const sockets = new Set<Net.Socket>()
  const server = Net.createServer((socket) => {
    stats.connections++
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => {})
    socket.setNoDelay(true)
    let buffer = ""
    let inData = false
    let messages = 0
    let accepted = 0
    const out: Array<string> = []
    const flush = () => {
      if (out.length > 0 && !socket.destroyed) socket.write(out.splice(0).join(""))
    }
    socket.write("220 sink ESMTP\r\n")
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("latin1")
      for (;;) {
        if (inData) {
          const end = buffer.indexOf("\r\n.\r\n")
          if (end === -1) {
            // keep only what could be the start of the terminator
            if (buffer.length > 4) buffer = buffer.slice(-4)
            break
          }
          buffer = buffer.slice(end + 5)
          inData = false
          accepted = 0
          messages++
          stats.messages++
          if (options.dropRate !== undefined && random() < options.dropRate) {
            stats.dropped++
            flush()
            socket.destroy()
            return
          }
          out.push("250 2.0.0 queued\r\n")
          if (options.closeAfter !== undefined && messages >= options.closeAfter) {
            flush()
            socket.end()
            return
          }
          continue
        }
        const eol = buffer.indexOf("\r\n")
        if (eol === -1) break
        const line = buffer.slice(0, eol)
        buffer = buffer.slice(eol + 2)
        const verb = line.slice(0, 4).toUpperCase()
        switch (verb) {
          case "EHLO":
            out.push("250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            break
          case "MAIL":
          case "RSET":
            accepted = 0
            out.push("250 ok\r\n")
            break
          case "HELO":
          case "NOOP":
            out.push("250 ok\r\n")
            break
          case "RCPT":
            if (options.tempFailRate !== undefined && random() < options.tempFailRate) {
              stats.tempFailed++
              out.push("451 4.3.0 try again\r\n")
            } else {
              accepted++
              out.push("250 ok\r\n")
            }
            break
          case "DATA":
            if (accepted === 0) {
              out.push("554 5.5.1 no valid recipients\r\n")
            } else {
              out.push("354 go\r\n")
              inData = true
              // a "." line right at the start ends an empty message
              buffer = "\r\n" + buffer
            }
            break
          case "QUIT":
            out.push("221 bye\r\n")
            flush()
            socket.end()
            return
          default:
            out.push("500 what\r\n")
        }
      }
      flush()
    })
  })
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      resolve({
        port,
        stats,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy()
            server.close(() => done())
          })
      })
    })
  })
}
