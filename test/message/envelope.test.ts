import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import * as Message from "../../src/Message.js"

const dec = new TextDecoder()

const msg = (headers: string) => {
  const parsed = Message.parse(headers + "\r\nbody\r\n")
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message)
  return parsed.right
}

interface Case {
  readonly rule: string
  readonly headers: string
  readonly options?: Message.EnvelopeOptions
  readonly expected: Partial<Message.Envelope> | { readonly error: string }
}

// One row per rule of smtplib's send_message (smtplib.rst and CPython's Lib/smtplib.py).
const cases: ReadonlyArray<Case> = [
  {
    rule: "sender from From when there is no Sender",
    headers: "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\n",
    expected: { from: "ann@example.com", to: ["bob@example.com"], resent: false, international: false }
  },
  {
    rule: "Sender is preferred to From (RFC 5322 §3.6.2)",
    headers: "From: Ann <ann@example.com>\r\nSender: Sec <sec@example.com>\r\nTo: bob@example.com\r\n",
    expected: { from: "sec@example.com" }
  },
  {
    rule: "the first address of a From with several mailboxes",
    headers: "From: ann@example.com, zed@example.com\r\nTo: bob@example.com\r\n",
    expected: { from: "ann@example.com" }
  },
  {
    rule: "recipients from To, Bcc and Cc, in smtplib's order",
    headers: "From: a@example.com\r\nCc: cc@example.com\r\nTo: to1@example.com, To Two <to2@example.com>\r\n" +
      "Bcc: bcc@example.com\r\n",
    expected: { to: ["to1@example.com", "to2@example.com", "bcc@example.com", "cc@example.com"] }
  },
  {
    rule: "address-only extraction: display names, comments and groups",
    headers: "From: \"Doe, Ann\" (boss) <ann@example.com>\r\n" +
      "To: Team: x@example.com, \"Y Y\" <y@example.com>;, z@example.com (Zed)\r\nCc: undisclosed-recipients:;\r\n",
    expected: { from: "ann@example.com", to: ["x@example.com", "y@example.com", "z@example.com"] }
  },
  {
    rule: "only the first field of each name is read (CPython's msg['To'])",
    headers: "From: a@example.com\r\nTo: first@example.com\r\nTo: second@example.com\r\n",
    expected: { to: ["first@example.com"] }
  },
  {
    rule: "no recipient fields: no recipients",
    headers: "From: a@example.com\r\n",
    expected: { to: [] }
  },
  {
    rule: "explicit from overrides Sender and From",
    headers: "From: a@example.com\r\nSender: s@example.com\r\nTo: b@example.com\r\n",
    options: { from: "bounce@example.com" },
    expected: { from: "bounce@example.com", to: ["b@example.com"] }
  },
  {
    rule: "explicit to (a string) overrides To, Cc and Bcc",
    headers: "From: a@example.com\r\nTo: b@example.com\r\nBcc: c@example.com\r\n",
    options: { to: "only@example.com" },
    expected: { from: "a@example.com", to: ["only@example.com"] }
  },
  {
    rule: "explicit from and to (a list), even with no headers",
    headers: "Subject: none\r\n",
    options: { from: "", to: ["x@example.com", "y@example.com"] },
    expected: { from: "", to: ["x@example.com", "y@example.com"] }
  },
  {
    rule: "exactly one Resent-* block: its fields are used, the regular ones ignored",
    headers: "From: a@example.com\r\nTo: b@example.com\r\nCc: c@example.com\r\n" +
      "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: r@example.com\r\n" +
      "Resent-To: rt@example.com\r\nResent-Cc: rc@example.com\r\nResent-Bcc: rb@example.com\r\n",
    expected: { from: "r@example.com", to: ["rt@example.com", "rb@example.com", "rc@example.com"], resent: true }
  },
  {
    rule: "in a Resent-* block, Resent-Sender is preferred to Resent-From",
    headers: "From: a@example.com\r\nResent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
      "Resent-From: r@example.com\r\nResent-Sender: rs@example.com\r\nResent-To: rt@example.com\r\n",
    expected: { from: "rs@example.com", to: ["rt@example.com"], resent: true }
  },
  {
    rule: "Resent-* fields without Resent-Date are not a block",
    headers: "From: a@example.com\r\nTo: b@example.com\r\nResent-From: r@example.com\r\nResent-To: rt@example.com\r\n",
    expected: { from: "a@example.com", to: ["b@example.com"], resent: false }
  },
  {
    rule: "one Resent-* block with explicit from and to: explicit wins",
    headers:
      "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: r@example.com\r\nResent-To: rt@example.com\r\n",
    options: { from: "x@example.com", to: ["y@example.com"] },
    expected: { from: "x@example.com", to: ["y@example.com"], resent: true }
  },
  {
    rule: "more than one Resent-* block: SmtpInvalidInput",
    headers: "From: a@example.com\r\nTo: b@example.com\r\n" +
      "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: r1@example.com\r\nResent-To: t1@example.com\r\n" +
      "Resent-Date: Tue, 2 Jan 2024 00:00:00 +0000\r\nResent-From: r2@example.com\r\nResent-To: t2@example.com\r\n",
    expected: { error: "Resent-" }
  },
  {
    rule: "more than one Resent-* block: SmtpInvalidInput even with explicit from and to",
    headers: "Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-Date: Tue, 2 Jan 2024 00:00:00 +0000\r\n",
    options: { from: "x@example.com", to: "y@example.com" },
    expected: { error: "Resent-" }
  },
  {
    rule: "a non-ASCII address makes the envelope international",
    headers: "From: jörg@bücher.example\r\nTo: b@example.com\r\n",
    expected: { from: "jörg@bücher.example", international: true }
  },
  {
    rule: "a non-ASCII recipient makes the envelope international",
    headers: "From: a@example.com\r\nTo: b@example.com, 用户@例子.广告\r\n",
    expected: { to: ["b@example.com", "用户@例子.广告"], international: true }
  },
  {
    rule: "a non-ASCII display name does not",
    headers: "From: Jörg <jorg@example.com>\r\nTo: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>\r\n",
    expected: { from: "jorg@example.com", to: ["zoe@example.com"], international: false }
  },
  {
    rule: "an explicit non-ASCII address makes it international",
    headers: "From: a@example.com\r\n",
    options: { to: ["zoë@example.com"] },
    expected: { international: true }
  },
  {
    rule: "no Sender or From: SmtpInvalidInput",
    headers: "To: b@example.com\r\n",
    expected: { error: "No Sender or From" }
  },
  {
    rule: "one Resent-* block without Resent-Sender or Resent-From: SmtpInvalidInput",
    headers: "From: a@example.com\r\nResent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-To: rt@example.com\r\n",
    expected: { error: "No Resent-Sender or Resent-From" }
  },
  {
    rule: "an unparsable To: SmtpInvalidInput, not fewer recipients",
    headers: "From: a@example.com\r\nTo: <<broken\r\n",
    expected: { error: "To" }
  },
  {
    rule: "CR or LF in an explicit address: SmtpInvalidInput",
    headers: "From: a@example.com\r\n",
    options: { to: ["b@example.com\r\nRCPT TO:<c@example.com>"] },
    expected: { error: "CR or LF" }
  }
]

describe("Message.envelope (smtplib send_message rules)", () => {
  for (const c of cases) {
    it(c.rule, () => {
      const result = Message.envelope(msg(c.headers), c.options)
      if ("error" in c.expected) {
        assert.isTrue(Either.isLeft(result), "expected SmtpInvalidInput")
        if (Either.isLeft(result)) {
          assert.strictEqual(result.left._tag, "SmtpInvalidInput")
          assert.include(result.left.reason, c.expected.error)
        }
        return
      }
      if (Either.isLeft(result)) throw new Error(result.left.reason)
      for (const [key, value] of Object.entries(c.expected)) {
        assert.deepStrictEqual(result.right[key as keyof Message.Envelope], value, key)
      }
    })
  }
})

const collect = (data: Uint8Array | Stream.Stream<Uint8Array, any, never>) =>
  data instanceof Uint8Array ? Effect.succeed(dec.decode(data)) : Effect.map(
    Stream.runCollect(data),
    (chunks) => Chunk.toReadonlyArray(chunks).map((c) => dec.decode(c, { stream: true })).join("")
  )

describe("Message.prepareSend", () => {
  const withBcc = msg(
    "From: a@example.com\r\nTo: b@example.com\r\nBcc: hidden@example.com\r\nBCC: hidden2@example.com\r\n" +
      "Resent-Bcc: rhidden@example.com\r\nresent-bcc: rhidden2@example.com\r\nSubject: s\r\n"
  )

  it("Bcc and Resent-Bcc are never transmitted (bytes on the wire), whatever the envelope", () => {
    for (const options of [{}, { from: "x@example.com", to: ["y@example.com"] }]) {
      const prepared = Either.getOrThrow(Message.prepareSend(withBcc, { ...options, smtpUtf8: false }))
      const wire = dec.decode(prepared.data as Uint8Array)
      assert.notMatch(wire, /bcc/i)
      assert.notInclude(wire, "hidden")
      assert.strictEqual(wire, "From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nbody\r\n")
    }
    const env = Either.getOrThrow(Message.envelope(withBcc))
    assert.deepStrictEqual(env.to, ["b@example.com", "hidden@example.com"])
  })

  it.effect("toStream strips Bcc and Resent-Bcc too", () =>
    Effect.gen(function*() {
      const wire = yield* collect(Message.toStream(withBcc) as Stream.Stream<Uint8Array, any>)
      assert.notMatch(wire, /bcc/i)
      const bytes = dec.decode(yield* Message.toBytes(withBcc))
      assert.strictEqual(bytes, wire)
    }))

  it("an international envelope without SMTPUTF8 support: SmtpNotSupportedError, nothing prepared", () => {
    const m = msg("From: jörg@bücher.example\r\nTo: b@example.com\r\n")
    const r = Message.prepareSend(m, { smtpUtf8: false })
    assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpNotSupportedError" && r.left.feature === "SMTPUTF8")
    const explicit = Message.prepareSend(msg("From: a@example.com\r\n"), { to: "zoë@example.com", smtpUtf8: false })
    assert.isTrue(Either.isLeft(explicit) && explicit.left._tag === "SmtpNotSupportedError")
  })

  it("an international envelope with SMTPUTF8 support: SMTPUTF8 and BODY=8BITMIME added", () => {
    const m = msg("From: jörg@bücher.example\r\nTo: b@example.com\r\nSubject: Grüße\r\n")
    const r = Either.getOrThrow(Message.prepareSend(m, { smtpUtf8: true, mailOptions: ["RET=HDRS"] }))
    assert.deepStrictEqual(r.mailOptions, ["RET=HDRS", "SMTPUTF8", "BODY=8BITMIME"])
    assert.isTrue(r.envelope.international)
    assert.strictEqual(r.from, "jörg@bücher.example")
    assert.include(dec.decode(r.data as Uint8Array), "Subject: Grüße\r\n")
  })

  it("ASCII envelope: no options added, whether or not the server has SMTPUTF8", () => {
    const m = msg("From: a@example.com\r\nTo: b@example.com\r\n")
    for (const smtpUtf8 of [true, false]) {
      assert.deepStrictEqual(Either.getOrThrow(Message.prepareSend(m, { smtpUtf8 })).mailOptions, [])
    }
  })

  it("raw UTF-8 headers with ASCII addresses: SMTPUTF8 when the server has it, smtplib's behaviour otherwise", () => {
    const m = msg("From: Jörg <a@example.com>\r\nTo: b@example.com\r\n")
    assert.isTrue(Message.needsSmtpUtf8(m))
    assert.deepStrictEqual(Either.getOrThrow(Message.prepareSend(m, { smtpUtf8: true })).mailOptions, [
      "SMTPUTF8",
      "BODY=8BITMIME"
    ])
    assert.deepStrictEqual(Either.getOrThrow(Message.prepareSend(m, { smtpUtf8: false })).mailOptions, [])
    assert.isFalse(Message.needsSmtpUtf8(msg("From: a@example.com\r\nBcc: Zoë <z@example.com>\r\n")))
  })

  it("does not add options the caller already gave", () => {
    const m = msg("From: jörg@bücher.example\r\n")
    const r = Either.getOrThrow(Message.prepareSend(m, { smtpUtf8: true, mailOptions: ["smtputf8", "BODY=8BITMIME"] }))
    assert.deepStrictEqual(r.mailOptions, ["smtputf8", "BODY=8BITMIME"])
  })

  it("two Resent-* blocks: SmtpInvalidInput", () => {
    const m = msg("Resent-Date: a\r\nResent-Date: b\r\nFrom: a@example.com\r\n")
    const r = Message.prepareSend(m, { smtpUtf8: true })
    assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput")
  })

  it("a hand-built message with a line break that is not a fold: SmtpInvalidInput", () => {
    const m: Message.Message = {
      headers: [{ name: "From", value: " a@example.com" }, { name: "Subject", value: " x\r\nBcc: evil@example.com" }],
      body: new Uint8Array(0)
    }
    const r = Message.prepareSend(m, { smtpUtf8: false })
    assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput")
    const bad: Message.Message = { headers: [{ name: "Bad Name", value: " x" }], body: new Uint8Array(0) }
    assert.isTrue(Either.isLeft(Message.prepareSend(bad, { smtpUtf8: false, from: "a@b.c", to: "c@d.e" })))
  })

  it.scoped("a Stream body stays a Stream", () =>
    Effect.gen(function*() {
      const source = Stream.make(
        new TextEncoder().encode("From: a@example.com\nTo: b@example.com\nBcc: c@example.com\n\nline\n")
      )
      const m = yield* Message.parseStream(source)
      const r = Either.getOrThrow(Message.prepareSend(m, { smtpUtf8: false }))
      assert.isFalse(r.data instanceof Uint8Array)
      assert.deepStrictEqual(r.to, ["b@example.com", "c@example.com"])
      assert.strictEqual(yield* collect(r.data), "From: a@example.com\r\nTo: b@example.com\r\n\r\nline\r\n")
    }))
})
