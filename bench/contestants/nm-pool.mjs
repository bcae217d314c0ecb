// Copied from the team harness (shared/bench/contestants/nm-pool.mjs), formatted as this repository.
// nodemailer transport with pool:true, maxConnections=MAXCONN (default 1; the
// harness registers nm-pool1 and nm-pool4). All N sendMail() calls are queued at
// once. raw message (no MIME composition) unless MIME=1; maxMessages=Infinity so a
// pooled connection is not recycled every 100 messages (the library default).
import nodemailer from "nodemailer"
import { bodyText, env, FROM, messageStream, messageString, now, rcpts, report, STREAM_MIN } from "./lib/common.mjs"

const MAXCONN = Number(process.env.MAXCONN || 1)
const MIME = process.env.MIME === "1"
const big = env.SIZE >= STREAM_MIN
const raw = big ? null : messageString(env.SIZE)
const text = MIME ? bodyText(env.SIZE) : null

const transporter = nodemailer.createTransport({
  host: env.HOST,
  port: env.PORT,
  secure: false,
  ignoreTLS: true,
  name: "bench.local",
  pool: true,
  maxConnections: MAXCONN,
  maxMessages: Infinity
})
const mail = () =>
  MIME
    ? { from: FROM, to: rcpts[0], bcc: rcpts.slice(1), subject: "bench", text }
    : { envelope: { from: FROM, to: rcpts }, raw: big ? messageStream(env.SIZE) : raw }

const t0 = now()
const res = await Promise.all(Array.from({ length: env.N }, () => transporter.sendMail(mail())))
report(res.length, t0, `maxConnections=${MAXCONN}${MIME ? " mime=1" : ""}`)
transporter.close()
