// Copied from the team harness (shared/bench/contestants/raw-floor.mjs), formatted as this repository;
// raw-354 is MODE=sync354, raw-bdat MODE=bdat (against bench/sink.ts --chunking).
// Raw floor: the practical lower bound for a Node SMTP client.
// Precomputes the SMTP byte stream for N messages and writes it over node:net,
// counting replies (only the first 4 bytes of each reply line are looked at).
//   MODE=blast   (default) whole stream written at once right after EHLO: 0 waits per
//                message. Not RFC-compliant without CHUNKING (DATA is a sync point, the
//                client should wait for 354), but smtp-sink accepts it: absolute floor.
//   MODE=sync354 RFC 2920-compliant pipelining: MAIL+RCPT*+DATA in one write, wait for 354,
//                then body+"."+next MAIL/RCPT/DATA in one write => 1 round trip / message.
//   MODE=bdat    RFC 3030 CHUNKING: MAIL+RCPT*+"BDAT <len> LAST"+body for all messages in one
//                write, no waits and compliant -- needs a server with CHUNKING (bench/sink.ts --chunking).
import net from "node:net"
import { env, FROM, messageString, now, rcpts, report, shares } from "./lib/common.mjs"

const MODE = process.env.MODE || "blast"
const msg = Buffer.from(messageString(env.SIZE)) // ends with CRLF, no leading dots
const envl = Buffer.from(`MAIL FROM:<${FROM}>\r\n` + rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join("") + "DATA\r\n")
const eod = Buffer.from(".\r\n")
const QUIT = Buffer.from("QUIT\r\n")
const EHLO = Buffer.from("EHLO bench.local\r\n")
const BDAT = MODE === "bdat"
const bdatEnv = Buffer.from(
  `MAIL FROM:<${FROM}>\r\n` + rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join("") + `BDAT ${msg.length} LAST\r\n`
)
const perMsg = env.RCPTS + (BDAT ? 2 : 3) // MAIL, RCPT*R, [DATA(354)], end-of-data / BDAT LAST

const parts = shares(env.N, env.CONNS).filter((n) => n > 0)
// precompute (outside the timed region)
const blast = MODE === "blast" || BDAT
  ? new Map(
    parts.map((
      n
    ) => [
      n,
      Buffer.concat([...Array.from({ length: n }, () => (BDAT ? [bdatEnv, msg] : [envl, msg, eod])).flat(), QUIT])
    ])
  )
  : null
const bodyThenEnv = Buffer.concat([msg, eod, envl])
const bodyThenQuit = Buffer.concat([msg, eod, QUIT])

function runConn(n) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: env.HOST, port: env.PORT })
    sock.setNoDelay(true)
    let state = 0, replies = 0, sent = 0, written = 0, carry = null
    const onReply = (c0, c1, c2) => {
      if (state === 0) {
        if (c0 !== 0x32) return reject(new Error("greeting"))
        state = 1
        sock.write(EHLO)
        return
      }
      if (state === 1) {
        if (c0 !== 0x32) return reject(new Error("EHLO"))
        state = 2
        if (blast) sock.write(blast.get(n))
        else {
          sock.write(envl)
          written = 1
        }
        return
      }
      if (state === 3) {
        sock.end()
        return
      } // 221 to QUIT
      if (c0 !== 0x32 && c0 !== 0x33) return reject(new Error("unexpected reply " + String.fromCharCode(c0, c1, c2)))
      const idx = replies++ % perMsg
      if (idx === perMsg - 2 && !blast) { // 354
        if (written < n) {
          sock.write(bodyThenEnv)
          written++
        } else sock.write(bodyThenQuit)
      } else if (idx === perMsg - 1) { // message accepted
        if (++sent === n) {
          state = 3
          resolve(sent)
        }
      }
    }
    sock.on("data", (chunk) => {
      if (carry) {
        chunk = Buffer.concat([carry, chunk])
        carry = null
      }
      let start = 0
      for (;;) {
        const nl = chunk.indexOf(10, start)
        if (nl < 0) {
          if (start < chunk.length) carry = chunk.subarray(start)
          break
        }
        if (chunk[start + 3] !== 0x2d) onReply(chunk[start], chunk[start + 1], chunk[start + 2])
        start = nl + 1
      }
    })
    sock.on("error", reject)
  })
}

const t0 = now()
const sent = (await Promise.all(parts.map(runConn))).reduce((a, b) => a + b, 0)
report(sent, t0, `mode=${MODE}`)
