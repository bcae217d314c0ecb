/**
 * Interop with a real Postfix 3.7 (scripts/peers/postfix.sh): plaintext on 2525, STARTTLS on 2587, implicit TLS on
 * 2465, submission (STARTTLS + AUTH required) on 2588. Mail is delivered by virtual(8) into Maildirs, with LF line
 * endings and trace headers prepended (stripped with `stripPostfixTrace`), asynchronously: tests poll for a new
 * file holding their own unique Message-ID, so they may run concurrently with each other and with other suites.
 *
 * Scripted replies (see /work/shared/peers/README.md): nobody@ 550 5.1.1, reject@ 550 5.7.1, tempfail@ 451,
 * x@external.invalid 554 relay denied, MAIL reject-sender@ 553 / tempfail-sender@ 451, Subject [reject-data] 550
 * after the data, MAIL reject-data@ 554 after the data with the transaction left open (RSET needed), SIZE 10485760.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted, Stream } from "effect"
import { Message, SmtpClient, type SmtpConnection } from "effect-smtp"
import * as fs from "node:fs"
import type { PostfixPeer } from "./peers.js"
import {
  listFiles,
  postfixMaildirNew,
  postfixPeer,
  skipReason,
  stripPostfixTrace,
  waitForNewFileContaining
} from "./peers.js"
import { recordingProxy } from "./proxy.js"
import { fromPromise, live, readLatin1, required, toLf, uniqueId } from "./support.js"

const HELO = "client.effect-smtp.test"
const ALICE = "alice@example.test"
const BOB = "bob@example.test"
const POSTMASTER = "postmaster@example.test"
const MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"] as const

/** Both ways of sending the message: BDAT (CHUNKING, the default with Postfix) and DATA (smtplib's). */
const DATA_PATHS = [
  { name: "BDAT", chunking: true, endCommand: "BDAT" },
  { name: "DATA", chunking: false, endCommand: "<end of data>" }
] as const

const peerOrThrow = (): PostfixPeer => required(postfixPeer(), "postfix")
const caOf = (peer: PostfixPeer) => fs.readFileSync(peer.ca, "utf8")

type Security = "tls" | "starttls" | "opportunistic" | "none"

const connectTo = (peer: PostfixPeer, port: number, security: Security, options: SmtpClient.Options = {}) =>
  SmtpClient.connect({
    host: peer.host,
    port,
    security,
    localHostname: HELO,
    ...(security === "none" ? {} : { tls: { ca: caOf(peer) } }),
    ...options
  })

/** An ASCII message with `token` in its Subject and Message-ID, leading-dot lines included; ends with CRLF. */
const messageWith = (token: string, subjectPrefix = "") =>
  `From: Alice <${ALICE}>\r\nTo: Bob <${BOB}>\r\nSubject: ${subjectPrefix}${token}\r\n` +
  `Message-ID: <${token}@effect-smtp.test>\r\n\r\n` +
  "Hello Bob,\r\n" +
  ".a line with a leading dot\r\n" +
  "..and one with two\r\n" +
  ".\r\n" +
  "(a lone dot above)\r\n"

/** The snapshot of a mailbox's new/ folder to take just before sending. */
const snapshot = (peer: PostfixPeer, address: string) => listFiles(postfixMaildirNew(peer, address))

/** Waits for the delivery holding `needle` in the mailbox of `address` and reads it (latin1). */
const delivered = (peer: PostfixPeer, address: string, before: ReadonlySet<string>, needle: string | Buffer) =>
  fromPromise(() => waitForNewFileContaining(postfixMaildirNew(peer, address), before, needle, 15_000)).pipe(
    Effect.map(readLatin1)
  )

/** The Received header Postfix prepended, unfolded. */
const receivedOf = (file: string): string => {
  const match = /^Received:.*(?:\n[ \t].*)*/m.exec(file)
  return match === null ? "" : match[0].replace(/\n[ \t]+/g, " ")
}

/** Postfix records the SASL login with its realm: `testuser` logs in as `testuser@example.test`. */
const authenticatedSender = (peer: PostfixPeer) =>
  new RegExp(`\\(Authenticated sender: ${peer.user}(?:@${peer.domain.replace(/\./g, "\\.")})?\\)`)

/** Sends `messageWith(token)` to bob and checks the delivered copy byte for byte; returns the delivered file. */
const sendToBob = (peer: PostfixPeer, smtp: SmtpConnection.Service, label: string, from = ALICE) =>
  Effect.gen(function*() {
    const token = uniqueId(label)
    const message = messageWith(token)
    const before = snapshot(peer, BOB)
    const refused = yield* smtp.sendmail(from, BOB, message)
    assert.deepStrictEqual(refused, {})
    const file = yield* delivered(peer, BOB, before, token)
    assert.strictEqual(stripPostfixTrace(file), toLf(message))
    return file
  })

describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "postfix interop", () => {
  describe("delivery byte for byte", () => {
    const modes = [
      { name: "plaintext on 2525 (security none)", port: (p: PostfixPeer) => p.ports.plain, security: "none" },
      {
        name: "STARTTLS on 2587 (security starttls)",
        port: (p: PostfixPeer) => p.ports.starttls,
        security: "starttls"
      },
      { name: "implicit TLS on 2465 (security tls)", port: (p: PostfixPeer) => p.ports.tls, security: "tls" }
    ] as const
    for (const mode of modes) {
      for (const dataPath of DATA_PATHS) {
        it.live(`${mode.name}, ${dataPath.name}: the Maildir file minus trace is the message sent`, () =>
          live(Effect.gen(function*() {
            const peer = peerOrThrow()
            const smtp = yield* connectTo(peer, mode.port(peer), mode.security, { chunking: dataPath.chunking })
            const encrypted = mode.security !== "none"
            assert.strictEqual(yield* smtp.isSecure, encrypted)
            const file = yield* sendToBob(peer, smtp, `bytes-${mode.security}`)
            const received = receivedOf(file)
            assert.match(file, /^Return-Path: <alice@example\.test>\n/)
            assert.include(received, `from ${HELO}`)
            assert.include(received, "for <bob@example.test>")
            if (encrypted) {
              assert.match(received, /\(using TLSv1\.[23] with cipher \S+/)
              assert.match(received, /with ESMTPS id/)
            } else {
              assert.notInclude(received, "using TLS")
              assert.match(received, /with ESMTP id/)
            }
          })))
      }
    }

    for (const dataPath of DATA_PATHS) {
      it.live(
        `${dataPath.name}: a 2 MB Stream message (odd chunk sizes, dots across chunk edges) is delivered intact`,
        () =>
          live(Effect.gen(function*() {
            const peer = peerOrThrow()
            const token = uniqueId("stream-2mb")
            const lines: Array<string> = []
            for (let i = 0, size = 0; size < 2 * 1024 * 1024; i++) {
              const line = `${i % 7 === 0 ? "." : ""}${i % 11 === 0 ? "." : ""}line ${i} ` +
                "abcdefghijklmnopqrstuvwxyz0123456789".repeat(1 + (i % 5)) + "\r\n"
              lines.push(line)
              size += line.length
            }
            const text = `Subject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\n\r\n${lines.join("")}`
            const bytes = new Uint8Array(Buffer.from(text, "latin1"))
            const chunks: Array<Uint8Array> = []
            for (let i = 0; i < bytes.length; i += 7919) chunks.push(bytes.subarray(i, i + 7919))
            const before = snapshot(peer, BOB)
            const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
            const refused = yield* smtp.sendmail(ALICE, BOB, Stream.fromIterable(chunks), { size: bytes.length })
            assert.deepStrictEqual(refused, {})
            const file = yield* delivered(peer, BOB, before, token)
            const got = stripPostfixTrace(file)
            assert.strictEqual(got.length, toLf(text).length)
            assert.isTrue(got === toLf(text), "the delivered message differs from the one sent")
          })),
        { timeout: 60_000 }
      )
    }

    for (const dataPath of DATA_PATHS) {
      it.live(`${dataPath.name}: bytes with lone LFs, a dot after a lone LF and no final CRLF are stored as sent`, () =>
        live(Effect.gen(function*() {
          // Postfix splits lines at LF, so the dot the client stuffs after a lone LF on the DATA path (as smtplib
          // does) is removed again, and BDAT sends it unstuffed: both store the same (compare aiosmtpd.test.ts)
          const peer = peerOrThrow()
          const token = uniqueId(`lone-lf-${dataPath.name}`)
          const input = `Subject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\n\r\n` +
            "a lone LF\n.then a dot after it\r\n.and after a CRLF\r\nno final CRLF"
          const before = snapshot(peer, BOB)
          const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
          yield* smtp.sendmail(ALICE, BOB, new Uint8Array(Buffer.from(input, "latin1")))
          const file = yield* delivered(peer, BOB, before, token)
          assert.strictEqual(stripPostfixTrace(file), `${toLf(input)}\n`)
        })))

      it.live(`${dataPath.name}: 8-bit UTF-8 bytes with BODY=8BITMIME arrive intact`, () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const token = uniqueId(`8bit-${dataPath.name}`)
          const input = Buffer.from(
            `Subject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\nMIME-Version: 1.0\r\n` +
              "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
              "Grüße, ça va ? ✓ 日本語\r\n",
            "utf8"
          )
          const before = snapshot(peer, BOB)
          const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
          assert.deepStrictEqual(
            yield* smtp.sendmail(ALICE, BOB, new Uint8Array(input), { mailOptions: ["BODY=8BITMIME"] }),
            {}
          )
          const file = yield* delivered(peer, BOB, before, token)
          assert.strictEqual(stripPostfixTrace(file), toLf(input.toString("latin1")))
        })))
    }
  })

  describe("session", () => {
    for (const dataPath of DATA_PATHS) {
      it.live(`${dataPath.name}: a Stream that fails half-way: the stream's error, the connection closed, nothing delivered`, () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const token = uniqueId(`stream-fails-${dataPath.name}`)
          const head = Buffer.from(`Subject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\n\r\n`, "latin1")
          const line = Buffer.from(`${"y".repeat(78)}\r\n`, "latin1")
          const body = Stream.make(new Uint8Array(head), new Uint8Array(Buffer.concat(Array(2000).fill(line)))).pipe(
            Stream.concat(Stream.fail("the source broke" as const))
          )
          const before = snapshot(peer, BOB)
          const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
          const error = yield* Effect.flip(smtp.sendmail(ALICE, BOB, body))
          assert.strictEqual(error, "the source broke")
          assert.isTrue(yield* smtp.isClosed, "a half-sent message can only be abandoned by closing")
          // Postfix delivers within milliseconds of accepting: give it a generous second
          yield* Effect.sleep("1 second")
          const dir = postfixMaildirNew(peer, BOB)
          const leaked = [...listFiles(dir)].filter((n) => !before.has(n) && readLatin1(`${dir}/${n}`).includes(token))
          assert.deepStrictEqual(leaked, [], "a truncated message was delivered")
        })))

      it.live(
        `${dataPath.name}: a 3 MB Uint8Array without a final CRLF is delivered intact`,
        () =>
          live(Effect.gen(function*() {
            const peer = peerOrThrow()
            const token = uniqueId(`bytes-3mb-${dataPath.name}`)
            const lines: Array<string> = [`Subject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\n\r\n`]
            for (let i = 0, size = 0; size < 3 * 1024 * 1024; i++) {
              const line = `${i % 3 === 0 ? "." : ""}${i} ${"0123456789abcdef".repeat(4)}\r\n`
              lines.push(line)
              size += line.length
            }
            const text = lines.join("") + "the end, no CRLF"
            const before = snapshot(peer, BOB)
            const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
            yield* smtp.sendmail(ALICE, BOB, new Uint8Array(Buffer.from(text, "latin1")))
            const got = stripPostfixTrace(yield* delivered(peer, BOB, before, token))
            assert.strictEqual(got.length, toLf(text).length + 1)
            assert.isTrue(got === `${toLf(text)}\n`, "the delivered message differs from the one sent")
          })),
        { timeout: 60_000 }
      )
    }

    it.live("four concurrent sendmail calls on one connection take turns and are all delivered", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.plain, "none")
        const files = yield* Effect.all(
          [0, 1, 2, 3].map((i) => sendToBob(peer, smtp, `concurrent-${i}`)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(files.length, 4)
      })))

    it.live(
      "DSN parameters reach Postfix: NOTIFY=SUCCESS brings a delivery report with the ENVID to the sender",
      () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const token = uniqueId("dsn")
          const message = messageWith(token)
          const before = { bob: snapshot(peer, BOB), alice: snapshot(peer, ALICE) }
          const smtp = yield* connectTo(peer, peer.ports.plain, "none")
          yield* smtp.sendmail(ALICE, BOB, message, {
            mailOptions: ["RET=HDRS", `ENVID=${token}`],
            rcptOptions: ["NOTIFY=SUCCESS", `ORCPT=rfc822;${BOB}`]
          })
          assert.strictEqual(stripPostfixTrace(yield* delivered(peer, BOB, before.bob, token)), toLf(message))
          const report = yield* delivered(peer, ALICE, before.alice, `Original-Envelope-Id: ${token}`)
          assert.match(report, /^Content-Type: multipart\/report; report-type=delivery-status;/m)
          assert.match(report, /^Original-Recipient: rfc822; ?bob@example\.test$/m)
          assert.match(report, /^Action: delivered$/m)
        })),
      { timeout: 30_000 }
    )

    it.live("the other commands: NOOP, VRFY, RSET, HELP, an unknown verb, QUIT", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.plain, "none")
        assert.strictEqual(smtp.greeting.code, 220)
        assert.include(smtp.greeting.text, "ESMTP Postfix")
        assert.strictEqual((yield* smtp.noop).code, 250)
        assert.strictEqual((yield* smtp.verify(BOB)).code, 252)
        assert.strictEqual((yield* smtp.verify("nobody@example.test")).code, 550)
        assert.strictEqual((yield* smtp.rset).code, 250)
        assert.strictEqual((yield* smtp.docmd("XYZZY")).code, 500)
        assert.strictEqual((yield* smtp.quit).code, 221)
        assert.isTrue(yield* smtp.isClosed)
      })))

    it.live("starttls() by hand on 2587, then login and send", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.starttls, "none")
        assert.isFalse(yield* smtp.isSecure)
        const reply = yield* smtp.starttls({ ca: caOf(peer) })
        assert.strictEqual(reply.code, 220)
        assert.isTrue(yield* smtp.isSecure)
        yield* smtp.login(peer.user, Redacted.make(peer.password), { mechanisms: ["SCRAM-SHA-256"] })
        const received = receivedOf(yield* sendToBob(peer, smtp, "manual-starttls"))
        assert.match(received, authenticatedSender(peer))
        assert.match(received, /\(using TLSv1\.[23] with cipher/)
      })))
  })

  describe("international and MIME", () => {
    it.live("SMTPUTF8: a non-ASCII local part (josé@catchall.test) lands in the catch-all, Received says UTF8SMTP", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const token = uniqueId("smtputf8")
        const raw = Buffer.from(
          `From: Alice <${ALICE}>\r\nTo: José <josé@${peer.catchallDomain}>\r\nSubject: Olá ${token}\r\n` +
            `Message-ID: <${token}@effect-smtp.test>\r\n\r\nOlá, José!\r\n`,
          "utf8"
        )
        const message = yield* Message.parse(new Uint8Array(raw))
        const dir = postfixMaildirNew(peer, `x@${peer.catchallDomain}`)
        const before = listFiles(dir)
        const smtp = yield* connectTo(peer, peer.ports.plain, "none")
        const refused = yield* smtp.sendMessage(message)
        assert.deepStrictEqual(refused, {})
        assert.isTrue(yield* smtp.hasExtn("smtputf8"))
        const file = yield* fromPromise(() => waitForNewFileContaining(dir, before, token, 15_000)).pipe(
          Effect.map(readLatin1)
        )
        assert.strictEqual(stripPostfixTrace(file), toLf(raw.toString("latin1")))
        const received = Buffer.from(receivedOf(file), "latin1").toString("utf8")
        assert.match(received, /with UTF8SMTP id/)
        assert.include(received, `for <josé@${peer.catchallDomain}>`)
      })))

    it.live("sendMessage of a parsed Stream message: Bcc recipients get it, the Bcc header is not transmitted", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const token = uniqueId("parse-stream")
        const head = `From: Alice <${ALICE}>\r\nTo: Bob <${BOB}>\r\nBcc: ${POSTMASTER}\r\nSubject: ${token}\r\n` +
          `Message-ID: <${token}@effect-smtp.test>\r\n\r\n`
        const bodyText = Array.from({ length: 5000 }, (_, i) => `${i % 4 === 0 ? "." : ""}body line ${i}\r\n`).join("")
        const all = Buffer.from(head + bodyText, "latin1")
        const chunks: Array<Uint8Array> = []
        for (let i = 0; i < all.length; i += 4093) chunks.push(new Uint8Array(all.subarray(i, i + 4093)))
        const message = yield* Message.parseStream(Stream.fromIterable(chunks))
        const before = { bob: snapshot(peer, BOB), postmaster: snapshot(peer, POSTMASTER) }
        const smtp = yield* connectTo(peer, peer.ports.plain, "none")
        assert.deepStrictEqual(yield* smtp.sendMessage(message), {})
        const expected = toLf(head.replace(`Bcc: ${POSTMASTER}\r\n`, "") + bodyText)
        assert.strictEqual(stripPostfixTrace(yield* delivered(peer, BOB, before.bob, token)), expected)
        assert.strictEqual(stripPostfixTrace(yield* delivered(peer, POSTMASTER, before.postmaster, token)), expected)
      })))

    it.live("a composed MIME message (text, html, non-ASCII subject, attachment, cc, bcc) reaches every mailbox", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const token = uniqueId("mime")
        const attachment = new Uint8Array(1024).map((_, i) => (i * 37) % 256)
        const message = yield* Message.make({
          from: { name: "Alice Ærøskøbing", address: ALICE },
          to: { name: "Bob", address: BOB },
          cc: ALICE,
          bcc: { name: "Hidden Postmaster", address: POSTMASTER },
          subject: `Grüße aus Köln ✓ ${token}`,
          text: "Hello Bob,\n.a leading dot in the text\nça va ?\n",
          html: "<p>Hello <b>Bob</b>, ça va ?</p>\n",
          attachments: [
            { filename: "data.bin", content: attachment },
            { filename: "notes — été.txt", content: "line one\nline two\n" }
          ],
          messageId: `${token}@effect-smtp.test`
        })
        assert.isTrue(Option.isSome(Message.get(message, "Bcc")))
        const expected = toLf(Buffer.from(yield* Message.toBytes(message)).toString("latin1"))
        assert.notMatch(expected, /^Bcc:/im)
        const recipients = [BOB, ALICE, POSTMASTER]
        const before = new Map(recipients.map((r) => [r, snapshot(peer, r)] as const))
        const smtp = yield* connectTo(peer, peer.ports.starttls, "starttls")
        const refused = yield* smtp.sendMessage(message)
        assert.deepStrictEqual(refused, {})
        for (const r of recipients) {
          const file = yield* delivered(peer, r, before.get(r)!, token)
          assert.strictEqual(stripPostfixTrace(file), expected, `copy delivered to ${r}`)
          assert.notMatch(file, /^Bcc:/im, `no Bcc in the copy delivered to ${r}`)
          assert.match(file, new RegExp(`^Delivered-To: ${r.replace(/\./g, "\\.")}$`, "m"))
        }
      })))
  })

  for (const dataPath of DATA_PATHS) {
    describe(`refusals (${dataPath.name})`, () => {
      const plain = (peer: PostfixPeer) => connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
      const viaProxy = (proxy: { readonly host: string; readonly port: number }) =>
        SmtpClient.connect({
          host: proxy.host,
          port: proxy.port,
          security: "none",
          localHostname: HELO,
          chunking: dataPath.chunking
        })

      it.live("one refused recipient (nobody@) among three: its 550 is reported, the others get the message", () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const token = uniqueId("one-refused")
          const message = messageWith(token)
          const before = { bob: snapshot(peer, BOB), alice: snapshot(peer, ALICE) }
          const smtp = yield* plain(peer)
          const refused = yield* smtp.sendmail(ALICE, [BOB, "nobody@example.test", ALICE], message)
          assert.deepStrictEqual(Object.keys(refused), ["nobody@example.test"])
          const reply = refused["nobody@example.test"]
          assert.strictEqual(reply.code, 550)
          assert.strictEqual(reply.enhancedCode, "5.1.1")
          assert.include(reply.text, "User unknown in virtual mailbox table")
          assert.strictEqual(stripPostfixTrace(yield* delivered(peer, BOB, before.bob, token)), toLf(message))
          assert.strictEqual(stripPostfixTrace(yield* delivered(peer, ALICE, before.alice, token)), toLf(message))
        })))

      it.live("every recipient refused is SmtpRecipientsRefused with each reply; the session still sends", () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const smtp = yield* plain(peer)
          const error = yield* Effect.flip(
            smtp.sendmail(
              ALICE,
              ["nobody@example.test", "reject@example.test", "tempfail@example.test", "x@external.invalid"],
              messageWith(uniqueId("all-refused"))
            )
          )
          assert.strictEqual(error._tag, "SmtpRecipientsRefused")
          if (error._tag === "SmtpRecipientsRefused") {
            assert.deepStrictEqual(
              Object.fromEntries(
                Object.entries(error.recipients).map(([k, v]) => [k, `${v.code} ${v.enhancedCode}`])
              ),
              {
                "nobody@example.test": "550 5.1.1",
                "reject@example.test": "550 5.7.1",
                "tempfail@example.test": "451 4.3.0",
                "x@external.invalid": "554 5.7.1"
              }
            )
            assert.include(error.recipients["x@external.invalid"].text, "Relay access denied")
          }
          yield* sendToBob(peer, smtp, "after-all-refused")
        })))

      for (
        const [sender, code, enhanced] of [["reject-sender", 553, "5.7.1"], ["tempfail-sender", 451, "4.3.0"]] as const
      ) {
        it.live(`sender refused at MAIL (${sender}@) is SmtpSenderRefused ${code}; the session still sends`, () =>
          live(Effect.gen(function*() {
            const peer = peerOrThrow()
            const smtp = yield* plain(peer)
            const from = `${sender}@example.test`
            const error = yield* Effect.flip(smtp.sendmail(from, BOB, messageWith(uniqueId(sender))))
            assert.strictEqual(error._tag, "SmtpSenderRefused")
            if (error._tag === "SmtpSenderRefused") {
              assert.strictEqual(error.code, code)
              assert.strictEqual(error.enhancedCode, enhanced)
              assert.strictEqual(error.sender, from)
              assert.strictEqual(error.command, "MAIL")
            }
            yield* sendToBob(peer, smtp, `after-${sender}`)
          })))
      }

      it.live("content rejected ([reject-data] in Subject) is SmtpDataError 550; the next sendmail is delivered", () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const token = uniqueId("reject-data-subject")
          const before = snapshot(peer, BOB)
          const smtp = yield* plain(peer)
          const error = yield* Effect.flip(
            smtp.sendmail(ALICE, BOB, messageWith(token, "[reject-data] "))
          )
          assert.strictEqual(error._tag, "SmtpDataError")
          if (error._tag === "SmtpDataError") {
            assert.strictEqual(error.code, 550)
            assert.strictEqual(error.enhancedCode, "5.7.1")
            assert.strictEqual(error.command, dataPath.endCommand)
          }
          yield* sendToBob(peer, smtp, "after-reject-data-subject")
          assert.strictEqual(
            [...listFiles(postfixMaildirNew(peer, BOB))].filter((n) => !before.has(n)).some((n) =>
              readLatin1(`${postfixMaildirNew(peer, BOB)}/${n}`).includes(token)
            ),
            false,
            "the rejected message was not delivered"
          )
        })))

      it.live("end-of-data rejection that leaves Postfix's transaction open (MAIL reject-data@): RSET, then delivery", () =>
        live(Effect.gen(function*() {
          // Postfix 3.7 does not reset the transaction after smtpd_end_of_data_restrictions reject: without RSET the
          // next MAIL gets "503 5.5.1 Error: nested MAIL command". The proxy shows the client's RSET.
          const peer = peerOrThrow()
          const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain })
          const smtp = yield* viaProxy(proxy)
          const token = uniqueId("eod")
          const error = yield* Effect.flip(smtp.sendmail("reject-data@example.test", BOB, messageWith(token)))
          assert.strictEqual(error._tag, "SmtpDataError")
          if (error._tag === "SmtpDataError") {
            assert.strictEqual(error.code, 554)
            assert.strictEqual(error.enhancedCode, "5.7.1")
            assert.strictEqual(error.command, dataPath.endCommand)
          }
          yield* sendToBob(peer, smtp, "after-eod-reject")
          const sent = proxy.clientText()
          const afterRejected = sent.slice(sent.indexOf(`${token}@effect-smtp.test>`))
          assert.match(afterRejected, /\r\nRSET\r\nMAIL FROM:<alice@example\.test>/)
        })))

      it.live("a size above Postfix's SIZE: SmtpMessageTooLarge before MAIL, nothing written, the next send works", () =>
        live(Effect.gen(function*() {
          // RFC 1870 §6: a message known to be too large is not offered (smtplib sends and lets Postfix refuse)
          const peer = peerOrThrow()
          const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain })
          const smtp = yield* viaProxy(proxy)
          assert.deepStrictEqual(yield* smtp.extnParams("SIZE"), Option.some(String(peer.size)))
          const error = yield* Effect.flip(
            smtp.sendmail(ALICE, BOB, messageWith(uniqueId("size")), { size: peer.size + 1 })
          )
          assert.strictEqual(error._tag, "SmtpMessageTooLarge")
          if (error._tag === "SmtpMessageTooLarge") {
            assert.deepStrictEqual([error.size, error.limit], [peer.size + 1, peer.size])
          }
          assert.notInclude(proxy.clientText(), "MAIL FROM")
          yield* sendToBob(peer, smtp, "after-size")
        })))

      it.live(
        "typed DSN: Postfix takes RET, ENVID, NOTIFY and ORCPT; its report carries the ENVID and the ORCPT",
        () =>
          live(Effect.gen(function*() {
            const peer = peerOrThrow()
            const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain })
            const smtp = yield* viaProxy(proxy)
            const token = uniqueId("typed-dsn")
            const original = "bob+original@example.test"
            const before = { bob: snapshot(peer, BOB), alice: snapshot(peer, ALICE) }
            const refused = yield* smtp.sendmail(ALICE, BOB, messageWith(token), {
              dsn: { ret: "HDRS", envid: token, notify: ["SUCCESS"], orcpt: { [BOB]: original } }
            })
            assert.deepStrictEqual(refused, {})
            yield* delivered(peer, BOB, before.bob, token)
            const sent = proxy.clientText()
            assert.include(sent, `RET=HDRS ENVID=${token}`)
            assert.include(sent, `RCPT TO:<${BOB}> NOTIFY=SUCCESS ORCPT=rfc822;bob+2Boriginal@example.test`)
            const report = yield* delivered(peer, ALICE, before.alice, `Original-Envelope-Id: ${token}`)
            assert.match(report, /^Original-Recipient: rfc822; ?bob\+original@example\.test$/m)
            assert.match(report, /^Action: delivered$/m)
          })),
        { timeout: 30_000 }
      )

      it.live(
        "a Stream message over the limit with no size given: SmtpDataError 552 after the data; the session goes on",
        () =>
          live(Effect.gen(function*() {
            const peer = peerOrThrow()
            const line = new Uint8Array(Buffer.from("x".repeat(998) + "\r\n", "latin1"))
            const chunk = new Uint8Array(line.length * 1000)
            for (let i = 0; i < 1000; i++) chunk.set(line, i * line.length)
            const count = Math.ceil((peer.size + 1) / chunk.length)
            const body = Stream.concat(
              Stream.succeed(new Uint8Array(Buffer.from("Subject: too big\r\n\r\n", "latin1"))),
              Stream.repeatValue(chunk).pipe(Stream.take(count))
            )
            const smtp = yield* plain(peer)
            const error = yield* Effect.flip(smtp.sendmail(ALICE, BOB, body))
            assert.strictEqual(error._tag, "SmtpDataError")
            if (error._tag === "SmtpDataError") {
              assert.strictEqual(error.code, 552)
              assert.strictEqual(error.enhancedCode, "5.3.4")
              assert.strictEqual(error.command, dataPath.endCommand)
            }
            yield* sendToBob(peer, smtp, "after-oversize")
          })),
        { timeout: 60_000 }
      )
    })
  }

  describe("PIPELINING", () => {
    for (const dataPath of DATA_PATHS) {
      it.live(`advertised and used (${dataPath.name}): MAIL and every RCPT in the first flight, copies intact`, () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const token = uniqueId(`pipelined-${dataPath.name}`)
          const message = messageWith(token)
          const before = { bob: snapshot(peer, BOB), alice: snapshot(peer, ALICE) }
          const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain })
          const smtp = yield* SmtpClient.connect({
            host: proxy.host,
            port: proxy.port,
            security: "none",
            localHostname: HELO,
            chunking: dataPath.chunking
          })
          const refused = yield* smtp.sendmail(ALICE, [BOB, "nobody@example.test", ALICE], message)
          assert.deepStrictEqual(Object.keys(refused), ["nobody@example.test"])
          assert.isTrue(yield* smtp.hasExtn("PIPELINING"))
          assert.isTrue(yield* smtp.hasExtn("CHUNKING"))
          const flights = proxy.clientFlights()
          assert.strictEqual(flights[0], `EHLO ${HELO}\r\n`)
          const envelope = `MAIL FROM:<${ALICE}> SIZE=${message.length}\r\nRCPT TO:<${BOB}>\r\n` +
            `RCPT TO:<nobody@example.test>\r\nRCPT TO:<${ALICE}>\r\n`
          if (dataPath.chunking) {
            // RFC 3030 with PIPELINING: the whole transaction in one write, one round trip
            assert.strictEqual(flights[1], `${envelope}BDAT ${message.length} LAST\r\n${message}`)
          } else {
            // RFC 2920: DATA closes the pipelined group; the data follows the 354
            assert.strictEqual(flights[1], `${envelope}DATA\r\n`)
            assert.strictEqual(flights[2], `${message.replace(/^\./gm, "..")}.\r\n`)
          }
          assert.strictEqual(stripPostfixTrace(yield* delivered(peer, BOB, before.bob, token)), toLf(message))
          assert.strictEqual(stripPostfixTrace(yield* delivered(peer, ALICE, before.alice, token)), toLf(message))
        })))
    }

    it.live("PIPELINING hidden by the proxy: sendmail waits for each reply (one flight per command), same copy", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const token = uniqueId("unpipelined-sendmail")
        const message = messageWith(token)
        const before = snapshot(peer, BOB)
        const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain }, {
          rewriteServer: (data) => Buffer.from(data.toString("latin1").replace("250-PIPELINING\r\n", ""), "latin1")
        })
        const smtp = yield* SmtpClient.connect({
          host: proxy.host,
          port: proxy.port,
          security: "none",
          localHostname: HELO
        })
        const refused = yield* smtp.sendmail(ALICE, [BOB, "nobody@example.test"], message)
        assert.deepStrictEqual(Object.keys(refused), ["nobody@example.test"])
        assert.isFalse(yield* smtp.hasExtn("PIPELINING"))
        assert.isTrue(yield* smtp.hasExtn("CHUNKING"))
        assert.strictEqual(stripPostfixTrace(yield* delivered(peer, BOB, before, token)), toLf(message))
        // BDAT is used only with PIPELINING: without it, DATA
        assert.deepStrictEqual(proxy.clientFlights().slice(0, 6), [
          `EHLO ${HELO}\r\n`,
          `MAIL FROM:<${ALICE}> SIZE=${message.length}\r\n`,
          `RCPT TO:<${BOB}>\r\n`,
          "RCPT TO:<nobody@example.test>\r\n",
          "DATA\r\n",
          `${message.replace(/^\./gm, "..")}.\r\n`
        ])
      })))

    it.live("the same transaction command by command (mail, rcpt, data): one round trip each, the same copy", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const token = uniqueId("unpipelined")
        const message = messageWith(token)
        const before = snapshot(peer, BOB)
        const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain })
        const smtp = yield* SmtpClient.connect({
          host: proxy.host,
          port: proxy.port,
          security: "none",
          localHostname: HELO
        })
        yield* smtp.ehloOrHeloIfNeeded
        assert.strictEqual((yield* smtp.mail(ALICE)).code, 250)
        assert.strictEqual((yield* smtp.rcpt("nobody@example.test")).code, 550)
        assert.strictEqual((yield* smtp.rcpt(BOB)).code, 250)
        const end = yield* smtp.data(message)
        assert.strictEqual(end.code, 250)
        assert.strictEqual(stripPostfixTrace(yield* delivered(peer, BOB, before, token)), toLf(message))
        const flights = proxy.clientFlights()
        assert.deepStrictEqual(flights.slice(0, 5), [
          `EHLO ${HELO}\r\n`,
          `MAIL FROM:<${ALICE}>\r\n`,
          "RCPT TO:<nobody@example.test>\r\n",
          `RCPT TO:<${BOB}>\r\n`,
          "DATA\r\n"
        ])
      })))
  })

  describe("AUTH", () => {
    for (const mechanism of MECHANISMS) {
      it.live(`STARTTLS on 2587, AUTH ${mechanism}, send: Received shows the authenticated sender`, () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const smtp = yield* connectTo(peer, peer.ports.starttls, "starttls")
          assert.isTrue(yield* smtp.isSecure)
          const reply = yield* smtp.login(peer.user, Redacted.make(peer.password), { mechanisms: [mechanism] })
          assert.strictEqual(reply.code, 235)
          assert.isTrue(yield* smtp.isAuthenticated)
          const received = receivedOf(yield* sendToBob(peer, smtp, `auth-${mechanism}`))
          assert.match(received, authenticatedSender(peer))
          assert.match(received, /with ESMTPSA id/)
        })))
    }

    // LOGIN sends the user name with AUTH by default (as smtplib): this covers the bare AUTH LOGIN and its prompts
    for (const mechanism of ["PLAIN", "LOGIN", "SCRAM-SHA-256"] as const) {
      it.live(`AUTH ${mechanism} without an initial response (initialResponseOk: false)`, () =>
        live(Effect.gen(function*() {
          const peer = peerOrThrow()
          const smtp = yield* connectTo(peer, peer.ports.starttls, "starttls")
          const reply = yield* smtp.login(peer.user, Redacted.make(peer.password), {
            mechanisms: [mechanism],
            initialResponseOk: false
          })
          assert.strictEqual(reply.code, 235)
          assert.match(receivedOf(yield* sendToBob(peer, smtp, `auth-no-ir-${mechanism}`)), authenticatedSender(peer))
        })))
    }

    it.live("loginOAuth2 where Postfix offers no OAuth mechanism is SmtpNotSupportedError; nothing was sent", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        let calls = 0
        const smtp = yield* connectTo(peer, peer.ports.starttls, "starttls")
        const error = yield* Effect.flip(smtp.loginOAuth2(
          peer.user,
          Effect.sync(() => {
            calls++
            return Redacted.make("token")
          })
        ))
        assert.strictEqual(error._tag, "SmtpNotSupportedError")
        assert.strictEqual(calls, 0)
      })))

    it.live("every mechanism in peer.json is one the client knows", () =>
      Effect.sync(() => {
        const peer = peerOrThrow()
        assert.sameMembers(peer.mechanisms.split(/\s+/), [...MECHANISMS])
      }))

    it.live("a wrong password: SmtpAuthenticationError 535 5.7.8 naming every mechanism tried; then login works", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.starttls, "starttls")
        const error = yield* Effect.flip(smtp.login(peer.user, Redacted.make("not-the-password")))
        assert.strictEqual(error._tag, "SmtpAuthenticationError")
        if (error._tag === "SmtpAuthenticationError") {
          assert.strictEqual(error.code, 535)
          assert.strictEqual(error.enhancedCode, "5.7.8")
          assert.deepStrictEqual(error.mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"])
          assert.notInclude(error.message, "not-the-password")
        }
        assert.isFalse(yield* smtp.isAuthenticated)
        assert.strictEqual((yield* smtp.login(peer.user, Redacted.make(peer.password))).code, 235)
      })))

    it.live("2587 before STARTTLS offers no AUTH (smtpd_tls_auth_only): login is SmtpNotSupportedError", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.starttls, "none")
        const error = yield* Effect.flip(smtp.login(peer.user, Redacted.make(peer.password)))
        assert.strictEqual(error._tag, "SmtpNotSupportedError")
        assert.isTrue(yield* smtp.hasExtn("STARTTLS"))
      })))

    it.live("submission 2588: STARTTLS, login, send; Received shows the authenticated sender", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.submission, "starttls")
        yield* smtp.login(peer.user, Redacted.make(peer.password))
        const received = receivedOf(yield* sendToBob(peer, smtp, "submission"))
        assert.match(received, authenticatedSender(peer))
        assert.match(received, /\(using TLSv1\.[23] with cipher/)
      })))

    it.live("submission 2588 without AUTH: RCPT refused (554 access denied) is SmtpRecipientsRefused", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.submission, "starttls")
        const error = yield* Effect.flip(smtp.sendmail(ALICE, BOB, messageWith(uniqueId("no-auth"))))
        assert.strictEqual(error._tag, "SmtpRecipientsRefused")
        if (error._tag === "SmtpRecipientsRefused") assert.strictEqual(error.recipients[BOB].code, 554)
      })))

    it.live("submission 2588 in plaintext: MAIL refused 530 (STARTTLS first) is SmtpSenderRefused", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.submission, "none")
        const error = yield* Effect.flip(smtp.sendmail(ALICE, BOB, messageWith(uniqueId("plain-submission"))))
        assert.strictEqual(error._tag, "SmtpSenderRefused")
        if (error._tag === "SmtpSenderRefused") assert.strictEqual(error.code, 530)
      })))
  })

  describe("TLS policy and certificates", () => {
    it.live("security starttls against 2525 (no STARTTLS): SmtpTlsError downgrade from connect, only EHLO sent", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const proxy = yield* recordingProxy({ host: peer.host, port: peer.ports.plain })
        const error = yield* Effect.flip(
          Effect.scoped(
            SmtpClient.connect({
              host: proxy.host,
              port: proxy.port,
              security: "starttls",
              tls: { ca: caOf(peer) },
              localHostname: HELO
            })
          )
        )
        assert.strictEqual(error._tag, "SmtpTlsError")
        if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "downgrade")
        assert.match(proxy.clientText(), new RegExp(`^EHLO ${HELO.replace(/\./g, "\\.")}\\r\\n(?:QUIT\\r\\n)?$`))
      })))

    it.live("security opportunistic: plaintext on 2525, TLS on 2587", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const plain = yield* connectTo(peer, peer.ports.plain, "opportunistic")
        assert.isFalse(yield* plain.isSecure)
        const upgraded = yield* connectTo(peer, peer.ports.starttls, "opportunistic")
        assert.isTrue(yield* upgraded.isSecure)
        assert.include(receivedOf(yield* sendToBob(peer, upgraded, "opportunistic")), "using TLS")
      })))

    it.live("implicit TLS to 127.0.0.1:2465 without the test CA: SmtpTlsError untrusted", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const error = yield* Effect.flip(
          SmtpClient.connect({ host: peer.host, port: peer.ports.tls, security: "tls", localHostname: HELO })
        )
        assert.strictEqual(error._tag, "SmtpTlsError")
        if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "untrusted")
      })))

    it.live("implicit TLS with the CA but servername wrong.example: SmtpTlsError hostname-mismatch", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const error = yield* Effect.flip(
          connectTo(peer, peer.ports.tls, "tls", { tls: { ca: caOf(peer), servername: "wrong.example" } })
        )
        assert.strictEqual(error._tag, "SmtpTlsError")
        if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "hostname-mismatch")
      })))

    it.live("implicit TLS with servername mx.example.test (a SAN of the certificate) is trusted", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const smtp = yield* connectTo(peer, peer.ports.tls, "tls", {
          tls: { ca: caOf(peer), servername: "mx.example.test" }
        })
        assert.isTrue(yield* smtp.isSecure)
        assert.strictEqual((yield* smtp.noop).code, 250)
      })))

    it.live("STARTTLS on 2587 without the test CA: SmtpTlsError untrusted from connect", () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const error = yield* Effect.flip(
          SmtpClient.connect({ host: peer.host, port: peer.ports.starttls, security: "starttls", localHostname: HELO })
        )
        assert.strictEqual(error._tag, "SmtpTlsError")
        if (error._tag === "SmtpTlsError") assert.strictEqual(error.reason, "untrusted")
      })))
  })
})

describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "postfix batch interop", () => {
  for (const dataPath of DATA_PATHS) {
    it.live(`sendBatch, ${dataPath.name}: delivered, refused at RCPT, refused at MAIL, content refused, delivered`, () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const tokens = Array.from({ length: 5 }, (_, i) => uniqueId(`batch-${dataPath.name}-${i}`))
        const before = snapshot(peer, BOB)
        const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
        const items: ReadonlyArray<SmtpConnection.BatchItem> = [
          { from: ALICE, to: BOB, message: messageWith(tokens[0]) },
          { from: ALICE, to: "nobody@example.test", message: messageWith(tokens[1]) },
          { from: "reject-sender@example.test", to: BOB, message: messageWith(tokens[2]) },
          { from: ALICE, to: BOB, message: messageWith(tokens[3], "[reject-data] ") },
          { from: ALICE, to: BOB, message: messageWith(tokens[4]) }
        ]
        const outcomes = Array.from(yield* Stream.runCollect(smtp.sendBatch(items)))
        assert.deepStrictEqual(
          outcomes.map((o) => [o.index, o._tag, o._tag === "Refused" ? o.error._tag : ""]),
          [
            [0, "Sent", ""],
            [1, "Refused", "SmtpRecipientsRefused"],
            [2, "Refused", "SmtpSenderRefused"],
            [3, "Refused", "SmtpDataError"],
            [4, "Sent", ""]
          ]
        )
        for (const i of [0, 4]) {
          const file = yield* delivered(peer, BOB, before, tokens[i])
          assert.strictEqual(stripPostfixTrace(file), toLf(messageWith(tokens[i])))
        }
        // the session goes on after the batch
        yield* sendToBob(peer, smtp, `after-batch-${dataPath.name}`)
      })))
  }
})

describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "postfix verify", () => {
  it.live("verify on the STARTTLS port with AUTH: the report, then a wrong password is the usual error", () =>
    live(Effect.gen(function*() {
      const peer = peerOrThrow()
      const options = {
        host: peer.host,
        port: peer.ports.starttls,
        security: "starttls",
        tls: { ca: caOf(peer) },
        localHostname: HELO
      } as const
      const report = yield* SmtpClient.verify({
        ...options,
        auth: { user: peer.user, password: Redacted.make(peer.password) }
      })
      assert.strictEqual(report.greeting.code, 220)
      assert.isTrue(report.authenticated)
      assert.isTrue(report.extensions.has("pipelining"))
      assert.isTrue(report.extensions.has("chunking"))
      assert.isDefined(report.sizeLimit)
      assert.includeMembers([...report.authMechanisms], ["PLAIN", "LOGIN"])
      assert.match(report.tls?.protocol ?? "", /^TLSv1\.[23]$/)
      assert.isTrue(report.tls?.authorized)
      assert.isTrue((report.tls?.certificate?.validTo.getTime() ?? 0) > Date.now())
      const error = yield* Effect.flip(
        SmtpClient.verify({ ...options, auth: { user: peer.user, password: Redacted.make("not-the-password") } })
      )
      assert.strictEqual(error._tag, "SmtpAuthenticationError")
    })))
})

describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "postfix send result", () => {
  for (const dataPath of DATA_PATHS) {
    it.live(`send, ${dataPath.name}: the result carries Postfix's queue id, found again in the delivered copy`, () =>
      live(Effect.gen(function*() {
        const peer = peerOrThrow()
        const token = uniqueId(`send-result-${dataPath.name}`)
        const before = snapshot(peer, BOB)
        const smtp = yield* connectTo(peer, peer.ports.plain, "none", { chunking: dataPath.chunking })
        const result = yield* smtp.send({ from: ALICE, to: [BOB, "nobody@example.test"], message: messageWith(token) })
        assert.strictEqual(result.messageId, `<${token}@effect-smtp.test>`)
        assert.deepStrictEqual(result.accepted, [BOB])
        assert.deepStrictEqual(Object.keys(result.refused), ["nobody@example.test"])
        assert.isString(result.queueId)
        assert.include(result.reply.text, `queued as ${result.queueId}`)
        // the Received header Postfix wrote names the same queue id
        const file = yield* delivered(peer, BOB, before, token)
        assert.include(receivedOf(file), `id ${result.queueId}`)
      })))
  }
})
