import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Either, Exit, FastCheck as fc, Option, Random, Stream, TestClock } from "effect"
import { Buffer } from "node:buffer"
import PostalMime, { type Attachment, decodeWords } from "postal-mime"
import * as Message from "../../src/Message.js"

const enc = new TextEncoder()
const dec = new TextDecoder()

const compose = <E = never, R = never>(options: Message.MakeOptions<E, R>) =>
  Effect.gen(function*() {
    const message = yield* Message.make(options)
    const bytes = yield* Message.toBytes(message)
    const parsed = yield* Effect.promise(() => PostalMime.parse(bytes))
    return { message, bytes, wire: dec.decode(bytes), parsed }
  })

const contentBytes = (a: Attachment): Uint8Array =>
  typeof a.content === "string" ? enc.encode(a.content) : new Uint8Array(a.content as ArrayBuffer)

/**
 * postal-mime turns CRLF into LF in 7bit text and, in multipart bodies, keeps the line break
 * that belongs to the boundary delimiter: compare modulo line-break style and trailing breaks
 * (the exact bytes of parts are checked on the wire in other tests).
 */
const normText = (s: string | undefined) => (s ?? "").replace(/\r\n|\r/g, "\n").replace(/\n+$/, "")

/** Every line at most 998 octets, and every line break a CRLF. */
const assertWellFormed = (bytes: Uint8Array) => {
  let lineStart = 0
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 13) {
      assert.strictEqual(bytes[i + 1], 10, `lone CR at ${i}`)
      assert.isAtMost(i - lineStart, 998, `line at ${lineStart} is ${i - lineStart} octets`)
      i++
      lineStart = i + 1
    } else if (bytes[i] === 10) {
      assert.fail(`lone LF at ${i}`)
    }
  }
  assert.isAtMost(bytes.length - lineStart, 998)
}

const headerSection = (wire: string) => wire.slice(0, wire.indexOf("\r\n\r\n"))

describe("Message.make: structure", () => {
  it.effect("text only: a single text/plain part, with Date from the Clock, Message-ID and MIME-Version", () =>
    Effect.gen(function*() {
      const { message, parsed, wire } = yield* compose({
        from: "ann@example.com",
        to: "bob@example.com",
        subject: "Hi",
        text: "Hello\nBob\n"
      })
      assert.deepStrictEqual(Message.get(message, "Date"), Option.some("Thu, 01 Jan 1970 00:00:00 +0000"))
      assert.deepStrictEqual(Message.get(message, "MIME-Version"), Option.some("1.0"))
      assert.match(Option.getOrThrow(Message.get(message, "Message-ID")), /^<[0-9a-f]{24}@example\.com>$/)
      assert.deepStrictEqual(Message.get(message, "Content-Type"), Option.some("text/plain; charset=utf-8"))
      assert.deepStrictEqual(Message.get(message, "Content-Transfer-Encoding"), Option.some("7bit"))
      assert.isTrue(wire.endsWith("\r\n\r\nHello\r\nBob\r\n"))
      assert.strictEqual(parsed.text, "Hello\nBob\n")
      assert.strictEqual(parsed.subject, "Hi")
      assert.deepStrictEqual(parsed.from, { address: "ann@example.com", name: "" })
      assert.strictEqual(parsed.date, "1970-01-01T00:00:00.000Z")
    }))

  it.effect("the Date follows the TestClock", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1000 days")
      const message = yield* Message.make({ from: "a@example.com", text: "x" })
      assert.deepStrictEqual(Message.get(message, "Date"), Option.some("Wed, 27 Sep 1972 00:00:00 +0000"))
    }))

  it.effect("the same Clock and Random give the same bytes", () =>
    Effect.gen(function*() {
      const options: Message.MakeOptions = { from: "a@example.com", text: "x", html: "<b>x</b>" }
      const once = () => Effect.flatMap(Message.make(options), Message.toBytes).pipe(Effect.withRandom(Random.make(42)))
      assert.deepStrictEqual(yield* once(), yield* once())
    }))

  it.effect("given date and Message-ID are used", () =>
    Effect.gen(function*() {
      const { message, parsed } = yield* compose({
        from: "a@example.com",
        text: "x",
        date: new Date(Date.UTC(2024, 1, 29, 13, 5, 9)),
        messageId: "unique.1@example.org"
      })
      assert.deepStrictEqual(Message.get(message, "Date"), Option.some("Thu, 29 Feb 2024 13:05:09 +0000"))
      assert.strictEqual(parsed.messageId, "<unique.1@example.org>")
      const asString = yield* Message.make({
        from: "a@example.com",
        date: "Mon, 1 Jan 2024 00:00:00 -0500",
        messageId: "<x@y>"
      })
      assert.deepStrictEqual(Message.get(asString, "Date"), Option.some("Mon, 1 Jan 2024 00:00:00 -0500"))
      assert.deepStrictEqual(Message.get(asString, "Message-ID"), Option.some("<x@y>"))
    }))

  it.effect("text and html: multipart/alternative", () =>
    Effect.gen(function*() {
      const { message, parsed } = yield* compose({ from: "a@example.com", text: "plain ✓", html: "<p>html ✓</p>" })
      assert.match(Option.getOrThrow(Message.get(message, "Content-Type")), /^multipart\/alternative; boundary="=_/)
      assert.strictEqual(normText(parsed.text), "plain ✓")
      assert.strictEqual(normText(parsed.html), "<p>html ✓</p>")
      assert.strictEqual(parsed.attachments.length, 0)
    }))

  it.effect("html only: a single text/html part", () =>
    Effect.gen(function*() {
      const { message, parsed } = yield* compose({ from: "a@example.com", html: "<p>x</p>" })
      assert.deepStrictEqual(Message.get(message, "Content-Type"), Option.some("text/html; charset=utf-8"))
      assert.strictEqual(normText(parsed.html), "<p>x</p>")
    }))

  it.effect("inline parts by Content-ID: multipart/related around the html, inside alternative, inside mixed", () =>
    Effect.gen(function*() {
      const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13])
      const pdf = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 7) % 256))
      const { message, parsed, wire } = yield* compose({
        from: "a@example.com",
        text: "see the logo",
        html: "<img src=\"cid:logo@x\">",
        attachments: [
          { filename: "logo.png", content: png, cid: "<logo@x>" },
          { filename: "report.pdf", content: pdf }
        ]
      })
      assert.match(Option.getOrThrow(Message.get(message, "Content-Type")), /^multipart\/mixed;/)
      assert.include(wire, "Content-Type: multipart/alternative;")
      assert.match(wire, /Content-Type: multipart\/related; boundary="=_[0-9a-f]+\.\d";\r\n type="text\/html"/)
      assert.include(wire, "Content-ID: <logo@x>")
      const logo = parsed.attachments.find((a) => a.filename === "logo.png")!
      assert.strictEqual(logo.contentId, "<logo@x>")
      assert.strictEqual(logo.disposition, "inline")
      assert.isTrue(logo.related)
      assert.strictEqual(logo.mimeType, "image/png")
      assert.deepStrictEqual(contentBytes(logo), png)
      const report = parsed.attachments.find((a) => a.filename === "report.pdf")!
      assert.strictEqual(report.mimeType, "application/pdf")
      assert.strictEqual(report.disposition, "attachment")
      assert.deepStrictEqual(contentBytes(report), pdf)
      assert.strictEqual(normText(parsed.text), "see the logo")
      assert.strictEqual(normText(parsed.html), "<img src=\"cid:logo@x\">")
    }))

  it.effect("a cid part without html is an inline attachment in multipart/mixed", () =>
    Effect.gen(function*() {
      const { message, parsed } = yield* compose({
        from: "a@example.com",
        text: "x",
        attachments: [{ filename: "a.png", content: new Uint8Array([1, 2, 3]), cid: "a" }]
      })
      assert.match(Option.getOrThrow(Message.get(message, "Content-Type")), /^multipart\/mixed;/)
      assert.strictEqual(parsed.attachments[0]!.disposition, "inline")
      assert.strictEqual(parsed.attachments[0]!.contentId, "<a>")
    }))

  it.effect("attachments only, and no content at all", () =>
    Effect.gen(function*() {
      const only = yield* compose({ from: "a@example.com", attachments: [{ content: new Uint8Array([1]) }] })
      assert.strictEqual(only.parsed.attachments.length, 1)
      assert.strictEqual(only.parsed.attachments[0]!.mimeType, "application/octet-stream")
      const empty = yield* compose({ from: "a@example.com" })
      assert.deepStrictEqual(Message.get(empty.message, "Content-Type"), Option.some("text/plain; charset=utf-8"))
    }))

  it.effect("attachment content as a string, bytes or a Stream; types from the file name or given", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(Array.from({ length: 1000 }, (_, i) => (i * 31) % 256))
      const { parsed, wire } = yield* compose({
        from: "a@example.com",
        text: "body",
        attachments: [
          { filename: "notes.txt", content: "line 1\nligne 2 é\n" },
          { filename: "data.bin", content: bytes },
          {
            filename: "streamed.bin",
            contentType: "application/x-custom",
            content: Stream.fromIterable([bytes, bytes])
          },
          { filename: "plain.csv", content: enc.encode("a,b\r\n1,2\r\n") }
        ]
      })
      const [notes, data, streamed, csv] = parsed.attachments
      assert.strictEqual(notes!.mimeType, "text/plain")
      // postal-mime adds a line break to text attachments
      assert.strictEqual(dec.decode(contentBytes(notes!)).replace(/\r?\n+$/, ""), "line 1\nligne 2 é")
      assert.include(wire, "\r\n\r\nline 1\r\nligne 2 =C3=A9\r\n\r\n--=_")
      assert.include(wire, "Content-Type: text/plain; charset=utf-8; name=notes.txt")
      assert.deepStrictEqual(contentBytes(data!), bytes)
      assert.strictEqual(streamed!.mimeType, "application/x-custom")
      assert.deepStrictEqual(contentBytes(streamed!), new Uint8Array([...bytes, ...bytes]))
      assert.strictEqual(csv!.mimeType, "text/csv")
      assert.strictEqual(dec.decode(contentBytes(csv!)).replace(/\r?\n+$/, ""), "a,b\n1,2")
      assert.include(
        wire,
        "Content-Transfer-Encoding: 7bit\r\nContent-Disposition: attachment; filename=plain.csv\r\n\r\na,b\r\n1,2\r\n\r\n--=_"
      )
    }))

  it.effect("a Stream attachment makes the body a Stream, which fails with the attachment's error", () =>
    Effect.gen(function*() {
      const message = yield* Message.make({
        from: "a@example.com",
        attachments: [{ content: Stream.concat(Stream.make(new Uint8Array([1])), Stream.fail("disk error" as const)) }]
      })
      assert.isFalse(message.body instanceof Uint8Array)
      const r = yield* Effect.either(Message.toBytes(message))
      assert.deepStrictEqual(r, Either.left("disk error" as const))
    }))
})

describe("Message.make: headers", () => {
  it.effect("non-ASCII subject and display names become encoded words; the parser decodes them", () =>
    Effect.gen(function*() {
      const { message, parsed, wire } = yield* compose({
        from: { name: "Jörg Müller", address: "jorg@example.com" },
        to: [
          { name: "Zoë, \"the\" boss", address: "zoe@example.com" },
          "Ann Smith <ann@example.com>",
          "plain@example.com"
        ],
        cc: { name: "日本語の名前", address: "cc@example.com" },
        replyTo: "reply@example.com",
        sender: "Sec <sec@example.com>",
        subject: "Grüße aus Köln 🎉 — with a subject long enough to be folded over more than a single line of text",
        text: "x"
      })
      assert.isFalse(Message.needsSmtpUtf8(message))
      assert.match(headerSection(wire), /^[\x20-\x7e\r\n\t]*$/)
      assert.strictEqual(
        parsed.subject,
        "Grüße aus Köln 🎉 — with a subject long enough to be folded over more than a single line of text"
      )
      assert.deepStrictEqual(parsed.from, { address: "jorg@example.com", name: "Jörg Müller" })
      assert.deepStrictEqual(parsed.to, [
        { address: "zoe@example.com", name: "Zoë, \"the\" boss" },
        { address: "ann@example.com", name: "Ann Smith" },
        { address: "plain@example.com", name: "" }
      ])
      assert.deepStrictEqual(parsed.cc, [{ address: "cc@example.com", name: "日本語の名前" }])
      assert.deepStrictEqual(parsed.replyTo, [{ address: "reply@example.com", name: "" }])
      assert.deepStrictEqual(parsed.sender, { address: "sec@example.com", name: "Sec" })
      // and our own parser reads them back the same
      const reparsed = Either.getOrThrow(Message.parse(wire))
      assert.deepStrictEqual(Either.getOrThrow(Message.addresses(reparsed, "From")), [
        { name: "Jörg Müller", address: "jorg@example.com" }
      ])
      assert.deepStrictEqual(Either.getOrThrow(Message.addresses(reparsed, "To"))[0], {
        name: "Zoë, \"the\" boss",
        address: "zoe@example.com"
      })
    }))

  it.effect("ASCII names with specials are quoted", () =>
    Effect.gen(function*() {
      const { message, parsed } = yield* compose({
        from: { name: "Doe, John \"JD\" \\ (x)", address: "jd@example.com" },
        text: "x"
      })
      assert.deepStrictEqual(
        Message.get(message, "From"),
        Option.some("\"Doe, John \\\"JD\\\" \\\\ (x)\" <jd@example.com>")
      )
      assert.strictEqual(parsed.from?.name, "Doe, John \"JD\" \\ (x)")
    }))

  it.effect("a subject that looks like an encoded word stays literal", () =>
    Effect.gen(function*() {
      const { parsed } = yield* compose({ from: "a@example.com", subject: "=?UTF-8?Q?not_decoded?=", text: "x" })
      assert.strictEqual(parsed.subject, "=?UTF-8?Q?not_decoded?=")
    }))

  it.effect("utf8Headers: raw UTF-8 (RFC 6532) in the header section, and needsSmtpUtf8", () =>
    Effect.gen(function*() {
      const { message, parsed, wire } = yield* compose({
        from: { name: "Jörg", address: "jörg@bücher.example" },
        to: "Zoë <zoe@example.com>",
        subject: "Grüße",
        text: "x",
        attachments: [{ filename: "résumé.pdf", content: new Uint8Array([1]) }],
        utf8Headers: true
      })
      assert.isTrue(Message.needsSmtpUtf8(message))
      assert.include(wire, "Subject: Grüße\r\n")
      assert.include(wire, "From: \"Jörg\" <jörg@bücher.example>\r\n")
      assert.include(wire, "filename=\"résumé.pdf\"")
      assert.strictEqual(parsed.subject, "Grüße")
      assert.deepStrictEqual(parsed.from, { address: "jörg@bücher.example", name: "Jörg" })
      assert.strictEqual(parsed.attachments[0]!.filename, "résumé.pdf")
      const prepared = Either.getOrThrow(Message.prepareSend(message, { smtpUtf8: true }))
      assert.isTrue(prepared.envelope.international)
      assert.deepStrictEqual(prepared.mailOptions, ["SMTPUTF8", "BODY=8BITMIME"])
    }))

  it.effect("non-ASCII and long file names use RFC 2231 parameters", () =>
    Effect.gen(function*() {
      const names = [
        "résumé.pdf",
        "日本語のファイル名.txt",
        "a name with \"quotes\"; and semicolons.bin",
        "x".repeat(300) + ".dat",
        "tab\there.bin"
      ]
      const { parsed, wire } = yield* compose({
        from: "a@example.com",
        attachments: names.map((filename) => ({ filename, content: new Uint8Array([1, 2]) }))
      })
      assert.include(wire, "filename*0*=utf-8''r%C3%A9sum%C3%A9.pdf")
      assert.deepStrictEqual(parsed.attachments.map((a) => a.filename), names)
      assertWellFormed(enc.encode(wire))
    }))

  it.effect("Bcc is in the message (for the envelope) but never on the wire", () =>
    Effect.gen(function*() {
      const { message, wire } = yield* compose({
        from: "a@example.com",
        to: "b@example.com",
        cc: "c@example.com",
        bcc: ["hidden@example.com", "Hidden Two <hidden2@example.com>"],
        text: "x"
      })
      assert.deepStrictEqual(Message.getAll(message, "Bcc"), ["hidden@example.com, Hidden Two <hidden2@example.com>"])
      assert.notMatch(wire, /^bcc:|hidden/im) // (random ids may hold the letters "bcc")
      const env = Either.getOrThrow(Message.envelope(message))
      assert.deepStrictEqual(env.to, ["b@example.com", "hidden@example.com", "hidden2@example.com", "c@example.com"])
    }))

  it.effect("extra headers, in order, encoded when not ASCII", () =>
    Effect.gen(function*() {
      const { message, parsed } = yield* compose({
        from: "a@example.com",
        text: "x",
        headers: [{ name: "X-Priority", value: "1" }, { name: "X-Note", value: "héllo" }, {
          name: "List-Unsubscribe",
          value: "<mailto:u@example.com?subject=x=?y>"
        }]
      })
      assert.deepStrictEqual(Message.get(message, "X-Note"), Option.some("=?UTF-8?Q?h=C3=A9llo?="))
      assert.deepStrictEqual(
        Message.get(message, "List-Unsubscribe"),
        Option.some("<mailto:u@example.com?subject=x=?y>")
      )
      assert.strictEqual(decodeWords(parsed.headers.find((h) => h.key === "x-note")!.value), "héllo")
      const record = yield* Message.make({ from: "a@example.com", headers: { "X-A": "1", "X-B": "2" } })
      assert.deepStrictEqual(Message.getAll(record, "X-B"), ["2"])
    }))

  it.effect("fields the composer owns, invalid names and invalid addresses are refused", () =>
    Effect.gen(function*() {
      // every refusal names the field, its position, and shows the value (header text only)
      const bad: ReadonlyArray<readonly [Message.MakeOptions, string]> = [
        [{ from: "a@example.com", headers: { Subject: "x" } }, `headers["Subject"]: Subject is set by the composer`],
        [
          { from: "a@example.com", headers: { "content-type": "text/html" } },
          `headers["content-type"]: content-type is set by the composer; use its option instead (contentType`
        ],
        [{ from: "a@example.com", headers: { "Bad Name": "x" } }, `headers["Bad Name"]: "Bad Name" is not a header`],
        [{ from: "a@example.com", headers: [{ name: "", value: "x" }] }, `headers[0]: "" is not a header field name`],
        [{ from: "not an address" }, `from: "not an address" is not an address`],
        [{ from: [] }, "from: at least one address is required"],
        [{ from: "Group: x@example.com;" }, `from: "Group: x@example.com;" is a group; this field takes mailboxes`],
        [
          { from: ["a@example.com", { group: "G", members: [] }] as any },
          `from[1]: a group ("G"); this field takes mailboxes only`
        ],
        [
          { from: "a@example.com", to: ["b@example.com", "x@y", "bob@@x"] },
          `to[2]: "bob@@x" is not an address or a group`
        ],
        [{ from: "a@example.com", cc: "a@x, b@x" }, `cc: "a@x, b@x" is not an address (give a list for several`],
        [
          { from: "a@example.com", to: { name: "x", address: "Name <x@example.com>" } },
          `to.address: "Name <x@example.com>" is not a bare address`
        ],
        [
          { from: "a@example.com", to: [{ group: "G", members: ["ok@x", "bad"] }] },
          `to[0].members[1]: "bad" is not an address`
        ],
        [{ from: "a@example.com", to: [{ group: " ", members: [] }] }, "to[0].group: a group needs a name"],
        [
          { from: "a@example.com", attachments: [{ content: "x" }, { content: "x", contentType: "not a type" }] },
          `attachments[1].contentType: "not a type" is not a MIME type`
        ],
        [
          { from: "a@example.com", attachments: [{ content: "x", contentType: "text/plain; charset=latin1" }] },
          `attachments[0].contentType: "text/plain; charset=latin1": a string is sent as UTF-8`
        ],
        [
          { from: "a@example.com", attachments: [{ content: "x", contentType: "text/plain; a=1; a=2" }] },
          `attachments[0].contentType: "text/plain; a=1; a=2" has the parameter a twice`
        ],
        [
          { from: "a@example.com", attachments: [{ content: "x", contentType: "text/plain; o'k=1" }] },
          `attachments[0].contentType: "text/plain; o'k=1" has a parameter name with ' or %`
        ],
        [
          { from: "a@example.com", attachments: [{ content: "x", contentType: "text/plain; name*=utf-8''x" }] },
          `attachments[0].contentType: "text/plain; name*=utf-8''x" has an RFC 2231 parameter name`
        ],
        [
          { from: "a@example.com", attachments: [{ content: "x", contentType: "multipart/mixed" }] },
          `attachments[0].contentType: "multipart/mixed": multipart types are built by the composer`
        ],
        [
          { from: "a@example.com", attachments: [{ content: "x", cid: "has space" }] },
          `attachments[0].cid: "has space"`
        ],
        [{ from: "a@example.com", messageId: "no-at-sign" }, `messageId: "no-at-sign" is not a message ID`],
        [{ from: "a@example.com", inReplyTo: ["<a@x>", "b"] }, `inReplyTo[1]: "b" is not a message ID`],
        [{ from: "a@example.com", date: new Date(Number.NaN) }, "date: an invalid Date"],
        [{ from: "a@example.com", priority: "urgent" as any }, `priority: "urgent" is not`],
        [
          { from: "a@example.com", alternatives: [{ contentType: "text/x-amp-html; =", content: "x" }] },
          `alternatives[0].contentType: "text/x-amp-html; =" has a parameter without a name`
        ],
        [
          { from: "a@example.com", list: { unsubscribe: { mailto: "u@x.test", oneClick: true } } },
          "list.unsubscribe.oneClick: one-click unsubscribe needs an https url"
        ],
        [
          { from: "a@example.com", list: { unsubscribe: { url: "ftp://x.test/u" } } },
          `list.unsubscribe.url: "ftp://x.test/u" is not a https or http URL`
        ],
        [
          { from: "a@example.com", list: { help: ["https://x.test/h", "no url"] } },
          `list.help[1]: "no url" is not a URL`
        ],
        [{ from: "a@example.com", list: { id: "nodot" } }, `list.id: "nodot" is not a list identifier`],
        [
          { from: "a@example.com", list: { id: "a.x.test" }, headers: { "list-id": "b" } },
          `headers["list-id"]: list-id is already written from an option`
        ],
        [{ from: "a@example.com", icalEvent: "not a calendar" }, "icalEvent.content is not an iCalendar object"],
        [
          { from: "a@example.com", icalEvent: { content: "BEGIN:VCALENDAR\nMETHOD:CANCEL\n", method: "request" } },
          `icalEvent.method: "request" differs from the calendar's METHOD:CANCEL`
        ]
      ]
      for (const [options, reason] of bad) {
        const r = yield* Effect.either(Message.make(options))
        assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput", JSON.stringify(options))
        if (Either.isLeft(r)) assert.include(r.left.reason, reason)
      }
    }))
})

describe("Message.make: values of the wrong type (from JavaScript)", () => {
  it.effect("every option of the wrong type is SmtpInvalidInput naming it, not a defect", () =>
    Effect.gen(function*() {
      const from = "a@example.com"
      const cases: ReadonlyArray<readonly [any, string]> = [
        [{ from, attachments: [{ filename: 5, content: "x" }] }, "attachments[0].filename: not a string"],
        [{ from, attachments: [{ content: "x", contentType: 5 }] }, "attachments[0].contentType: not a string"],
        [{ from, html: "h", attachments: [{ content: "x", cid: 5 }] }, "attachments[0].cid: not a string"],
        [{ from, to: { name: 5, address: "b@example.com" } }, "to.name: not a string"],
        [{ from, to: { group: 5, members: [] } }, "to.group: not a string"],
        [{ from, messageId: 5 }, "messageId: not a string"],
        [{ from, list: { id: { name: 5, id: "x.example.com" } } }, "list.id.name: not a string"],
        [{ from, icalEvent: { method: 5, content: "BEGIN:VCALENDAR" } }, "icalEvent.method: not a string"],
        [{ from, headers: [null] }, "the name of headers[0]: not a string"],
        [{ from, attachments: [{ content: null }] }, "attachments[0].content: not a string, bytes or a Stream"],
        [{ from, text: "t", alternatives: [{ content: 5, contentType: "text/x" }] }, "alternatives[0].content"]
      ]
      for (const [options, reason] of cases) {
        const exit = yield* Effect.exit(Message.make(options))
        assert.isTrue(Exit.isFailure(exit) && !Cause.isDie(exit.cause), reason)
        const r = yield* Effect.either(Message.make(options))
        assert.isTrue(Either.isLeft(r) && r.left.reason.startsWith(reason), `${reason}: ${JSON.stringify(r)}`)
      }
      const message = yield* Message.make({ from, to: "b@example.com" })
      const r = Message.prepareSend(message, { to: [5 as any], smtpUtf8: false })
      assert.isTrue(
        Either.isLeft(r) && r.left._tag === "SmtpInvalidInput" &&
          r.left.reason === "An envelope recipient is not a string"
      )
    }))

  it.effect("a text or html body that is not a string is SmtpInvalidInput, not a defect", () =>
    Effect.gen(function*() {
      for (const key of ["text", "html"] as const) {
        const r = yield* Effect.either(Message.make({ from: "a@example.com", [key]: 5 as any }))
        assert.isTrue(Either.isLeft(r) && r.left.reason === `${key}: not a string`, key)
      }
    }))
})

describe("Message.make: a message/rfc822 attachment", () => {
  it.effect("7bit when it can be (RFC 2046 §5.2.1), base64 when it holds =_ or 8-bit bytes", () =>
    Effect.gen(function*() {
      const forwarded = `From: x@example.org\nSubject: fwd\n\n${"a".repeat(200)}\n`
      const { parsed, wire } = yield* compose({
        from: "a@example.com",
        attachments: [{ filename: "fwd.eml", content: forwarded }]
      })
      assert.include(wire, "Content-Type: message/rfc822; name=fwd.eml\r\nContent-Transfer-Encoding: 7bit\r\n")
      // line breaks as CRLF, a line longer than 76 octets kept (up to 998)
      assert.include(wire, `\r\n\r\nFrom: x@example.org\r\nSubject: fwd\r\n\r\n${"a".repeat(200)}\r\n`)
      assert.strictEqual(parsed.attachments.length, 1)
      for (
        const content of [
          "Subject: s\r\nContent-Type: multipart/mixed; boundary=\"=_x\"\r\n\r\n--=_x--\r\n",
          "Subject: caf\u00e9\r\n\r\n"
        ]
      ) {
        const { wire } = yield* compose({ from: "a@example.com", attachments: [{ filename: "f.eml", content }] })
        assert.include(wire, "Content-Type: message/rfc822; name=f.eml\r\nContent-Transfer-Encoding: base64\r\n")
      }
    }))
})

describe("Message.make: long display names", () => {
  it.effect("a name with a word too long for a line is encoded, with or without utf8Headers", () =>
    Effect.gen(function*() {
      const names = ["\u00fc".repeat(600), "x".repeat(1200)]
      for (const utf8Headers of [false, true]) {
        for (const name of names) {
          // before: "word too long to fold" (a quoted string cannot be split across lines)
          const { parsed, wire } = yield* compose({
            from: "a@example.com",
            to: { name, address: "b@example.com" },
            utf8Headers
          })
          assert.deepStrictEqual(parsed.to, [{ name, address: "b@example.com" }])
          for (const line of wire.split("\r\n")) assert.isAtMost(new TextEncoder().encode(line).length, 998)
        }
      }
    }))
})

describe("Message.make: header injection", () => {
  const payloads = ["x\r\nBcc: evil@example.com", "x\nBcc: evil@example.com", "x\rBcc: evil@example.com"]
  const fields: ReadonlyArray<readonly [string, (p: string) => Message.MakeOptions]> = [
    ["from", (p) => ({ from: `a@example.com${p}` })],
    ["from.name", (p) => ({ from: { name: p, address: "a@example.com" } })],
    ["from.address", (p) => ({ from: { address: `a@example.com${p}` } })],
    ["to[1]", (p) => ({ from: "a@example.com", to: ["b@example.com", `Name${p} <c@example.com>`] })],
    ["to[0].name", (p) => ({ from: "a@example.com", to: [{ name: p, address: "b@example.com" }] })],
    ["cc", (p) => ({ from: "a@example.com", cc: `c@example.com${p}` })],
    ["bcc", (p) => ({ from: "a@example.com", bcc: `c@example.com${p}` })],
    ["replyTo", (p) => ({ from: "a@example.com", replyTo: `r@example.com${p}` })],
    ["sender", (p) => ({ from: "a@example.com", sender: { name: p, address: "s@example.com" } })],
    ["subject", (p) => ({ from: "a@example.com", subject: p })],
    ["headers[\"X-A\"]", (p) => ({ from: "a@example.com", headers: { "X-A": p } })],
    ["the name of headers", (p) => ({ from: "a@example.com", headers: { [`X-A${p}`]: "v" } })],
    ["attachments[0].filename", (p) => ({ from: "a@example.com", attachments: [{ filename: p, content: "x" }] })],
    ["attachments[1].contentType", (p) => ({
      from: "a@example.com",
      attachments: [{ content: "x" }, { content: "x", contentType: `text/plain${p}` }]
    })],
    ["attachments[0].cid", (p) => ({ from: "a@example.com", html: "h", attachments: [{ content: "x", cid: p }] })],
    ["messageId", (p) => ({ from: "a@example.com", messageId: `x@y${p}` })],
    ["date", (p) => ({ from: "a@example.com", date: `Mon, 1 Jan 2024${p}` })]
  ]
  for (const [field, options] of fields) {
    it.effect(`CR or LF in ${field}: SmtpInvalidInput naming the field`, () =>
      Effect.gen(function*() {
        for (const payload of payloads) {
          const r = yield* Effect.either(Message.make(options(payload)))
          assert.isTrue(Either.isLeft(r), `${field} ${JSON.stringify(payload)}`)
          if (Either.isLeft(r)) {
            assert.strictEqual(r.left._tag, "SmtpInvalidInput")
            assert.include(r.left.reason, field)
            assert.include(r.left.reason, "header injection")
            // the value is shown, its CR and LF escaped
            assert.include(r.left.reason, JSON.stringify(payload).slice(1, -1))
          }
        }
      }))
  }

  it.effect("a control character in a value written as it is (Message-ID, Date, In-Reply-To): SmtpInvalidInput", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, Message.MakeOptions]> = [
        ["messageId", { from: "a@example.com", messageId: "a\u0000b@c" }],
        ["date", { from: "a@example.com", date: "Mon, 1 Jan 2024\u0000" }],
        ["inReplyTo", { from: "a@example.com", inReplyTo: "a\u0001@b" }],
        ["references", { from: "a@example.com", references: ["a\u007f@b"] }]
      ]
      for (const [field, options] of cases) {
        const r = yield* Effect.either(Message.make(options))
        assert.isTrue(Either.isLeft(r), field)
        if (Either.isLeft(r)) {
          assert.include(r.left.reason, field)
          assert.include(r.left.reason, "control character")
        }
      }
      // a subject or a name is encoded: its control characters do not reach the header raw
      const { bytes } = yield* compose({ from: { name: "A\u0001", address: "a@example.com" }, subject: "s\u0000" })
      assert.notInclude(new TextDecoder().decode(bytes), "\u0000")
    }))

  it.effect("CR and LF in text, html and attachment content are content, not injection", () =>
    Effect.gen(function*() {
      const { parsed } = yield* compose({
        from: "a@example.com",
        text: "a\r\nBcc: x@example.com",
        html: "<p>\n</p>",
        attachments: [{ content: "x\r\ny" }]
      })
      assert.strictEqual(normText(parsed.text), "a\nBcc: x@example.com")
    }))
})

describe("Message.make: encodings and line lengths", () => {
  it.effect("long lines, dots and From lines in text survive; no line passes 998 octets", () =>
    Effect.gen(function*() {
      const text = [
        "x".repeat(5000),
        ".",
        ".leading dot",
        "From the start",
        "trailing spaces   ",
        "tab\tinside",
        "=_ boundary-like --=_",
        "é".repeat(700)
      ].join("\n")
      const { bytes, parsed } = yield* compose({
        from: "a@example.com",
        subject: "y".repeat(2000),
        text,
        html: `<p>${"z".repeat(3000)}</p>`,
        attachments: [{ filename: `${"n".repeat(1500)}.txt`, content: "w".repeat(4000) }]
      })
      assertWellFormed(bytes)
      assert.strictEqual(normText(parsed.text), normText(text))
      assert.strictEqual(parsed.subject, "y".repeat(2000))
      assert.strictEqual(parsed.attachments[0]!.filename, `${"n".repeat(1500)}.txt`)
      assert.strictEqual(dec.decode(contentBytes(parsed.attachments[0]!)).replace(/\r?\n$/, ""), "w".repeat(4000))
    }))

  it.effect("content holding boundary-like text is quoted-printable, so no boundary can occur in it", () =>
    Effect.gen(function*() {
      const text = "--=_ this looks like a boundary\n--=_0123456789abcdef01234567.0--"
      const { message, parsed, wire } = yield* compose({ from: "a@example.com", text, html: "<p>x</p>" })
      const boundary = /boundary="([^"]+)"/.exec(Option.getOrThrow(Message.get(message, "Content-Type")))![1]!
      assert.strictEqual(wire.split(`--${boundary}`).length, 4)
      assert.notInclude(wire, "\r\n--=_ this")
      assert.strictEqual(normText(parsed.text), normText(text))
    }))

  it.effect("7bit, quoted-printable or base64 by content", () =>
    Effect.gen(function*() {
      const cte = (text: string) =>
        Effect.map(Message.make({ from: "a@example.com", text }), (m) =>
          Option.getOrThrow(Message.get(m, "Content-Transfer-Encoding")))
      assert.strictEqual(yield* cte("plain ascii\nlines"), "7bit")
      assert.strictEqual(yield* cte("mostly ascii with one é"), "quoted-printable")
      assert.strictEqual(yield* cte("x".repeat(999)), "quoted-printable")
      assert.strictEqual(yield* cte("日本語のテキストです"), "base64")
    }))

  it.effect("a 5 MB Stream attachment in odd-sized chunks is base64-encoded as it flows", () =>
    Effect.gen(function*() {
      const size = 5 * 1024 * 1024 + 1
      const whole = new Uint8Array(size)
      let seed = 7
      for (let i = 0; i < size; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        whole[i] = seed >> 16
      }
      const chunkSizes = [1, 2, 3, 997, 4096, 57, 58, 56]
      const chunks: Array<Uint8Array> = []
      for (let at = 0, k = 0; at < size; k++) {
        const n = chunkSizes[k % chunkSizes.length]!
        chunks.push(whole.subarray(at, at + n))
        at += n
      }
      const message = yield* Message.make({
        from: "a@example.com",
        text: "see attached",
        attachments: [{ filename: "big.bin", content: Stream.fromIterable(chunks) }]
      })
      let out = 0
      const pieces: Array<string> = []
      yield* Stream.runForEach(Message.toStream(message), (c) =>
        Effect.sync(() => {
          out++
          pieces.push(Buffer.from(c).toString("latin1"))
        }))
      assert.isAbove(out, 1000)
      const wire = pieces.join("")
      const expected = Buffer.from(whole).toString("base64").replace(/.{76}/g, "$&\r\n").replace(/\r\n$/, "")
      assert.include(wire, `Content-Disposition: attachment; filename=big.bin\r\n\r\n${expected}\r\n--=_`)
      assertWellFormed(Buffer.from(wire, "latin1"))
      const parsed = yield* Effect.promise(() => PostalMime.parse(Buffer.from(wire, "latin1")))
      assert.isTrue(Buffer.from(contentBytes(parsed.attachments[0]!)).equals(Buffer.from(whole)))
    }), 60_000)

  it.effect.prop(
    "base64 of a Stream in any chunking is the base64 of the whole, in lines of 76",
    [fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat({ max: 400 }), { maxLength: 10 })],
    ([bytes, cuts]) =>
      Effect.gen(function*() {
        const points = [...new Set(cuts)].filter((c) => c < bytes.length).sort((a, b) => a - b)
        const chunks: Array<Uint8Array> = []
        let from = 0
        for (const p of points) {
          chunks.push(bytes.subarray(from, p))
          from = p
        }
        chunks.push(bytes.subarray(from))
        const message = yield* Message.make({
          from: "a@example.com",
          attachments: [{ content: Stream.fromIterable(chunks) }],
          date: "x",
          messageId: "a@b"
        })
        const wire = Buffer.from(yield* Message.toBytes(message)).toString("latin1")
        const body = wire.slice(wire.indexOf("Content-Transfer-Encoding: base64\r\n"))
        const encoded = body.slice(body.indexOf("\r\n\r\n") + 4, body.indexOf("\r\n--=_"))
        const expected = Buffer.from(bytes).toString("base64").replace(/.{76}/g, "$&\r\n").replace(/\r\n$/, "")
        assert.strictEqual(encoded, expected)
      })
  )
})

const noBreaks = (s: string) => s.replace(/[\r\n]/g, " ")

const textArbitrary = fc.array(
  fc.oneof(
    fc.fullUnicodeString({ maxLength: 80 }),
    fc.fullUnicodeString({ maxLength: 20 }).map((s) => "." + s),
    fc.fullUnicodeString({ maxLength: 20 }).map((s) => "From " + s),
    fc.constant("."),
    fc.constant("--=_"),
    fc.integer({ min: 990, max: 1100 }).map((n) => "l".repeat(n)),
    fc.integer({ min: 300, max: 600 }).map((n) => "ü".repeat(n))
  ).map(noBreaks),
  { maxLength: 12 }
).chain((lines) => fc.constantFrom("\n", "\r\n").map((sep) => lines.join(sep)))

const nameArbitrary = fc.oneof(
  fc.fullUnicodeString({ maxLength: 60 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom("Doe, John", "\"quoted\"", "back\\slash", "(comment)", "a@b", "<x>", "=?utf-8?q?x?=")
).map(noBreaks)

const bytesArbitrary = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  fc.uint8Array({ maxLength: 600 }).map((a) => a.map((b) => (b % 5 === 0 ? b : 32 + (b % 95))))
)

describe("Message.make: properties (parsed back by postal-mime)", () => {
  it.effect.prop(
    "random subjects, display names, bodies and attachments survive, every line within 998 octets",
    {
      subject: nameArbitrary,
      fromName: nameArbitrary,
      toName: nameArbitrary,
      text: textArbitrary,
      html: fc.option(textArbitrary, { nil: undefined }),
      filename: fc.fullUnicodeString({ minLength: 1, maxLength: 80 }).map(noBreaks),
      content: bytesArbitrary,
      utf8Headers: fc.boolean()
    },
    ({ content, filename, fromName, html, subject, text, toName, utf8Headers }) =>
      Effect.gen(function*() {
        const { bytes, parsed } = yield* compose({
          from: { name: fromName, address: "from@example.com" },
          to: [{ name: toName, address: "to@example.com" }, "other@example.com"],
          subject,
          text,
          html,
          attachments: [{ filename, content, contentType: "application/octet-stream" }],
          utf8Headers
        })
        assertWellFormed(bytes)
        const clean = (s: string) => s.replace(/\s+/gu, " ").trim()
        assert.strictEqual(clean(parsed.subject ?? ""), clean(subject), "subject")
        assert.strictEqual(clean(parsed.from?.name ?? ""), clean(fromName), "from name")
        assert.strictEqual(parsed.from?.address, "from@example.com")
        assert.deepStrictEqual(parsed.to?.map((a) => a.address), ["to@example.com", "other@example.com"])
        assert.strictEqual(clean(parsed.to?.[0]?.name ?? ""), clean(toName), "to name")
        assert.strictEqual(normText(parsed.text), normText(text), "text")
        if (html !== undefined) assert.strictEqual(normText(parsed.html), normText(html), "html")
        assert.strictEqual(parsed.attachments.length, 1)
        assert.strictEqual(parsed.attachments[0]!.filename, filename, "filename")
        assert.deepStrictEqual(contentBytes(parsed.attachments[0]!), content, "content")
      }),
    { fastCheck: { numRuns: 200 } }
  )
})

describe("Message.make: stream chunks", () => {
  it.effect("a composed message with only bytes has a byte body", () =>
    Effect.gen(function*() {
      const m = yield* Message.make({
        from: "a@example.com",
        text: "x",
        attachments: [{ content: new Uint8Array([1]) }]
      })
      assert.isTrue(m.body instanceof Uint8Array)
      const viaStream = yield* Stream.runCollect(Message.toStream(m))
      assert.strictEqual(Chunk.size(viaStream), 1)
    }))
})

describe("Message.make: 0.2.0 options in detail", () => {
  const wireOf = (options: Message.MakeOptions<any, any>) =>
    Effect.map(Effect.flatMap(Message.make(options), Message.toBytes), (b) => dec.decode(b))

  it.effect("an alternative may be a Stream (base64 as it flows) or bytes with their own charset", () =>
    Effect.gen(function*() {
      const wire = yield* wireOf({
        from: "a@example.com",
        text: "t",
        alternatives: [
          { contentType: "application/x-custom", content: Stream.make(new Uint8Array([1, 2]), new Uint8Array([3])) },
          { contentType: "text/x-legacy; charset=iso-8859-1", content: new Uint8Array([0xe9]) }
        ]
      })
      assert.include(wire, "Content-Type: application/x-custom\r\nContent-Transfer-Encoding: base64\r\n\r\nAQID\r\n")
      assert.include(wire, "Content-Type: text/x-legacy; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64")
      assert.notInclude(wire, "Content-Disposition")
    }))

  it.effect("a name parameter given in contentType is kept; the file name goes in Content-Disposition", () =>
    Effect.gen(function*() {
      const wire = yield* wireOf({
        from: "a@example.com",
        attachments: [{ filename: "b.bin", contentType: "application/x-a; name=a.bin", content: new Uint8Array([1]) }]
      })
      assert.include(wire, "Content-Type: application/x-a; name=a.bin\r\n")
      assert.include(wire, "Content-Disposition: attachment; filename=b.bin\r\n")
    }))

  it.effect("priority normal writes nothing; List-* fields may still be given as headers when list is not", () =>
    Effect.gen(function*() {
      const wire = yield* wireOf({
        from: "a@example.com",
        priority: "normal",
        headers: { "List-Unsubscribe": "<https://example.com/u>" }
      })
      assert.notInclude(wire, "Priority")
      assert.notInclude(wire, "Importance")
      assert.include(wire, "List-Unsubscribe: <https://example.com/u>\r\n")
    }))

  it.effect("groups with utf8Headers: the display name as a quoted UTF-8 string", () =>
    Effect.gen(function*() {
      const wire = yield* wireOf({
        from: "a@example.com",
        to: [{ group: "Équipe", members: ["b@example.com"] }, { group: "Vide", members: [] }],
        utf8Headers: true
      })
      assert.include(wire, "To: \"Équipe\": b@example.com;, Vide:;\r\n")
    }))

  it.effect("a structured group's members must be a list", () =>
    Effect.gen(function*() {
      const r = yield* Effect.either(Message.make({ from: "a@example.com", cc: { group: "G", members: "x@y" } as any }))
      assert.isTrue(Either.isLeft(r) && r.left.reason === "cc.members: not a list of addresses")
    }))
})
