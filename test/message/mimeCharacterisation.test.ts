/**
 * Characterisation of the composer's own RFC 2047 / RFC 2231 code against libmime 5, which it
 * replaces: the same output for the same input, over generated and hand-picked inputs. libmime
 * is a development dependency for this file only; nothing under src/ imports it.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import libmime from "libmime"
import { decodeWords, encodeWord, encodeWords } from "../../src/internal/message/encodedWords.js"
import { knownExtensions, mimeTypeOf } from "../../src/internal/message/mimeTypes.js"
import { formatParameter } from "../../src/internal/message/parameters.js"

const char = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(" ", " ", "\t", "-", "_", "=", "?", "!", "*", "+", "/", "\"", "'", ";", "%")
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom("(", ")", "~", ".", ",", "<", ">", "@", "[", "]", "\\", ":", "\x7f", "\x01")
  },
  { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 3, arbitrary: fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.integer({ min: 0x4e00, max: 0x9fff }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.integer({ min: 0x1f300, max: 0x1faff }).map((c) => String.fromCodePoint(c)) },
  { weight: 1, arbitrary: fc.constantFrom("\u00a0", "\u3000", "\u2003", "\u2028", "\ufeff", "\u0085", "\u200b") },
  { weight: 1, arbitrary: fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff", "\r", "\n", "\r\n") },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 30, max: 90 }).map((n) => "w".repeat(n)) }
)

/** Text made of the characters above, and any text at all. */
const text = fc.oneof(
  { weight: 4, arbitrary: fc.array(char, { maxLength: 60 }).map((cs) => cs.join("")) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 120 }) }
)

/** Lengths around the limits: 40 encoded characters per word, 50 per section, 75 per value. */
const boundaryTable: ReadonlyArray<string> = (() => {
  const out: Array<string> = ["", " ", "  ", "\t", "-", "_", "=", "?", "=?", "?="]
  for (const n of [1, 12, 13, 14, 19, 20, 21, 38, 39, 40, 41, 49, 50, 51, 59, 60, 61, 74, 75, 76, 77, 78, 150]) {
    for (const unit of ["x", "é", "日", "🎉", " ", "x ", "é ", "-", "a-", "_", "%", "\"", "\ud800"]) {
      out.push(unit.repeat(n))
      out.push("é" + "x".repeat(n))
      out.push("x".repeat(n) + "é")
      out.push("x".repeat(n) + " é " + unit)
    }
  }
  out.push(
    "Grüße aus Köln 🎉 — with a subject long enough to be folded over more than a single line of text",
    "日本語の件名です。長い件名はいくつかのエンコードされた単語に分割されます。",
    "  leading and trailing spaces é  ",
    "tab\tbefore é\tand after",
    "-dash first é",
    "a\r\n-b é",
    "é -x -y",
    "résumé.pdf",
    "a name with \"quotes\"; and semicolons.bin",
    "tab\there.bin",
    "mixé ascii and a long tail of plain ascii characters after it to split.docx"
  )
  return out
})()

/** libmime 5 glued the encoded word to the text before it (see encodeWords). */
const libmimeGlues = (input: string, output: string) => {
  const at = output.indexOf("=?UTF-8?Q?")
  return !input.includes("=?") && at > 0 && !/\s/.test(output[at - 1]!)
}

describe("encodeWord: as libmime.encodeWord(text, \"Q\", 52)", () => {
  it("table", () => {
    for (const input of boundaryTable) {
      assert.strictEqual(encodeWord(input), libmime.encodeWord(input, "Q", 52), JSON.stringify(input))
    }
  })
  it.prop("generated", [text], ([input]) => {
    assert.strictEqual(encodeWord(input), libmime.encodeWord(input, "Q", 52))
  }, { fastCheck: { numRuns: 5000 } })
})

describe("encodeWords: as libmime.encodeWords(text, \"Q\", 52)", () => {
  it("table", () => {
    for (const input of boundaryTable) {
      const expected = libmime.encodeWords(input, "Q", 52)
      if (!libmimeGlues(input, expected)) assert.strictEqual(encodeWords(input), expected, JSON.stringify(input))
    }
  })
  it.prop("generated", [text], ([input]) => {
    const expected = libmime.encodeWords(input, "Q", 52)
    const actual = encodeWords(input)
    if (!libmimeGlues(input, expected)) {
      assert.strictEqual(actual, expected)
    } else {
      assert.isFalse(libmimeGlues(input, actual))
      assert.strictEqual(libmime.decodeWords(actual), libmime.decodeWords(libmime.encodeWord(input, "Q", 52)))
    }
  }, { fastCheck: { numRuns: 5000 } })

  it("libmime's bug, fixed: non-ASCII white space after a space", () => {
    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ["abc \u3000def", "abc=?UTF-8?Q?_=E3=80=80def?=", "abc =?UTF-8?Q?=E3=80=80def?="],
      ["nbsp after a space \u00a0", "nbsp after a space=?UTF-8?Q?_=C2=A0?=", "nbsp after a space =?UTF-8?Q?=C2=A0?="],
      ["a\t\u3000b", "a=?UTF-8?Q?=09=E3=80=80b?=", "a\t=?UTF-8?Q?=E3=80=80b?="]
    ]
    for (const [input, buggy, fixed] of cases) {
      assert.strictEqual(libmime.encodeWords(input, "Q", 52), buggy)
      assert.strictEqual(encodeWords(input), fixed)
      assert.strictEqual(decodeWords(fixed), input)
    }
    // where the space before is not the only one, libmime's output was correct, and is kept
    assert.strictEqual(encodeWords("x  \u3000"), libmime.encodeWords("x  \u3000", "Q", 52))
  })
})

describe("formatParameter: as libmime.buildHeaderValue for one parameter", () => {
  /**
   * libmime's output, with the fix: a bare value (or plain section) holding `'` or `*` quoted.
   * Bare values hold no `"`, `\\` or `;` (those are quoted already).
   */
  const libmimeParameter = (key: string, value: string) =>
    libmime.buildHeaderValue({ value: "", params: { [key]: value } }).replace(
      /(; [a-z]+(?:\*\d+)?=)([^";][^;]*)/g,
      (piece, name: string, bare: string) => /['*]/.test(bare) ? `${name}"${bare}"` : piece
    )
  it("table", () => {
    for (const input of boundaryTable) {
      for (const key of ["filename", "name"]) {
        assert.strictEqual("; " + formatParameter(key, input), libmimeParameter(key, input), JSON.stringify(input))
      }
    }
  })
  it.prop("generated", [text], ([input]) => {
    assert.strictEqual("; " + formatParameter("filename", input), libmimeParameter("filename", input))
  }, { fastCheck: { numRuns: 5000 } })

  it("libmime's bug, fixed: ' or * in a bare value", () => {
    const long = "x".repeat(70) + "-it's*.txt"
    assert.strictEqual(libmime.buildHeaderValue({ value: "", params: { filename: "a*b.txt" } }), "; filename=a*b.txt")
    assert.strictEqual(formatParameter("filename", "a*b.txt"), "filename=\"a*b.txt\"")
    assert.strictEqual(
      libmime.buildHeaderValue({ value: "", params: { filename: long } }),
      `; filename*0=${"x".repeat(50)}; filename*1=${"x".repeat(20)}-it's*.txt`
    )
    assert.strictEqual(
      formatParameter("filename", long),
      `filename*0=${"x".repeat(50)}; filename*1="${"x".repeat(20)}-it's*.txt"`
    )
  })
})

describe("decodeWords", () => {
  it.prop("reads back what encodeWord and encodeWords write, as libmime does", [text], ([input]) => {
    // a lone surrogate has no UTF-8 form and is sent as U+FFFD
    const wellFormed = new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(input))
    const word = encodeWord(input)
    assert.strictEqual(decodeWords(word), wellFormed)
    assert.strictEqual(decodeWords(word), libmime.decodeWords(word))
    if (!input.includes("=?")) {
      const words = encodeWords(input)
      assert.strictEqual(decodeWords(words), libmime.decodeWords(words))
      assert.strictEqual(decodeWords(words), wellFormed)
    }
  }, { fastCheck: { numRuns: 3000 } })

  const b = (charset: string, base64: string) => `=?${charset}?B?${base64}?=`
  const foreign: ReadonlyArray<readonly [string, string]> = [
    [b("iso-8859-1", "SvZyZyBN/GxsZXI="), "Jörg Müller"],
    ["=?ISO-8859-1?Q?J=F6rg_M=FCller?=", "Jörg Müller"],
    [b("ISO-8859-15", "UHJpeCA1IKQ="), "Prix 5 €"],
    [b("windows-1252", "k3F1b3RlZJQgliBkYXNo"), "“quoted” – dash"],
    [b("koi8-r", "8NLJ18XUIM3J0g=="), "Привет мир"],
    [b("windows-1251", "z/Do4uXy"), "Привет"],
    [b("iso-8859-2", "o/NkvCCv87N3"), "Łódź Żółw"],
    [b("iso-8859-7", "yuHr5+zd8eE="), "Καλημέρα"],
    [b("shift_jis", "k/qWe4zqgsyWvJFP"), "日本語の名前"],
    [b("euc-jp", "xvzL3Ljs"), "日本語"],
    [b("iso-2022-jp", "GyRCRnxLXDhsJE43b0w+GyhC"), "日本語の件名"],
    [b("gb2312", "1tDOxMP719Y="), "中文名字"],
    [b("gbk", "1tDOxA=="), "中文"],
    [b("gb18030", "1tDOxJUygjY="), "中文𠀀"],
    [b("big5", "wWPF6aSkpOU="), "繁體中文"],
    [b("euc-kr", "x9Gxub7u"), "한국어"],
    [b("windows-874", "wNLJ0uS3wg=="), "ภาษาไทย"],
    // a character split across two words, B and Q, and words joined across white space
    ["=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=", "éé"],
    ["=?UTF-8?B?4pw=?= =?UTF-8?B?kw==?=", "✓"],
    ["=?UTF-8?Q?=E2=9C?=\r\n =?UTF-8?Q?=93?=", "✓"],
    ["=?utf-8?q?a_b?= =?iso-8859-1?q?=E9?=", "a bé"],
    ["plain =?UTF-8?Q?=C3=A9?= text =?UTF-8?Q?=C3=A9?=", "plain é text é"],
    ["=?UTF-8*en?Q?hello?=", "hello"],
    ["=?utf-8?b?aGVsbG8?=", "hello"],
    ["=?UTF-8?Q?soft=\r\n 20break?=", "soft break"],
    ["not =? an encoded word ?=", "not =? an encoded word ?="]
  ]
  it("foreign charsets: TextDecoder, as libmime's iconv-lite", () => {
    for (const [input, expected] of foreign) {
      assert.strictEqual(decodeWords(input), expected, input)
      assert.strictEqual(libmime.decodeWords(input), expected, input)
    }
  })

  it("an unknown charset: UTF-8 when the bytes are UTF-8, else the words as written", () => {
    assert.strictEqual(decodeWords("=?x-unknown?Q?=C3=A9t=C3=A9?="), "été")
    assert.strictEqual(decodeWords("a =?x-unknown?Q?=E9t=E9?= =?UTF-8?Q?=C3=A9?= b"), "a =?x-unknown?Q?=E9t=E9?= é b")
    // libmime read it as UTF-8 regardless: U+FFFD
    assert.strictEqual(libmime.decodeWords("=?x-unknown?Q?=E9t=E9?="), "\ufffdt\ufffd")
    // UTF-7, a way to smuggle markup, is not decoded (libmime did not either)
    assert.strictEqual(decodeWords("=?utf-7?Q?+ADw-script+AD4-?="), "+ADw-script+AD4-")
    // WHATWG's "replacement" labels (ISO-2022-KR, HZ) are unknown too
    assert.strictEqual(decodeWords("=?iso-2022-kr?Q?abc?="), "abc")
  })
})

describe("mimeTypeOf: as libmime.detectMimeType for the extensions it lists", () => {
  it("every listed extension, in any case, with a path, spaces or a leading dot", () => {
    for (const extension of knownExtensions()) {
      for (
        const name of [`f.${extension}`, `F.${extension.toUpperCase()}`, `a.b.${extension}`, extension, `.${extension}`]
      ) {
        assert.strictEqual(mimeTypeOf(name), libmime.detectMimeType(name), name)
      }
    }
  })
  it("names without a listed extension are application/octet-stream, as libmime's unknown ones", () => {
    for (const name of ["", "README", "f.", "f.unknownext", "archive.tar.unknown", ".bashrc"]) {
      assert.strictEqual(mimeTypeOf(name), "application/octet-stream", name)
      assert.strictEqual(libmime.detectMimeType(name), "application/octet-stream", name)
    }
    // rare types libmime listed are no longer guessed (pass contentType for them)
    assert.strictEqual(libmime.detectMimeType("f.xyz"), "chemical/x-xyz")
    assert.strictEqual(mimeTypeOf("f.xyz"), "application/octet-stream")
  })
})
