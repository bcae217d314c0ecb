import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as Command from "../../src/internal/command.js"
import { SmtpInvalidInput } from "../../src/SmtpError.js"

const decoder = new TextDecoder()

const ok = (...args: Parameters<typeof Command.encode>): Command.Command => {
  const result = Command.encode(...args)
  if (Either.isLeft(result)) throw new Error(`expected a command, got: ${result.left.message}`)
  return result.right
}

const wire = (...args: Parameters<typeof Command.encode>): string => decoder.decode(ok(...args).bytes)

const refused = (...args: Parameters<typeof Command.encode>): SmtpInvalidInput => {
  const result = Command.encode(...args)
  if (Either.isRight(result)) throw new Error(`expected a Left, got ${JSON.stringify(result.right.display)}`)
  assert.instanceOf(result.left, SmtpInvalidInput)
  assert.strictEqual(result.left._tag, "SmtpInvalidInput")
  return result.left
}

describe("command", () => {
  describe("encode", () => {
    it("encodes a verb without arguments", () => {
      const c = ok("NOOP")
      assert.deepStrictEqual(c.bytes, new Uint8Array([0x4e, 0x4f, 0x4f, 0x50, 0x0d, 0x0a]))
      assert.strictEqual(c.verb, "NOOP")
      assert.strictEqual(c.display, "NOOP")
    })

    it("treats undefined and empty arguments alike", () => {
      assert.strictEqual(wire("RSET", undefined), "RSET\r\n")
      assert.strictEqual(wire("RSET", ""), "RSET\r\n")
      assert.strictEqual(ok("RSET", "").display, "RSET")
    })

    it("encodes a verb with arguments, separated by one space", () => {
      const c = ok("MAIL", "FROM:<a@x.test> SIZE=5")
      assert.strictEqual(decoder.decode(c.bytes), "MAIL FROM:<a@x.test> SIZE=5\r\n")
      assert.strictEqual(c.verb, "MAIL")
      assert.strictEqual(c.display, "MAIL FROM:<a@x.test> SIZE=5")
    })

    it("encodes the exact bytes of EHLO, RCPT, DATA, QUIT and BDAT", () => {
      assert.strictEqual(wire("EHLO", "client.test"), "EHLO client.test\r\n")
      assert.strictEqual(wire("RCPT", "TO:<b@x.test>"), "RCPT TO:<b@x.test>\r\n")
      assert.strictEqual(wire("DATA"), "DATA\r\n")
      assert.strictEqual(wire("QUIT"), "QUIT\r\n")
      assert.strictEqual(wire("BDAT", "1024 LAST"), "BDAT 1024 LAST\r\n")
    })

    it("sends the verb as given but names it upper-case", () => {
      const c = ok("ehlo", "client.test")
      assert.strictEqual(decoder.decode(c.bytes), "ehlo client.test\r\n")
      assert.strictEqual(c.verb, "EHLO")
    })

    it("names a verb given together with its arguments by its first word", () => {
      const c = ok("auth plain")
      assert.strictEqual(c.verb, "AUTH")
      assert.strictEqual(decoder.decode(c.bytes), "auth plain\r\n")
    })

    it("keeps argument spacing unchanged", () => {
      assert.strictEqual(wire("HELP", " a  b "), "HELP  a  b \r\n")
    })

    it("uses the display override for the transcript and leaves the bytes alone", () => {
      const c = ok("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==", { display: "AUTH PLAIN ********" })
      assert.strictEqual(decoder.decode(c.bytes), "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
      assert.strictEqual(c.display, "AUTH PLAIN ********")
      assert.strictEqual(c.verb, "AUTH")
    })

    it("accepts an empty display override", () => {
      assert.strictEqual(ok("NOOP", undefined, { display: "" }).display, "")
    })

    it("accepts every other ASCII control character", () => {
      assert.strictEqual(wire("X", "a\tb\x7f\x01"), "X a\tb\x7f\x01\r\n")
    })
  })

  describe("encode: line breaks and NUL", () => {
    const cases: ReadonlyArray<readonly [string, string, string | undefined]> = [
      ["CR in args", "MAIL", "FROM:<a@b>\rRCPT TO:<c@d>"],
      ["LF in args", "MAIL", "FROM:<a@b>\nRCPT TO:<c@d>"],
      ["CRLF in args", "MAIL", "FROM:<a@b>\r\nRCPT TO:<c@d>"],
      ["CRLF at the end of args", "RCPT", "TO:<a@b>\r\n"],
      ["CR at the start of args", "VRFY", "\rx"],
      ["CR in the verb", "NO\rOP", undefined],
      ["LF in the verb", "NOOP\n", undefined],
      ["CRLF in the verb", "NOOP\r\nQUIT", undefined],
      ["CRLF in the verb, with args", "HELP\r\n", "x"]
    ]

    for (const [name, verb, args] of cases) {
      it(`refuses ${name}: nothing was sent`, () => {
        const e = refused(verb, args)
        assert.include(e.message, "CR or LF")
        assert.include(e.message, "nothing was sent")
      })
    }

    it("refuses a line break even with the utf8 option", () => {
      assert.include(refused("MAIL", "FROM:<é@b>\r\n", { utf8: true }).message, "nothing was sent")
    })

    it("does not put the arguments in the message (they may be secret)", () => {
      const e = refused("AUTH", "PLAIN c2VjcmV0\r\n")
      assert.notInclude(e.message, "c2VjcmV0")
    })

    const nulCases: ReadonlyArray<readonly [string, string, string | undefined]> = [
      ["NUL in args", "MAIL", "FROM:<a@b>\0"],
      ["NUL at the start of args", "HELO", "\0x"],
      ["NUL in the verb", "NO\0OP", undefined]
    ]

    for (const [name, verb, args] of nulCases) {
      it(`refuses ${name}: nothing was sent`, () => {
        const e = refused(verb, args)
        assert.include(e.message, "NUL")
        assert.include(e.message, "nothing was sent")
      })
    }
  })

  describe("encode: non-ASCII", () => {
    it("refuses non-ASCII arguments without the utf8 option", () => {
      const e = refused("MAIL", "FROM:<andré@x.test>")
      assert.include(e.message, "SMTPUTF8")
      assert.include(e.message, "MAIL")
    })

    it("refuses non-ASCII with utf8: false", () => {
      assert.include(refused("RCPT", "TO:<日本@x.test>", { utf8: false }).message, "SMTPUTF8")
    })

    it("refuses a non-ASCII verb", () => {
      assert.include(refused("NÖOP").message, "SMTPUTF8")
    })

    it("encodes non-ASCII as UTF-8 with the utf8 option", () => {
      const c = ok("MAIL", "FROM:<é@x> SMTPUTF8", { utf8: true })
      assert.deepStrictEqual(
        c.bytes,
        new Uint8Array([
          ...new TextEncoder().encode("MAIL FROM:<"),
          0xc3,
          0xa9,
          ...new TextEncoder().encode("@x> SMTPUTF8\r\n")
        ])
      )
      assert.strictEqual(c.display, "MAIL FROM:<é@x> SMTPUTF8")
    })

    it("encodes a four-byte character with the utf8 option", () => {
      assert.deepStrictEqual(
        ok("RCPT", "TO:<𝄞@x>", { utf8: true }).bytes,
        new Uint8Array([...new TextEncoder().encode("RCPT TO:<"), 0xf0, 0x9d, 0x84, 0x9e, 0x40, 0x78, 0x3e, 0x0d, 0x0a])
      )
    })
  })

  describe("isAscii", () => {
    it("tells ASCII from the rest", () => {
      assert.isTrue(Command.isAscii(""))
      assert.isTrue(Command.isAscii("a@b.test \x00\x7f"))
      assert.isFalse(Command.isAscii("é"))
      assert.isFalse(Command.isAscii("\x80"))
      assert.isFalse(Command.isAscii("a@b.日本"))
    })
  })

  describe("quoteAddress (smtplib's quoteaddr)", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["<>", "<>"],
      ["", "<>"],
      ["   ", "<>"],
      [" <> ", "<>"],
      ["a@b", "<a@b>"],
      ["<a@b>", "<a@b>"],
      ["Name <a@b>", "<a@b>"],
      ["\"Last, First\" <a@b>", "<a@b>"],
      ["  a@b  ", "<a@b>"],
      ["< a@b >", "<a@b>"],
      ["user@example.com", "<user@example.com>"],
      ["andré@exämple.test", "<andré@exämple.test>"]
    ]
    for (const [input, expected] of cases) {
      it(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
        assert.strictEqual(Command.quoteAddress(input), expected)
      })
    }
  })

  describe("addressOnly (smtplib's _addr_only)", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["a@b", "a@b"],
      ["<a@b>", "a@b"],
      ["Name <a@b>", "a@b"],
      ["  a@b  ", "a@b"],
      ["\"Last, First\" <a@b>", "a@b"],
      ["postmaster", "postmaster"],
      ["", ""],
      ["a@b>", "a@b>"],
      ["<a@b", "<a@b"]
    ]
    for (const [input, expected] of cases) {
      it(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
        assert.strictEqual(Command.addressOnly(input), expected)
      })
    }
  })
})
