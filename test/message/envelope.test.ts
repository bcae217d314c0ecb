import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { spawnSync } from "node:child_process"
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
    rule: "a sender without a domain (cron's From: root)",
    headers: "From: root (Cron Daemon)\r\nTo: root\r\n",
    expected: { from: "root", to: ["root"] }
  },
  {
    rule: "an empty group as the sender: no address",
    headers: "From: undisclosed-recipients:;\r\nTo: root\r\n",
    expected: { error: "The From header holds no address" }
  },
  {
    rule: "<> as the sender: SmtpInvalidInput (a null sender is given explicitly, from: \"\")",
    headers: "From: <>\r\nTo: root\r\n",
    expected: { error: "The From header is not a valid address list (address 1: an empty address (<>))" }
  },
  {
    rule: "Resent-To with a bare name",
    headers: "From: a@example.com\r\nResent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nResent-From: root\r\n" +
      "Resent-To: Eric Idle <eric>, Jeff\r\n",
    expected: { from: "root", to: ["eric", "Jeff"], resent: true }
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

/**
 * One address-list header value and the envelope addresses it gives: what smtplib sends (its
 * `getaddresses` then `quoteaddr`, without the angle brackets) unless `smtplib` says otherwise,
 * which marks a deliberate difference (README). `error` is the refusal's reason after "The To
 * header is not a valid address list ".
 */
interface Row {
  readonly value: string
  readonly rcpt?: ReadonlyArray<string>
  readonly error?: string
  /** What smtplib sends where effect-smtp deliberately does otherwise. */
  readonly smtplib?: ReadonlyArray<string>
}

const getaddressesTable: ReadonlyArray<Row> = [
  // bare local parts: a local MTA appends its domain
  { value: "root", rcpt: ["root"] },
  { value: "John, Dinsdale", rcpt: ["John", "Dinsdale"] },
  { value: "a.b", rcpt: ["a.b"] },
  { value: "jörg", rcpt: ["jörg"] },
  // display names, with or without a domain
  { value: "Eric Idle <eric>, Jeff", rcpt: ["eric", "Jeff"] },
  { value: "Cron Daemon <root>", rcpt: ["root"] },
  { value: "<root>", rcpt: ["root"] },
  { value: "\"Doe, John\" <john>", rcpt: ["john"] },
  { value: "John Q. Public <jqp@x.test>", rcpt: ["jqp@x.test"] },
  { value: "=?utf-8?q?J=C3=B6rg?= <j@x.test>", rcpt: ["j@x.test"] },
  // comments
  { value: "root (Cron Daemon)", rcpt: ["root"] },
  { value: "root@localhost (Cron Daemon)", rcpt: ["root@localhost"] },
  { value: "(lead) a@x.test (tail), (c) b (d)", rcpt: ["a@x.test", "b"] },
  // groups
  { value: "Team: root, admin;", rcpt: ["root", "admin"] },
  { value: "Team: root, admin", rcpt: ["root", "admin"] },
  { value: "Team: x@x.test, \"Y Y\" <y@x.test>;, z@x.test (Zed)", rcpt: ["x@x.test", "y@x.test", "z@x.test"] },
  { value: "g: a; h: b;", rcpt: ["a", "b"] },
  { value: "undisclosed-recipients:;", rcpt: [], smtplib: [""] },
  // quoted local parts
  { value: "\"root\"", rcpt: ["root"] },
  { value: "<\"root\">", rcpt: ["root"] },
  { value: "\"quoted local\"@example.com", rcpt: ["\"quoted local\"@example.com"] },
  { value: "\"john\"@example.com", rcpt: ["\"john\"@example.com"] },
  { value: "\"a\\\"b\"@x.test", rcpt: ["\"a\\\"b\"@x.test"] },
  { value: "\"a b\"", rcpt: ["\"a b\""], smtplib: ["a"] },
  // other forms getaddresses takes
  { value: "john . doe@x.test", rcpt: ["john.doe@x.test"] },
  { value: "a..b@docomo.ne.jp", rcpt: ["a..b@docomo.ne.jp"] },
  { value: "a.@docomo.ne.jp", rcpt: ["a.@docomo.ne.jp"] },
  { value: "a@[192.0.2.1]", rcpt: ["a@[192.0.2.1]"] },
  { value: "jörg@bücher.example", rcpt: ["jörg@bücher.example"] },
  { value: "<@relay.test:a@x.test>", rcpt: ["a@x.test"] },
  { value: "a@x.test,", rcpt: ["a@x.test"] },
  { value: "a@x.test, , b@x.test", rcpt: ["a@x.test", "b@x.test"], smtplib: ["a@x.test", "", "b@x.test"] },
  { value: "", rcpt: [] },
  // what cannot be an address: refused, where smtplib sends its guess
  { value: "Foo Bar", error: "(address 1: several words and no address)", smtplib: ["Foo"] },
  { value: "a, Foo Bar", error: "(address 2: several words and no address)", smtplib: ["a", "Foo"] },
  { value: "Team: a, Foo Bar;", error: "(address 2: several words and no address)", smtplib: ["a", "Foo"] },
  {
    value: "John Smith john@example.com",
    error: "(address 1: several words before \"@\")",
    smtplib: ["John Smith john@example.com"]
  },
  { value: "Foo <a b>", error: "(address 1: several words between \"<\" and \">\")", smtplib: ["a"] },
  { value: "<>", error: "(address 1: an empty address (<>))", smtplib: [""] },
  { value: "\"\"", error: "(address 1: an empty address)", smtplib: [""] },
  { value: "<<broken", error: "(address 1: no address between \"<\" and \">\")", smtplib: ["", "broken"] },
  { value: "a@x.test c", error: "(address 1: something after the address)", smtplib: ["a@x.testc"] },
  { value: "a <b> <c>", error: "(address 1: something after the address)", smtplib: ["b", "c"] },
  { value: "a@b@c", error: "(address 1: something after the address)", smtplib: ["", "@c"] },
  { value: "a@", error: "(address 1: no domain after \"@\")", smtplib: [""] },
  { value: "@x", error: "(address 1: no address)", smtplib: ["@x"] },
  { value: ".", error: "(address 1: no address)", smtplib: ["."] },
  { value: "[1.2.3.4]", error: "(address 1: no address)", smtplib: ["", "1.2.3.4", ""] },
  { value: "a@b..c", error: "(address 1: a domain with an empty label)", smtplib: ["a@b..c"] },
  { value: "a@b.", error: "(address 1: a domain with an empty label)", smtplib: ["a@b."] },
  { value: "\"unterminated", error: "(address 1: an unterminated quoted string)", smtplib: ["unterminated"] },
  { value: "a (unterminated", error: "(address 1: an unterminated comment)", smtplib: ["a"] },
  {
    value: "a@x.test; b@x.test",
    error: "(address 1: a \";\" outside a group (addresses are separated by \",\"))",
    smtplib: ["a@x.test", "", "b@x.test"]
  },
  { value: "g: h: a;;", error: "(address 1: a group inside a group)", smtplib: ["a"] },
  { value: "a)b", error: "(address 1: a stray \")\")", smtplib: ["a", "", "b"] },
  { value: "a\u0000b", error: "(address 1: a control character)", smtplib: ["a\u0000b"] },
  {
    value: "ok@x.test, \"a\\\u0001\"@x.test",
    error: "(address 2: a control character)",
    smtplib: ["ok@x.test", "\"a\u0001\"@x.test"]
  }
]

describe("envelope addresses: smtplib's getaddresses, less its guesses", () => {
  for (const row of getaddressesTable) {
    it(`To: ${JSON.stringify(row.value)}`, () => {
      const result = Message.envelope(msg(`From: a@x.test\r\n${row.value === "" ? "" : `To: ${row.value}\r\n`}`))
      if (row.error !== undefined) {
        assert.isTrue(Either.isLeft(result), "expected SmtpInvalidInput")
        if (Either.isLeft(result)) {
          assert.strictEqual(result.left.reason, `The To header is not a valid address list ${row.error}`)
        }
      } else {
        assert.deepStrictEqual(Either.getOrThrow(result).to, row.rcpt)
      }
    })
  }

  it("the same addresses as the sender (the first one)", () => {
    for (const row of getaddressesTable) {
      if (row.rcpt === undefined || row.rcpt.length === 0) continue
      const result = Message.envelope(msg(`From: ${row.value}\r\n`))
      assert.strictEqual(Either.getOrThrow(result).from, row.rcpt[0], row.value)
    }
  })

  // the smtplib column is CPython's: checked here when python3 is on the machine (the lax parser:
  // Python 3.13's strict mode turns some of these lists into a single "" as well)
  const python = spawnSync("python3", ["--version"])
  it.skipIf(python.error !== undefined || python.status !== 0)("the smtplib column is what CPython sends", () => {
    const script = [
      "import json, sys, smtplib, email.utils",
      "def ga(v):",
      "    try: return email.utils.getaddresses([v], strict=False)",
      "    except TypeError: return email.utils.getaddresses([v])",
      "rows = json.load(sys.stdin)",
      "print(json.dumps([[smtplib.quoteaddr(a)[1:-1] for (n, a) in ga(v)] if v else [] for v in rows]))"
    ].join("\n")
    const out = spawnSync("python3", ["-c", script], {
      input: JSON.stringify(getaddressesTable.map((r) => r.value)),
      encoding: "utf8"
    })
    assert.strictEqual(out.status, 0, out.stderr)
    const sent: Array<Array<string>> = JSON.parse(out.stdout)
    getaddressesTable.forEach((row, i) => {
      assert.deepStrictEqual(sent[i], row.smtplib ?? row.rcpt, row.value)
    })
  })
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
