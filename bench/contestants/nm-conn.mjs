// Copied from the team harness (shared/bench/contestants/nm-conn.mjs), formatted as this repository.
// nodemailer's low-level SMTPConnection, one message at a time per connection,
// CONNS connections in parallel. Message handed over as a raw string (or as a
// lazily generated stream when SIZE >= STREAM_MIN, so streaming can show).
import { createRequire } from "node:module"
import { env, FROM, messageStream, messageString, now, rcpts, report, shares, STREAM_MIN } from "./lib/common.mjs"
const require = createRequire(import.meta.url)
const SMTPConnection = require("nodemailer/lib/smtp-connection")

const big = env.SIZE >= STREAM_MIN
const raw = big ? null : messageString(env.SIZE)
const envelope = () => ({ from: FROM, to: rcpts })

function runConn(n) {
  return new Promise((resolve, reject) => {
    const conn = new SMTPConnection({
      host: env.HOST,
      port: env.PORT,
      secure: false,
      ignoreTLS: true,
      name: "bench.local"
    })
    conn.on("error", reject)
    conn.connect(() => {
      let sent = 0
      const next = () => {
        if (sent === n) {
          conn.quit()
          return resolve(sent)
        }
        conn.send(envelope(), big ? messageStream(env.SIZE) : raw, (err) => {
          if (err) return reject(err)
          sent++
          next()
        })
      }
      next()
    })
  })
}
const t0 = now()
const sent = (await Promise.all(shares(env.N, env.CONNS).filter((n) => n > 0).map(runConn))).reduce((a, b) => a + b, 0)
report(sent, t0)
