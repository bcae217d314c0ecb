// Shared helpers for the Node contestants (copied from the team harness, shared/bench/contestants/lib/common.mjs,
// so that bench/ runs without it). Every contestant reads HOST PORT N RCPTS SIZE CONNS from the environment.
import { Readable } from "node:stream"

export const env = {
  HOST: process.env.HOST || "127.0.0.1",
  PORT: Number(process.env.PORT || 25250),
  N: Number(process.env.N || 1),
  RCPTS: Number(process.env.RCPTS || 1),
  SIZE: Number(process.env.SIZE || 1000),
  CONNS: Number(process.env.CONNS || 1)
}
export const FROM = "sender@example.com"
export const rcpts = Array.from({ length: env.RCPTS }, (_, i) => `rcpt${i + 1}@example.com`)

export const HEADER = "From: <sender@example.com>\r\n" +
  "To: <rcpt1@example.com>\r\n" +
  "Subject: bench\r\n" +
  "Message-ID: <bench@example.com>\r\n" +
  "MIME-Version: 1.0\r\n" +
  "Content-Type: text/plain; charset=us-ascii\r\n" +
  "\r\n"
// 80 bytes per line incl. CRLF; no line starts with '.', so no dot-stuffing on the wire
export const LINE = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuv\r\n"
export const bodyLines = (size) => Math.max(1, Math.ceil((size - HEADER.length) / LINE.length))
export const bodyText = (size) => LINE.repeat(bodyLines(size))
export const messageString = (size) => HEADER + bodyText(size)

// Lazily generated message of `size` bytes as a Readable (64 KiB chunks) -- used
// where the API accepts a stream, so streaming clients need not hold the message.
export function messageStream(size) {
  const perChunk = 819 // 819 * 80 = 65520 bytes
  const block = Buffer.from(LINE.repeat(perChunk))
  let left = bodyLines(size), sentHeader = false
  return new Readable({
    read() {
      if (!sentHeader) {
        sentHeader = true
        this.push(Buffer.from(HEADER))
        return
      }
      if (left <= 0) {
        this.push(null)
        return
      }
      const n = Math.min(left, perChunk)
      left -= n
      this.push(n === perChunk ? block : block.subarray(0, n * LINE.length))
    }
  })
}
export const STREAM_MIN = Number(process.env.STREAM_MIN || 1 << 20) // use streams for SIZE >= 1 MiB

export const now = () => Number(process.hrtime.bigint()) / 1e6
export function report(sent, t0, extra = "") {
  const ms = now() - t0
  console.log(`RESULT sent=${sent} ms=${ms.toFixed(3)}${extra ? " " + extra : ""}`)
}
// split N messages over CONNS connections
export const shares = (n, k) => Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0))
