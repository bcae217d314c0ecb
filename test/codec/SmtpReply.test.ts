import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, FastCheck, Hash, Schema } from "effect"
import { SmtpRecipientsRefused } from "../../src/SmtpError.js"
import * as SmtpReply from "../../src/SmtpReply.js"

const decoded = (raw: ReadonlyArray<string>): { readonly code: number; readonly lines: ReadonlyArray<string> } => {
  const result = SmtpReply.fromLines(raw)
  if (Either.isLeft(result)) throw new Error(`expected a reply, got: ${result.left}`)
  assert.instanceOf(result.right, SmtpReply.SmtpReply)
  return { code: result.right.code, lines: result.right.lines }
}

const refused = (raw: ReadonlyArray<string>): string => {
  const result = SmtpReply.fromLines(raw)
  if (Either.isRight(result)) throw new Error(`expected a Left, got ${result.right.toString()}`)
  return result.left
}

const reply = (raw: ReadonlyArray<string>): SmtpReply.SmtpReply => Either.getOrThrow(SmtpReply.fromLines(raw))

describe("SmtpReply", () => {
  describe("fromLines: valid replies", () => {
    it("decodes a single line", () => {
      assert.deepStrictEqual(decoded(["250 ok"]), { code: 250, lines: ["ok"] })
    })

    it("decodes a multi-line reply", () => {
      assert.deepStrictEqual(decoded(["250-mx.test", "250-PIPELINING", "250 SIZE 10485760"]), {
        code: 250,
        lines: ["mx.test", "PIPELINING", "SIZE 10485760"]
      })
    })

    it("decodes \"250\" alone as empty text", () => {
      assert.deepStrictEqual(decoded(["250"]), { code: 250, lines: [""] })
    })

    it("decodes \"250 \" (smtp-sink's last EHLO line) as empty text", () => {
      assert.deepStrictEqual(decoded(["250 "]), { code: 250, lines: [""] })
      assert.deepStrictEqual(decoded(["250-sink", "250-PIPELINING", "250 "]), {
        code: 250,
        lines: ["sink", "PIPELINING", ""]
      })
    })

    it("accepts a bare code as the last line of a multi-line reply", () => {
      assert.deepStrictEqual(decoded(["250-a", "250"]), { code: 250, lines: ["a", ""] })
    })

    it("accepts \"250-\" (empty continuation line)", () => {
      assert.deepStrictEqual(decoded(["250-", "250 b"]), { code: 250, lines: ["", "b"] })
    })

    it("accepts the bounds of the code range 100..599 (RFC 5321 §4.2)", () => {
      assert.deepStrictEqual(decoded(["100 x"]), { code: 100, lines: ["x"] })
      assert.deepStrictEqual(decoded(["200 x"]), { code: 200, lines: ["x"] })
      assert.deepStrictEqual(decoded(["599 x"]), { code: 599, lines: ["x"] })
    })

    it("decodes a 1yz reply (a positive preliminary reply) like any other", () => {
      assert.deepStrictEqual(decoded(["199 no hello for you!"]), { code: 199, lines: ["no hello for you!"] })
      assert.deepStrictEqual(decoded(["150-a", "150 b"]), { code: 150, lines: ["a", "b"] })
    })

    it("trims spaces and tabs around the text of each line, like smtplib", () => {
      assert.deepStrictEqual(decoded(["250-  a b  ", "250 \t c\t"]), { code: 250, lines: ["a b", "c"] })
    })

    it("trims a stray CR at the end of a line, like smtplib's strip(b' \\t\\r\\n')", () => {
      // the decoder leaves "250 ok\r" for "250 ok\r\r\n"; smtplib's text would be "ok"
      assert.deepStrictEqual(decoded(["250 ok \r"]), { code: 250, lines: ["ok"] })
    })

    it("keeps UTF-8 text", () => {
      assert.deepStrictEqual(decoded(["250 café 日本 𝄞"]), { code: 250, lines: ["café 日本 𝄞"] })
    })

    it("keeps a hyphen inside the text", () => {
      assert.deepStrictEqual(decoded(["250 - x"]), { code: 250, lines: ["- x"] })
    })
  })

  describe("fromLines: malformed replies", () => {
    it("refuses no lines", () => {
      assert.strictEqual(refused([]), "a reply has at least one line")
    })

    it("refuses a code below 100", () => {
      assert.strictEqual(refused(["099 x"]), "reply code 099 is outside 100..599")
      assert.strictEqual(refused(["000 x"]), "reply code 000 is outside 100..599")
    })

    it("refuses a code above 599", () => {
      assert.strictEqual(refused(["600 x"]), "reply code 600 is outside 100..599")
      assert.strictEqual(refused(["999 x"]), "reply code 999 is outside 100..599")
    })

    it("refuses a line without a 3-digit code", () => {
      assert.strictEqual(refused(["abc"]), "line 1 does not start with a 3-digit code")
      assert.strictEqual(refused(["25 ok"]), "line 1 does not start with a 3-digit code")
      assert.strictEqual(refused([" 250 ok"]), "line 1 does not start with a 3-digit code")
      assert.strictEqual(refused([""]), "line 1 does not start with a 3-digit code")
      assert.strictEqual(refused(["250-a", "x50 b"]), "line 2 does not start with a 3-digit code")
    })

    it("refuses non-ASCII digits", () => {
      assert.strictEqual(refused(["２５０ ok"]), "line 1 does not start with a 3-digit code")
    })

    it("refuses inconsistent codes across lines", () => {
      assert.strictEqual(refused(["250-a", "251 b"]), "line 2 has code 251, the reply started with 250")
      assert.strictEqual(refused(["250-a", "250-b", "550 c"]), "line 3 has code 550, the reply started with 250")
    })

    it("refuses a missing separator", () => {
      assert.strictEqual(refused(["250abc"]), "line 1 has no separator after the code")
      assert.strictEqual(refused(["2500 x"]), "line 1 has no separator after the code")
      assert.strictEqual(refused(["250\tx"]), "line 1 has no separator after the code")
    })

    it("refuses a continuation line as the last line", () => {
      assert.strictEqual(refused(["250-a"]), "the last line is a continuation line")
      assert.strictEqual(refused(["250-a", "250-b"]), "the last line is a continuation line")
    })

    it("refuses a final line before the last", () => {
      assert.strictEqual(refused(["250 a", "250 b"]), "line 1 is not a continuation line")
      assert.strictEqual(refused(["250-a", "250", "250 c"]), "line 2 is not a continuation line")
    })
  })

  describe("FromLines schema", () => {
    it("decodes with Schema.decodeUnknownSync", () => {
      const r = Schema.decodeUnknownSync(SmtpReply.FromLines)(["354 go ahead"])
      assert.strictEqual(r.code, 354)
      assert.deepStrictEqual(r.lines, ["go ahead"])
    })

    it("fails with a ParseError on a malformed reply", () => {
      const result = Schema.decodeUnknownEither(SmtpReply.FromLines)(["600 x"])
      assert.isTrue(Either.isLeft(result))
    })

    it("refuses a non-array input", () => {
      assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(SmtpReply.FromLines)("250 ok")))
    })

    it("encodes back to raw lines", () => {
      assert.deepStrictEqual(Schema.encodeSync(SmtpReply.FromLines)(SmtpReply.make(250, "a\nb\nc")), [
        "250-a",
        "250-b",
        "250 c"
      ])
      assert.deepStrictEqual(Schema.encodeSync(SmtpReply.FromLines)(SmtpReply.make(221)), ["221 "])
    })
  })

  describe("enhancedCode", () => {
    it("reads the enhanced code of a 550", () => {
      assert.strictEqual(reply(["550 5.1.1 <x@y>: Recipient address rejected"]).enhancedCode, "5.1.1")
    })

    it("reads 2.0.0 on a 250", () => {
      assert.strictEqual(reply(["250 2.0.0 Ok: queued as 12345"]).enhancedCode, "2.0.0")
    })

    it("reads a transient code on a 451", () => {
      assert.strictEqual(reply(["451 4.7.1 Try again later"]).enhancedCode, "4.7.1")
    })

    it("is undefined when the class does not match the reply code", () => {
      assert.strictEqual(reply(["250 5.1.1 odd"]).enhancedCode, undefined)
      assert.strictEqual(reply(["550 2.0.0 odd"]).enhancedCode, undefined)
    })

    it("is undefined without an enhanced code", () => {
      assert.strictEqual(reply(["250 ok"]).enhancedCode, undefined)
      assert.strictEqual(reply(["250"]).enhancedCode, undefined)
    })

    it("is undefined on a 3yz reply (RFC 3463 has no class 3)", () => {
      assert.strictEqual(reply(["354 3.0.0 go"]).enhancedCode, undefined)
    })

    it("takes the code alone as the whole text", () => {
      assert.strictEqual(reply(["550 5.7.1"]).enhancedCode, "5.7.1")
    })

    it("accepts three-digit subject and detail", () => {
      assert.strictEqual(reply(["550 5.123.456 x"]).enhancedCode, "5.123.456")
    })

    it("refuses four-digit parts and codes glued to text", () => {
      assert.strictEqual(reply(["550 5.1.1000 x"]).enhancedCode, undefined)
      assert.strictEqual(reply(["550 5.1.1x"]).enhancedCode, undefined)
      assert.strictEqual(reply(["550 5.1.1. x"]).enhancedCode, undefined)
      assert.strictEqual(reply(["550 5.1 x"]).enhancedCode, undefined)
    })

    it("reads only the first line of a multi-line reply", () => {
      assert.strictEqual(reply(["550-5.1.1 The account", "550 5.1.1 does not exist"]).enhancedCode, "5.1.1")
      assert.strictEqual(reply(["550-No such user", "550 5.1.1 really"]).enhancedCode, undefined)
    })

    it("is found after the leading blanks that trimming removed", () => {
      assert.strictEqual(reply(["550   5.1.1 x"]).enhancedCode, "5.1.1")
    })

    it("parseEnhancedCode on raw text", () => {
      assert.strictEqual(SmtpReply.parseEnhancedCode(421, "4.4.2 timeout"), "4.4.2")
      assert.strictEqual(SmtpReply.parseEnhancedCode(421, "5.4.2 timeout"), undefined)
      assert.strictEqual(SmtpReply.parseEnhancedCode(250, "2.1.5\tok"), "2.1.5")
      assert.strictEqual(SmtpReply.parseEnhancedCode(250, " 2.1.5 ok"), undefined)
    })
  })

  describe("text and toString", () => {
    it("joins the lines with \"\\n\"", () => {
      assert.strictEqual(
        reply(["250-mx.test", "250-PIPELINING", "250 SIZE 1000"]).text,
        "mx.test\nPIPELINING\nSIZE 1000"
      )
      assert.strictEqual(reply(["250 ok"]).text, "ok")
      assert.strictEqual(reply(["250"]).text, "")
    })

    it("toString gives the wire form without the final CRLF", () => {
      assert.strictEqual(reply(["250-a", "250-b", "250 c"]).toString(), "250-a\r\n250-b\r\n250 c")
      assert.strictEqual(reply(["221 bye"]).toString(), "221 bye")
      assert.strictEqual(reply(["250"]).toString(), "250 ")
    })

    it.prop(
      "toString round-trips through fromLines",
      [
        FastCheck.integer({ min: 200, max: 599 }),
        FastCheck.array(
          FastCheck.stringMatching(/^([!-~]([ -~]*[!-~])?)?$/).filter((s) => s.length <= 60),
          { minLength: 1, maxLength: 6 }
        )
      ],
      ([code, lines]) => {
        const original = new SmtpReply.SmtpReply({ code, lines })
        const again = reply(original.toString().split("\r\n"))
        assert.strictEqual(again.code, code)
        assert.deepStrictEqual(again.lines, lines)
        assert.strictEqual(again.text, original.text)
        assert.strictEqual(again.toString(), original.toString())
      }
    )
  })

  describe("classification", () => {
    const classes = (code: number) => {
      const r = SmtpReply.make(code, "x")
      return [r.isPositive, r.isIntermediate, r.isTransient, r.isPermanent]
    }

    it("1yz is preliminary, and nothing else", () => {
      assert.deepStrictEqual(classes(100), [false, false, false, false])
      assert.deepStrictEqual(classes(199), [false, false, false, false])
      assert.isTrue(SmtpReply.make(100).isPreliminary)
      assert.isTrue(SmtpReply.make(199).isPreliminary)
      assert.isFalse(SmtpReply.make(200).isPreliminary)
      assert.isFalse(SmtpReply.make(554).isPreliminary)
    })

    it("2yz is positive", () => {
      assert.deepStrictEqual(classes(200), [true, false, false, false])
      assert.deepStrictEqual(classes(250), [true, false, false, false])
      assert.deepStrictEqual(classes(299), [true, false, false, false])
    })

    it("3yz is intermediate", () => {
      assert.deepStrictEqual(classes(300), [false, true, false, false])
      assert.deepStrictEqual(classes(334), [false, true, false, false])
      assert.deepStrictEqual(classes(354), [false, true, false, false])
      assert.deepStrictEqual(classes(399), [false, true, false, false])
    })

    it("4yz is transient", () => {
      assert.deepStrictEqual(classes(400), [false, false, true, false])
      assert.deepStrictEqual(classes(421), [false, false, true, false])
      assert.deepStrictEqual(classes(499), [false, false, true, false])
    })

    it("5yz is permanent", () => {
      assert.deepStrictEqual(classes(500), [false, false, false, true])
      assert.deepStrictEqual(classes(550), [false, false, false, true])
      assert.deepStrictEqual(classes(599), [false, false, false, true])
    })
  })

  describe("make", () => {
    it("splits the text on \"\\n\"", () => {
      const r = SmtpReply.make(250, "mx.test\nPIPELINING")
      assert.strictEqual(r.code, 250)
      assert.deepStrictEqual(r.lines, ["mx.test", "PIPELINING"])
      assert.strictEqual(r.toString(), "250-mx.test\r\n250 PIPELINING")
    })

    it("defaults to empty text", () => {
      const r = SmtpReply.make(250)
      assert.deepStrictEqual(r.lines, [""])
      assert.strictEqual(r.text, "")
    })

    it("does not trim", () => {
      assert.deepStrictEqual(SmtpReply.make(250, " a ").lines, [" a "])
    })

    it("throws on a code outside 100..599 or not an integer", () => {
      assert.strictEqual(SmtpReply.make(199).code, 199)
      assert.throws(() => SmtpReply.make(99))
      assert.throws(() => SmtpReply.make(600))
      assert.throws(() => SmtpReply.make(250.5))
    })

    it("builds the same reply as fromLines", () => {
      const a = SmtpReply.make(550, "5.1.1 no\nsuch user")
      const b = reply(["550-5.1.1 no", "550 such user"])
      assert.strictEqual(a.code, b.code)
      assert.deepStrictEqual(a.lines, b.lines)
      assert.strictEqual(a.enhancedCode, "5.1.1")
    })
  })

  describe("raw bytes", () => {
    const latin1 = new TextDecoder("latin1")
    // "220-mx.test Grüße\r\n220 prêt\r\n" in ISO-8859-1
    const banner = new Uint8Array([
      ...new TextEncoder().encode("220-mx.test Gr"),
      0xfc,
      0xdf,
      ...new TextEncoder().encode("e\r\n220 pr"),
      0xea,
      ...new TextEncoder().encode("t \r\n")
    ])
    const decodedBanner = reply(["220-mx.test Gr\uFFFD\uFFFDe", "220 pr\uFFFDt "])
    const withRaw = Either.getOrThrow(SmtpReply.fromLines(["220-mx.test Gr\uFFFD\uFFFDe", "220 pr\uFFFDt "], banner))

    it("fromLines keeps the bytes given as raw, beside the UTF-8 lines", () => {
      assert.strictEqual(withRaw.raw, banner)
      assert.deepStrictEqual(withRaw.lines, ["mx.test Gr\uFFFD\uFFFDe", "pr\uFFFDt"])
      assert.strictEqual(decodedBanner.raw, undefined)
      assert.strictEqual(SmtpReply.make(250, "ok").raw, undefined)
    })

    it("decodeLines and decodeText decode the raw bytes with another charset, trimmed as lines are", () => {
      assert.deepStrictEqual(withRaw.decodeLines(latin1), ["mx.test Grüße", "prêt"])
      assert.strictEqual(withRaw.decodeText(latin1), "mx.test Grüße\nprêt")
    })

    it("decodeLines handles bare LF, a bare code and an empty continuation line", () => {
      const raw = new TextEncoder().encode("250-\n250-  a \r\n250\r\n")
      const r = Either.getOrThrow(SmtpReply.fromLines(["250-", "250-  a ", "250"], raw))
      assert.deepStrictEqual(r.decodeLines(latin1), ["", "a", ""])
      assert.deepStrictEqual(r.decodeLines(new TextDecoder()), r.lines)
    })

    it("decodeLines without raw bytes gives the lines", () => {
      assert.deepStrictEqual(SmtpReply.make(250, "a\nb").decodeLines(latin1), ["a", "b"])
    })

    it("Equal: same code, lines and raw bytes; Hash agrees", () => {
      const again = Either.getOrThrow(
        SmtpReply.fromLines(["220-mx.test Gr\uFFFD\uFFFDe", "220 pr\uFFFDt "], banner.slice())
      )
      assert.isTrue(Equal.equals(withRaw, again))
      assert.strictEqual(Hash.hash(withRaw), Hash.hash(again))
      assert.isTrue(Equal.equals(SmtpReply.make(250, "a\nb"), SmtpReply.make(250, "a\nb")))
      const other = banner.slice()
      other[14] = 0xfb
      // the same UTF-8 lines (U+FFFD) from different bytes: not the same reply
      const different = Either.getOrThrow(SmtpReply.fromLines(["220-mx.test Gr\uFFFD\uFFFDe", "220 pr\uFFFDt "], other))
      assert.isFalse(Equal.equals(withRaw, different))
      assert.isFalse(Equal.equals(withRaw, decodedBanner))
      assert.isFalse(Equal.equals(SmtpReply.make(250, "a"), SmtpReply.make(251, "a")))
      assert.isFalse(Equal.equals(SmtpReply.make(250, "a"), SmtpReply.make(250, "b")))
    })

    it("Schema encoding: the raw bytes as Base64, through JSON and back to an Equal reply", () => {
      const encoded = Schema.encodeSync(SmtpReply.SmtpReply)(withRaw)
      assert.deepStrictEqual(encoded, {
        code: 220,
        lines: ["mx.test Gr\uFFFD\uFFFDe", "pr\uFFFDt"],
        raw: Buffer.from(banner).toString("base64")
      })
      const back = Schema.decodeUnknownSync(SmtpReply.SmtpReply)(JSON.parse(JSON.stringify(encoded)))
      assert.isTrue(Equal.equals(back, withRaw))
      assert.deepStrictEqual(Schema.encodeSync(SmtpReply.SmtpReply)(SmtpReply.make(250, "ok")), {
        code: 250,
        lines: ["ok"]
      })
    })

    it("an error carrying replies encodes and decodes with their raw bytes", () => {
      const error = new SmtpRecipientsRefused({ recipients: { "a@x.test": withRaw } })
      const json = JSON.stringify(Schema.encodeSync(SmtpRecipientsRefused)(error))
      const back = Schema.decodeUnknownSync(SmtpRecipientsRefused)(JSON.parse(json))
      assert.isTrue(Equal.equals(back.recipients["a@x.test"], withRaw))
    })
  })
})
