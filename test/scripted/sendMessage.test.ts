import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Stream } from "effect"
import { Message, SmtpClient } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const ehlo = (utf8: boolean) => `250-mx.test\r\n250-PIPELINING\r\n${utf8 ? "250-SMTPUTF8\r\n" : ""}250 8BITMIME`

const parse = (text: string) => Either.getOrThrow(Message.parse(text))

/** Sends `message` and returns what the client wrote after EHLO, and the result. */
const run = <E>(message: Message.Message<E>, options: {
  readonly recipients: number
  readonly utf8?: boolean
  readonly from?: string
  readonly to?: ReadonlyArray<string>
}) =>
  Effect.gen(function*() {
    // no recipients: the message is refused before anything is sent after EHLO
    const steps: Array<ScriptedTransport.Step> = options.recipients === 0 ?
      [{ expect: "EHLO client.test", reply: ehlo(options.utf8 ?? false) }, { expect: "QUIT", reply: "221 bye" }] :
      [
        { expect: "EHLO client.test", reply: ehlo(options.utf8 ?? false) },
        { reply: "250 ok" },
        ...Array.from({ length: options.recipients }, () => ({ reply: "250 ok" })),
        { expect: "DATA", reply: "354 go" },
        { reply: "250 queued" },
        { expect: "QUIT", reply: "221 bye" }
      ]
    const server = yield* ScriptedTransport.make({ steps })
    const result = yield* Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none" })
      return yield* smtp.sendMessage(message, {
        ...(options.from === undefined ? {} : { from: options.from }),
        ...(options.to === undefined ? {} : { to: options.to })
      })
    })).pipe(Effect.provide(server.layer), Effect.either)
    return { result, written: server.written(0), units: server.connection(0).units() }
  })

const body = "\r\nHello\r\n"

describe("sendMessage: smtplib's send_message envelope rules, byte-exact", () => {
  it.scoped("From gives the sender; To, Bcc, Cc give the recipients (smtplib's order); Bcc not transmitted", () =>
    Effect.gen(function*() {
      const message = parse(
        "From: Ann <ann@x.test>\r\nTo: bob@x.test\r\nCc: Carl <carl@x.test>\r\nBcc: dee@x.test\r\nSubject: s\r\n" + body
      )
      const { result, written } = yield* run(message, { recipients: 3 })
      assert.deepStrictEqual(Either.getOrThrow(result), {})
      const data = "From: Ann <ann@x.test>\r\nTo: bob@x.test\r\nCc: Carl <carl@x.test>\r\nSubject: s\r\n\r\nHello\r\n"
      assert.strictEqual(
        written,
        "EHLO client.test\r\n" +
          "MAIL FROM:<ann@x.test>\r\n" +
          "RCPT TO:<bob@x.test>\r\nRCPT TO:<dee@x.test>\r\nRCPT TO:<carl@x.test>\r\n" +
          "DATA\r\n" + data + ".\r\nQUIT\r\n"
      )
      assert.notInclude(written, "Bcc")
      assert.notInclude(written.slice(written.indexOf("DATA")), "dee@x.test")
    }))

  it.scoped("Sender wins over From", () =>
    Effect.gen(function*() {
      const message = parse("From: ann@x.test\r\nSender: sec@x.test\r\nTo: bob@x.test\r\n" + body)
      const { written } = yield* run(message, { recipients: 1 })
      assert.include(written, "MAIL FROM:<sec@x.test>\r\n")
    }))

  it.scoped("one Resent-* block replaces the regular headers; Resent-Bcc not transmitted", () =>
    Effect.gen(function*() {
      const message = parse(
        "From: ann@x.test\r\nTo: bob@x.test\r\n" +
          "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: fwd@x.test\r\nResent-To: eve@x.test\r\n" +
          "Resent-Bcc: hid@x.test\r\n" + body
      )
      const { result, written } = yield* run(message, { recipients: 2 })
      assert.isTrue(Either.isRight(result))
      assert.include(written, "MAIL FROM:<fwd@x.test>\r\nRCPT TO:<eve@x.test>\r\nRCPT TO:<hid@x.test>\r\nDATA\r\n")
      assert.notInclude(written, "bob@x.test>\r\n")
      assert.notInclude(written, "Resent-Bcc")
    }))

  it.scoped("two Resent-* blocks: SmtpInvalidInput and nothing sent after EHLO", () =>
    Effect.gen(function*() {
      const message = parse(
        "From: ann@x.test\r\nTo: bob@x.test\r\n" +
          "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: a@x.test\r\nResent-To: b@x.test\r\n" +
          "Resent-Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nResent-From: c@x.test\r\nResent-To: d@x.test\r\n" + body
      )
      const { result, written } = yield* run(message, { recipients: 0 })
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.strictEqual(result.left._tag, "SmtpInvalidInput")
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.scoped("cron mail to a local MTA: addresses without a domain are sent as smtplib sends them", () =>
    Effect.gen(function*() {
      const message = parse(
        "From: root (Cron Daemon)\r\nTo: root\r\nSubject: Cron <root@host> run-parts /etc/cron.hourly\r\n" + body
      )
      const { result, written } = yield* run(message, { recipients: 1 })
      assert.deepStrictEqual(Either.getOrThrow(result), {})
      assert.strictEqual(
        written,
        "EHLO client.test\r\n" +
          "MAIL FROM:<root>\r\n" +
          "RCPT TO:<root>\r\n" +
          "DATA\r\n" +
          "From: root (Cron Daemon)\r\nTo: root\r\nSubject: Cron <root@host> run-parts /etc/cron.hourly\r\n" +
          "\r\nHello\r\n.\r\nQUIT\r\n"
      )
    }))

  it.scoped("To: John, Dinsdale and Resent-To with a bare name: one RCPT each, as smtplib", () =>
    Effect.gen(function*() {
      const plain = yield* run(parse("From: Eric Idle <eric>\r\nTo: John, Dinsdale\r\n" + body), { recipients: 2 })
      assert.isTrue(Either.isRight(plain.result))
      assert.include(plain.written, "MAIL FROM:<eric>\r\nRCPT TO:<John>\r\nRCPT TO:<Dinsdale>\r\nDATA\r\n")
      const resent = yield* run(
        parse(
          "From: a@x.test\r\nTo: b@x.test\r\nResent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
            "Resent-From: Eric Idle <eric>\r\nResent-To: \"Idle, Eric\" <eric@x.test>, Jeff\r\n" + body
        ),
        { recipients: 2 }
      )
      assert.isTrue(Either.isRight(resent.result))
      assert.include(resent.written, "MAIL FROM:<eric>\r\nRCPT TO:<eric@x.test>\r\nRCPT TO:<Jeff>\r\nDATA\r\n")
    }))

  it.scoped("a To that cannot be an address: SmtpInvalidInput naming the header and position, nothing sent", () =>
    Effect.gen(function*() {
      const message = parse("From: ann@x.test\r\nTo: bob@x.test, Secret Name\r\n" + body)
      const { result, written } = yield* run(message, { recipients: 0 })
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "SmtpInvalidInput")
        assert.strictEqual(
          result.left.message,
          "The To header is not a valid address list (address 2: several words and no address)"
        )
      }
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.scoped("explicit from and to override the headers (Bcc still stripped)", () =>
    Effect.gen(function*() {
      const message = parse("From: ann@x.test\r\nTo: bob@x.test\r\nBcc: dee@x.test\r\n" + body)
      const { written } = yield* run(message, { recipients: 1, from: "bounce@x.test", to: ["ops@x.test"] })
      assert.include(written, "MAIL FROM:<bounce@x.test>\r\nRCPT TO:<ops@x.test>\r\nDATA\r\n")
      assert.notInclude(written, "Bcc")
    }))

  it.scoped("a non-ASCII address with SMTPUTF8: SMTPUTF8 and BODY=8BITMIME added, UTF-8 on the wire", () =>
    Effect.gen(function*() {
      const message = parse("From: josé@x.test\r\nTo: bob@x.test\r\nSubject: olá\r\n" + body)
      const { result, written } = yield* run(message, { recipients: 1, utf8: true })
      assert.isTrue(Either.isRight(result))
      assert.include(written, "MAIL FROM:<josé@x.test> SMTPUTF8 BODY=8BITMIME\r\n")
      assert.include(written, "Subject: olá\r\n")
    }))

  it.scoped("a non-ASCII address without SMTPUTF8: SmtpNotSupportedError before anything is sent", () =>
    Effect.gen(function*() {
      const message = parse("From: josé@x.test\r\nTo: bob@x.test\r\n" + body)
      const { result, written } = yield* run(message, { recipients: 0, utf8: false })
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.strictEqual(result.left._tag, "SmtpNotSupportedError")
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.scoped("line endings become CRLF; a dot at a line start is stuffed", () =>
    Effect.gen(function*() {
      const message = parse("From: ann@x.test\nTo: bob@x.test\n\n.dot\nlast")
      const { written } = yield* run(message, { recipients: 1 })
      assert.include(written, "DATA\r\nFrom: ann@x.test\r\nTo: bob@x.test\r\n\r\n..dot\r\nlast\r\n.\r\n")
    }))

  it.scoped("a streamed message (parseStream) goes out the same", () =>
    Effect.gen(function*() {
      const enc = new TextEncoder()
      const source = Stream.fromIterable([
        "From: ann@x.test\r\nTo: bo",
        "b@x.test\r\nBcc: d@x.test\r\n\r\n",
        "Hello\r\n"
      ])
        .pipe(Stream.map((s) => enc.encode(s)))
      const message = yield* Message.parseStream(source)
      const { result, written } = yield* run(message, { recipients: 2 })
      assert.isTrue(Either.isRight(result))
      assert.include(
        written,
        "MAIL FROM:<ann@x.test>\r\nRCPT TO:<bob@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\nFrom: ann@x.test\r\nTo: bob@x.test\r\n\r\nHello\r\n.\r\n"
      )
    }))

  it.scoped("a composed message: the envelope from the composer's headers, Bcc stripped", () =>
    Effect.gen(function*() {
      const message = yield* Message.make({
        from: { name: "Ann", address: "ann@x.test" },
        to: ["bob@x.test"],
        bcc: ["dee@x.test"],
        subject: "Grüße",
        text: "hi"
      })
      const { result, written, units } = yield* run(message, { recipients: 2 })
      assert.isTrue(Either.isRight(result))
      assert.include(written, "MAIL FROM:<ann@x.test>\r\nRCPT TO:<bob@x.test>\r\nRCPT TO:<dee@x.test>\r\n")
      const data = units.find((u) => u.includes("MIME-Version"))!
      assert.notInclude(data, "Bcc")
      assert.include(data, "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=")
    }))
})
