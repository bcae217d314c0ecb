/**
 * LMTP interop (issue 6) with the real delivery agents started by scripts/peers/all.sh:
 *
 * - Dovecot LMTP over TCP and over its Unix socket. Dovecot advertises PIPELINING and CHUNKING (so
 *   BDAT is the default; `chunking: false` uses DATA) and STARTTLS on TCP (`security: "none"` keeps
 *   the plaintext). alice@ is a mailbox, ghost@ is refused at RCPT (550 5.1.1) and full@ passes RCPT
 *   but is over quota, so it is refused after the data (552 5.2.2): the per-recipient replies.
 *   Delivered mail lands in alice's Maildir with LF line endings and Return-Path / Delivered-To /
 *   Received prepended.
 * - aiosmtpd's LMTP on TCP and on its Unix socket (DATA only): rcpt-550@ is refused at RCPT,
 *   data-452@ gets 452 after the data, dropdata@ makes it close without any reply after the data,
 *   slowdata-MS@ delays the replies after the data.
 *
 * Without SMTP_PEERS_DIR the suites skip themselves with the reason in their title; with
 * SMTP_INTEROP_REQUIRED=1 (.ci/run) a missing peer fails the tests. Every test finds its delivery
 * by a unique token, so the tests may run concurrently with other suites.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope, Stream } from "effect"
import { type LmtpConnection, SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { captureLogs } from "../session/support.js"
import type { AiosmtpdPeer, DovecotPeer } from "./peers.js"
import {
  aiosmtpdPeer,
  dovecotMaildirNew,
  dovecotPeer,
  listFiles,
  readAiosmtpdMessage,
  skipReason,
  stripPostfixTrace,
  waitForFileContaining
} from "./peers.js"

const HELO = "client.lmtp.effect-smtp.test"
const FROM = "sender@example.test"

/** Real sockets, and a Scope closed (QUIT sent) at the end. */
const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))

const uniqueId = (label: string) => `${label}-${crypto.randomUUID()}`

const required = <A>(peer: A | undefined, name: string): A => {
  if (peer === undefined) throw new Error(`${name} interop peer not available`)
  return peer
}

/** A message with `token` in its Subject and Message-ID, leading-dot lines included; ends with CRLF. */
const messageWith = (token: string, to: string) =>
  `From: <${FROM}>\r\nTo: <${to}>\r\nSubject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\n\r\n` +
  "Hello,\r\n.a line with a leading dot\r\n..and one with two\r\n.\r\nthe end\r\n"

const toLf = (s: string) => s.replace(/\r\n/g, "\n")

/** The recipients of a Delivery as `[address, status, stage, code]`. */
const summary = (delivery: LmtpConnection.Delivery) =>
  delivery.recipients.map((r) => [r.recipient, r.status, r.stage, r.reply?.code] as const)

/** The commands the client sent, from the debug transcript (`C: ...` lines). */
const sentCommands = (lines: ReadonlyArray<string>) =>
  lines.filter((l) => l.startsWith("C: ")).map((l) => l.slice(3).replace(/^BDAT \d+/, "BDAT n"))

// ---------------------------------------------------------------------------------------------------------------
// Dovecot
// ---------------------------------------------------------------------------------------------------------------

const dovecot = (): DovecotPeer => required(dovecotPeer(), "dovecot")

const usersOf = (peer: DovecotPeer) => {
  const alice = peer.users.find((u) => u.startsWith("alice@"))
  if (alice === undefined) throw new Error(`no alice in the Dovecot users ${JSON.stringify(peer.users)}`)
  return { alice, ghost: `ghost-${crypto.randomUUID().slice(0, 8)}@${peer.domain}`, full: peer.overQuotaUser }
}

type Via = "tcp" | "unix"

const dovecotOptions = (peer: DovecotPeer, via: Via, extra: Partial<SmtpClient.LmtpOptions> = {}) =>
  ({
    protocol: "lmtp",
    ...(via === "tcp" ? { host: peer.host, port: peer.lmtpPort, security: "none" } : { host: peer.lmtpSocket }),
    localHostname: HELO,
    debug: 1,
    ...extra
  }) as SmtpClient.LmtpOptions

/** Alice's delivered file for `token`, with the trace fields Dovecot prepends removed. */
const aliceCopy = (peer: DovecotPeer, alice: string, token: string) =>
  Effect.promise(() => waitForFileContaining(dovecotMaildirNew(peer, alice), token)).pipe(
    Effect.map((file) => ({ file, content: stripPostfixTrace(fs.readFileSync(file, "latin1")) }))
  )

/** Whether a file holding `token` is in `dir` now (Dovecot writes the mailbox before it replies). */
const storedNow = (dir: string, token: string) =>
  [...listFiles(dir)].some((name) => fs.readFileSync(path.join(dir, name), "latin1").includes(token))

describe.skipIf(skipReason("dovecot") !== undefined)(skipReason("dovecot") ?? "Dovecot LMTP interop", () => {
  for (const via of ["tcp", "unix"] as const) {
    for (const chunking of [true, false]) {
      const name = `${via === "tcp" ? "TCP" : "Unix socket"}, ${
        chunking ? "BDAT (the default)" : "DATA (chunking: false)"
      }`
      it.live(`${name}: alice delivered, ghost refused at RCPT (550), full refused after the data (552)`, () => {
        const logs = captureLogs()
        return logs.provide(live(Effect.gen(function*() {
          const peer = dovecot()
          const { alice, full, ghost } = usersOf(peer)
          const token = uniqueId(`lmtp-${via}-${chunking ? "bdat" : "data"}`)
          const message = messageWith(token, alice)
          const lmtp = yield* SmtpClient.connect(dovecotOptions(peer, via, chunking ? {} : { chunking: false }))
          const delivery = yield* lmtp.sendmail(FROM, [alice, ghost, full], message)
          assert.deepStrictEqual(summary(delivery), [
            [alice, "delivered", "data", 250],
            [ghost, "refused", "rcpt", 550],
            [full, "refused", "data", 552]
          ])
          assert.strictEqual(delivery.recipients[1].reply?.enhancedCode, "5.1.1")
          assert.strictEqual(delivery.recipients[2].reply?.enhancedCode, "5.2.2")
          assert.deepStrictEqual(Object.keys(delivery.delivered), [alice])
          assert.deepStrictEqual(Object.keys(delivery.refused).sort(), [full, ghost].sort())
          assert.deepStrictEqual(delivery.unknown, [])
          assert.isUndefined(delivery.interruption)
          assert.isTrue(yield* lmtp.hasExtn("chunking"), "Dovecot advertises CHUNKING")
          assert.isFalse(yield* lmtp.isSecure)
          // what went on the wire: LHLO, then one BDAT LAST or DATA
          const commands = sentCommands(logs.lines)
          assert.strictEqual(commands[0], `LHLO ${HELO}`)
          assert.notInclude(commands.join("\n"), "EHLO")
          if (chunking) {
            assert.include(commands, "BDAT n LAST")
            assert.notInclude(commands, "DATA")
          } else {
            assert.include(commands, "DATA")
            assert.notInclude(commands.join("\n"), "BDAT")
          }
          const { content } = yield* aliceCopy(peer, alice, token)
          assert.strictEqual(content, toLf(message))
          assert.isFalse(storedNow(dovecotMaildirNew(peer, full), token), "nothing stored for the full mailbox")
        })))
      })
    }
  }

  it.live("every recipient refused at RCPT with BDAT in the flight: SmtpRecipientsRefused; the session goes on", () =>
    live(Effect.gen(function*() {
      const peer = dovecot()
      const { alice, ghost } = usersOf(peer)
      const lmtp = yield* SmtpClient.connect(dovecotOptions(peer, "tcp"))
      const token = uniqueId("lmtp-all-refused")
      const error = yield* Effect.flip(lmtp.sendmail(FROM, [ghost, `x${ghost}`], messageWith(token, ghost)))
      assert.strictEqual(error._tag, "SmtpRecipientsRefused")
      if (error._tag === "SmtpRecipientsRefused") {
        assert.deepStrictEqual(Object.values(error.recipients).map((r) => r.code), [550, 550])
      }
      // the BDAT's reply was consumed and RSET sent: the next transaction is a clean one
      const next = uniqueId("lmtp-after-refused")
      const delivery = yield* lmtp.sendmail(FROM, [alice], messageWith(next, alice))
      assert.deepStrictEqual(summary(delivery), [[alice, "delivered", "data", 250]])
      assert.strictEqual((yield* aliceCopy(peer, alice, next)).content, toLf(messageWith(next, alice)))
    })))

  it.live("a streamed 2 MiB message over the Unix socket: BDAT chunks, the per-recipient replies after LAST", () => {
    const logs = captureLogs()
    return logs.provide(live(Effect.gen(function*() {
      const peer = dovecot()
      const { alice, full } = usersOf(peer)
      const token = uniqueId("lmtp-stream")
      const head = `From: <${FROM}>\r\nTo: <${alice}>\r\nSubject: ${token}\r\n\r\n`
      const line = `${"0123456789".repeat(7)}abcdefgh\r\n`
      const lines = Math.ceil((2 * 1024 * 1024) / line.length)
      const body = Array.from({ length: lines }, (_, i) => (i % 1000 === 0 ? `.${line}` : line)).join("")
      const message = head + body
      const bytes = new TextEncoder().encode(message)
      const pieces: Array<Uint8Array> = []
      for (let i = 0; i < bytes.length; i += 100_000) pieces.push(bytes.subarray(i, i + 100_000))
      const lmtp = yield* SmtpClient.connect(dovecotOptions(peer, "unix"))
      const delivery = yield* lmtp.sendmail(FROM, [alice, full], Stream.fromIterable(pieces))
      assert.deepStrictEqual(summary(delivery), [[alice, "delivered", "data", 250], [full, "refused", "data", 552]])
      const bdats = sentCommands(logs.lines).filter((c) => c.startsWith("BDAT"))
      assert.isAbove(bdats.length, 1)
      assert.deepStrictEqual(bdats.slice(-1), ["BDAT n LAST"])
      assert.strictEqual((yield* aliceCopy(peer, alice, token)).content, toLf(message))
    })))
  })

  it.live("STARTTLS on the TCP port (security: starttls, the test CA): delivered over TLS", () =>
    live(Effect.gen(function*() {
      const peer = dovecot()
      if (!peer.starttls) return assert.fail(`this Dovecot peer has no STARTTLS (DC_SSL=no): ${JSON.stringify(peer)}`)
      const { alice, ghost } = usersOf(peer)
      const token = uniqueId("lmtp-starttls")
      const lmtp = yield* SmtpClient.connect({
        protocol: "lmtp",
        host: peer.host,
        port: peer.lmtpPort,
        security: "starttls",
        tls: { ca: fs.readFileSync(peer.ca, "utf8") },
        localHostname: HELO
      })
      assert.isTrue(yield* lmtp.isSecure)
      const delivery = yield* lmtp.sendmail(FROM, [ghost, alice], messageWith(token, alice))
      assert.deepStrictEqual(summary(delivery), [[ghost, "refused", "rcpt", 550], [alice, "delivered", "data", 250]])
      assert.strictEqual((yield* aliceCopy(peer, alice, token)).content, toLf(messageWith(token, alice)))
    })))
})

// ---------------------------------------------------------------------------------------------------------------
// aiosmtpd
// ---------------------------------------------------------------------------------------------------------------

const aiosmtpd = (): AiosmtpdPeer => required(aiosmtpdPeer(), "aiosmtpd")

const aioOptions = (peer: AiosmtpdPeer, via: Via, extra: Partial<SmtpClient.LmtpOptions> = {}) => {
  if (via === "unix" && peer.lmtpSocket === "") throw new Error("the aiosmtpd peer has no LMTP Unix socket")
  return ({
    protocol: "lmtp",
    ...(via === "tcp" ? { host: peer.host, port: peer.ports.lmtp, security: "none" } : { host: peer.lmtpSocket }),
    localHostname: HELO,
    debug: 1,
    ...extra
  }) as SmtpClient.LmtpOptions
}

/** The stored message holding `token` (aiosmtpd writes the .eml and .json before it replies). */
const aioStored = (peer: AiosmtpdPeer, token: string) =>
  Effect.promise(() => waitForFileContaining(peer.outdir, token)).pipe(
    Effect.map((file) => readAiosmtpdMessage(peer, path.basename(file, ".eml")))
  )

describe.skipIf(skipReason("aiosmtpd") !== undefined)(skipReason("aiosmtpd") ?? "aiosmtpd LMTP interop", () => {
  for (const via of ["tcp", "unix"] as const) {
    it.live(`${via === "tcp" ? "TCP" : "Unix socket"}: delivered, refused at RCPT (550), 452 after the data`, () => {
      const logs = captureLogs()
      return logs.provide(live(Effect.gen(function*() {
        const peer = aiosmtpd()
        const token = uniqueId(`aio-lmtp-${via}`)
        const alice = "alice@example.test"
        const refusedAtRcpt = "rcpt-550@example.test"
        const refusedAfterData = "data-452@example.test"
        const message = messageWith(token, alice)
        const lmtp = yield* SmtpClient.connect(aioOptions(peer, via))
        const delivery = yield* lmtp.sendmail(FROM, [alice, refusedAtRcpt, refusedAfterData], message)
        assert.deepStrictEqual(summary(delivery), [
          [alice, "delivered", "data", 250],
          [refusedAtRcpt, "refused", "rcpt", 550],
          [refusedAfterData, "refused", "data", 452]
        ])
        assert.include(delivery.recipients[0].reply?.text, `<${alice}> stored as`)
        assert.include(delivery.recipients[2].reply?.text, `<${refusedAfterData}>`)
        const commands = sentCommands(logs.lines)
        assert.strictEqual(commands[0], `LHLO ${HELO}`)
        assert.include(commands, "DATA")
        const stored = yield* aioStored(peer, token)
        assert.strictEqual(stored.bytes.toString("latin1"), message)
        assert.strictEqual(stored.meta.proto, "LMTP")
        assert.strictEqual(stored.meta.port, via === "tcp" ? peer.ports.lmtp : peer.lmtpSocket)
        assert.strictEqual(stored.meta.helo, HELO)
        assert.strictEqual(stored.meta.mail_from, FROM)
        assert.deepStrictEqual(stored.meta.rcpt_tos, [alice, refusedAfterData])
        assert.deepStrictEqual(stored.meta.delivered_to, [alice])
      })))
    })
  }

  it.live("all refused after the data: SmtpRecipientsRefused with each recipient's reply", () =>
    live(Effect.gen(function*() {
      const peer = aiosmtpd()
      const token = uniqueId("aio-lmtp-all-refused")
      const lmtp = yield* SmtpClient.connect(aioOptions(peer, "tcp"))
      const error = yield* Effect.flip(
        lmtp.sendmail(FROM, ["data-552@example.test", "data-451@example.test"], messageWith(token, "x@example.test"))
      )
      assert.strictEqual(error._tag, "SmtpRecipientsRefused")
      if (error._tag === "SmtpRecipientsRefused") {
        assert.deepStrictEqual(Object.entries(error.recipients).map(([r, reply]) => [r, reply.code]), [
          ["data-552@example.test", 552],
          ["data-451@example.test", 451]
        ])
      }
      assert.strictEqual((yield* lmtp.noop).code, 250)
    })))

  it.live("the server closes after the data without a reply: every accepted recipient unknown, none delivered", () =>
    live(Effect.gen(function*() {
      const peer = aiosmtpd()
      const token = uniqueId("aio-lmtp-drop")
      const lmtp = yield* SmtpClient.connect(aioOptions(peer, "tcp"))
      const delivery = yield* lmtp.sendmail(
        FROM,
        ["alice@example.test", "rcpt-550@example.test", "dropdata@example.test"],
        messageWith(token, "alice@example.test")
      )
      assert.deepStrictEqual(summary(delivery), [
        ["alice@example.test", "unknown", "data", undefined],
        ["rcpt-550@example.test", "refused", "rcpt", 550],
        ["dropdata@example.test", "unknown", "data", undefined]
      ])
      assert.deepStrictEqual(delivery.delivered, {})
      assert.deepStrictEqual(delivery.unknown, ["alice@example.test", "dropdata@example.test"])
      assert.strictEqual(delivery.interruption?._tag, "SmtpDeliveryUnknown")
      assert.strictEqual((delivery.interruption as any)?.cause?._tag, "SmtpServerDisconnected")
      assert.isTrue(yield* lmtp.isClosed)
    })))

  it.live("the replies after the data take longer than `timeout`: unknown with SmtpTimeout", () =>
    live(Effect.gen(function*() {
      const peer = aiosmtpd()
      const token = uniqueId("aio-lmtp-slow")
      const lmtp = yield* SmtpClient.connect(aioOptions(peer, "unix", { timeout: "1500 millis" }))
      const delivery = yield* lmtp.sendmail(
        FROM,
        ["alice@example.test", "slowdata-4000@example.test"],
        messageWith(token, "alice@example.test")
      )
      assert.deepStrictEqual(summary(delivery), [
        ["alice@example.test", "unknown", "data", undefined],
        ["slowdata-4000@example.test", "unknown", "data", undefined]
      ])
      assert.deepStrictEqual(delivery.interruption?._tag, "SmtpDeliveryUnknown")
      assert.deepStrictEqual((delivery.interruption as any)?.cause?._tag, "SmtpTimeout")
    })))
})
