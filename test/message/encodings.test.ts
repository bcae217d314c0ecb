import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { Buffer } from "node:buffer"
import { base64Lines, chooseEncoding, quotedPrintable } from "../../src/internal/message/encodings.js"
import { foldField } from "../../src/internal/message/fold.js"
import { unfold } from "../../src/internal/message/headers.js"

const enc = new TextEncoder()

/** An independent quoted-printable decoder (RFC 2045 §6.7). */
const decodeQp = (text: string): Uint8Array => {
  const out: Array<number> = []
  const s = text.replace(/=\r\n/g, "")
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "=") {
      out.push(parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      out.push(s.charCodeAt(i))
    }
  }
  return Uint8Array.from(out)
}

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1")

const mostlyText = fc.oneof(
  fc.uint8Array({ maxLength: 500 }),
  fc.fullUnicodeString({ maxLength: 300 }).map((s) => enc.encode(s)),
  fc.array(fc.constantFrom("a", " ", "\t", "\r\n", "\r", "\n", "=", ".", "From ", "é", "x".repeat(80)), {
    maxLength: 60
  })
    .map((parts) => enc.encode(parts.join("")))
)

describe("quoted-printable", () => {
  it.prop(
    "decodes back to the same bytes; lines of at most 76; no trailing white space; no `=_`",
    [mostlyText],
    ([bytes]) => {
      const encoded = latin1(quotedPrintable(bytes))
      assert.deepStrictEqual(decodeQp(encoded), bytes)
      for (const line of encoded.split("\r\n")) {
        assert.isAtMost(line.length, 76)
        assert.match(line, /^[\x21-\x7e \t]*$/)
        assert.notMatch(line, /[ \t]$/)
      }
      assert.notInclude(encoded, "=_")
    }
  )

  it("lines at the limit: at most 75 characters and a soft break, never splitting =XX", () => {
    const x = (n: number) => "x".repeat(n)
    const cases: ReadonlyArray<readonly [string, string]> = [
      [x(75), x(75)],
      [x(76), `${x(75)}=\r\nx`],
      [x(77), `${x(75)}=\r\nxx`],
      [`${x(74)} `, `${x(74)}=\r\n=20`],
      [`${x(73)}é`, `${x(73)}=\r\n=C3=A9`],
      [`${x(72)}é`, `${x(72)}=C3=\r\n=A9`],
      [`${x(75)}\r\ny`, `${x(75)}\r\ny`],
      ["", ""]
    ]
    for (const [input, expected] of cases) {
      assert.strictEqual(latin1(quotedPrintable(enc.encode(input))), expected, JSON.stringify(input))
    }
  })

  it("protects From_ lines and lone dots, keeps CRLF as hard breaks", () => {
    assert.strictEqual(latin1(quotedPrintable(enc.encode("From me\r\n.\r\nok \r\n"))), "=46rom me\r\n=2E\r\nok=20\r\n")
    assert.strictEqual(latin1(quotedPrintable(enc.encode("a\nb\rc"))), "a=0Ab=0Dc")
  })
})

describe("base64", () => {
  it.prop("is the base64 of the bytes in lines of 76", [fc.uint8Array({ maxLength: 1000 })], ([bytes]) => {
    const expected = Buffer.from(bytes).toString("base64").replace(/.{76}/g, "$&\r\n").replace(/\r\n$/, "")
    assert.strictEqual(latin1(base64Lines(bytes)), expected)
  })
})

describe("chooseEncoding", () => {
  it("by content", () => {
    assert.strictEqual(chooseEncoding(enc.encode("short ascii\r\nlines\r\n")), "7bit")
    assert.strictEqual(chooseEncoding(enc.encode("lone LF\n")), "quoted-printable")
    assert.strictEqual(chooseEncoding(enc.encode("x".repeat(77))), "quoted-printable")
    assert.strictEqual(chooseEncoding(enc.encode("a =_ b")), "quoted-printable")
    assert.strictEqual(chooseEncoding(enc.encode("une phrase accentuée")), "quoted-printable")
    assert.strictEqual(chooseEncoding(enc.encode("Ελληνικά κείμενα")), "base64")
    assert.strictEqual(chooseEncoding(new Uint8Array([0, 1, 2, 3])), "base64")
  })
})

describe("header folding", () => {
  const value = fc.array(
    fc.oneof(fc.fullUnicodeString({ maxLength: 30 }), fc.constantFrom(" ", "  ", "\t", "x".repeat(100))),
    { maxLength: 40 }
  ).map((parts) => parts.join(" ").replace(/[\r\n]/g, ""))

  it.prop("unfolding gives back the value; lines within 998 octets; folds only before white space", [value], ([v]) => {
    const folded = foldField("Subject", v)
    assert.isDefined(folded)
    assert.strictEqual(unfold(folded!), v.trim())
    assert.strictEqual(folded!.replace(/\r\n/g, ""), v.length === 0 ? "" : " " + v)
    for (const line of `Subject:${folded}`.split("\r\n").slice(1)) assert.match(line, /^[ \t]/)
    for (const line of `Subject:${folded}`.split("\r\n")) assert.isAtMost(Buffer.byteLength(line), 998)
  })

  it("a word that cannot fit in 998 octets is refused", () => {
    assert.isUndefined(foldField("Subject", "a".repeat(1000)))
    assert.isDefined(foldField("Subject", "a".repeat(980)))
  })
})
