/**
 * SASLprep (RFC 4013): the RFC's examples, and every table and every code point compared with
 * `@mongodb-js/saslprep` (a devDependency kept for this comparison only), in both modes.
 */
import { assert, describe, it } from "@effect/vitest"
import saslprepReference from "@mongodb-js/saslprep"
import { Either } from "effect"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { inTable, saslprep, tables } from "../../src/internal/sasl/saslprep.js"
import type { Failure, Mode } from "../../src/internal/sasl/saslprep.js"

/** The reference's source tables (RFC 3454 transcribed), read past its `exports` map. */
const referenceTables = (() => {
  const require = createRequire(import.meta.url)
  const main = require.resolve("@mongodb-js/saslprep")
  return require(Path.join(Path.dirname(main), "code-points-src.js")) as Record<string, ReadonlySet<number>>
})()

const pairs = [
  ["mapToSpace", "non_ASCII_space_characters"],
  ["mapToNothing", "commonly_mapped_to_nothing"],
  ["prohibited", "prohibited_characters"],
  ["unassigned", "unassigned_code_points"],
  ["randAL", "bidirectional_r_al"],
  ["l", "bidirectional_l"]
] as const

/**
 * RFC 3454 C.4 lists U+FFFFE and U+FFFFF (plane 15's non-characters); the reference's table misses
 * them, so it accepts them. Everything else agrees.
 */
const referenceMissesC4 = (cp: number): boolean => cp === 0xffffe || cp === 0xfffff

/** What the reference gives: the prepared string, or undefined when it throws. */
const reference = (input: string, mode: Mode): string | undefined => {
  if (Array.from(input).some((c) => referenceMissesC4(c.codePointAt(0)!))) return undefined
  try {
    return saslprepReference(input, { allowUnassigned: mode === "query" })
  } catch {
    return undefined
  }
}

const ours = (input: string, mode: Mode): string | undefined => Either.getOrUndefined(saslprep(input, mode))

const right = (input: string, mode: Mode = "stored"): string => {
  const result = saslprep(input, mode)
  if (Either.isLeft(result)) assert.fail(`expected a Right, got Left(${result.left})`)
  return result.right
}

const left = (input: string, mode: Mode = "stored"): Failure => {
  const result = saslprep(input, mode)
  if (Either.isRight(result)) assert.fail(`expected a Left, got Right(${JSON.stringify(result.right)})`)
  return result.left
}

/** Compares with the reference over `inputs`; returns the first few disagreements. */
const disagreements = (inputs: Iterable<string>, mode: Mode): Array<string> => {
  const found: Array<string> = []
  for (const input of inputs) {
    const a = ours(input, mode)
    const b = reference(input, mode)
    if (a !== b && found.length < 10) {
      const hex = Array.from(input, (c) => c.codePointAt(0)!.toString(16)).join(" ")
      found.push(`${mode} [${hex}]: ours ${JSON.stringify(a)}, reference ${JSON.stringify(b)}`)
    }
  }
  return found
}

function* codePoints(from: number, to: number, step = 1): Generator<number> {
  for (let cp = from; cp <= to; cp += step) yield cp
}

function* strings(cps: Iterable<number>, wrap: (c: string) => string = (c) => c): Generator<string> {
  for (const cp of cps) yield wrap(String.fromCodePoint(cp))
}

describe("saslprep", () => {
  describe("RFC 4013 §3 examples", () => {
    it("SOFT HYPHEN mapped to nothing", () => assert.strictEqual(right("I\u00adX"), "IX"))
    it("no transformation", () => assert.strictEqual(right("user"), "user"))
    it("case preserved, will not match #2", () => assert.strictEqual(right("USER"), "USER"))
    it("output is NFKC, input in ISO 8859-1", () => assert.strictEqual(right("\u00aa"), "a"))
    it("output is NFKC, will match #1", () => assert.strictEqual(right("\u2168"), "IX"))
    it("error: prohibited character", () => assert.strictEqual(left("\u0007"), "prohibited"))
    it("error: bidirectional check", () => assert.strictEqual(left("\u0627\u0031"), "bidi"))
  })

  describe("mapping", () => {
    it("non-ASCII spaces become SPACE, B.1 disappears, before NFKC", () => {
      assert.strictEqual(right("a\u00a0b\u3000c\u2000d"), "a b c d")
      assert.strictEqual(right("a\u200bb"), "a b") // U+200B is in both C.1.2 and B.1: mapped to SPACE first
      assert.strictEqual(right("e\u00ad\u0301"), "\u00e9") // composes once the soft hyphen is gone
    })

    it("a non-empty string that maps to nothing is refused (as the reference did)", () => {
      assert.strictEqual(left("\u00ad\u034f\ufe0f\ufeff", "query"), "empty")
      assert.strictEqual(left("\u200c", "stored"), "empty")
    })

    it("printable ASCII and the empty string are returned as they are", () => {
      assert.strictEqual(right(""), "")
      assert.strictEqual(
        right(" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"),
        " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"
      )
    })

    it("surrogate pairs are one code point", () => {
      assert.strictEqual(right("\u{1d400}\u{1d41b}"), "Ab") // MATHEMATICAL BOLD, NFKC
      assert.strictEqual(right("\u{20000}"), "\u{20000}")
      assert.strictEqual(left("\u{e0001}"), "prohibited") // C.9 LANGUAGE TAG
      assert.strictEqual(left("\u{f0000}"), "prohibited") // C.3 private use, plane 15
      assert.strictEqual(left("\u{1d173}"), "prohibited") // C.2.2 musical symbol
      assert.strictEqual(left("\u{10fffe}"), "prohibited") // C.4 non-character
      assert.strictEqual(left("\u{ffffe}", "query"), "prohibited") // C.4: the reference misses U+FFFFE, U+FFFFF
    })

    it("C.8 U+0340 and U+0341 cannot survive NFKC (they become U+0300 and U+0301)", () => {
      assert.strictEqual(right("a\u0340"), "\u00e0")
    })

    it("unpaired surrogates are refused, even when a B.1 character separates two halves", () => {
      assert.strictEqual(left("a\ud800", "query"), "prohibited")
      assert.strictEqual(left("\udc00a", "query"), "prohibited")
      assert.strictEqual(left("\ud83d\u00ad\ude00", "query"), "prohibited") // the reference accepts it
    })
  })

  describe("prohibited output", () => {
    it("controls, C.1.2 after NFKC, private use, non-characters, C.5 to C.9", () => {
      for (const c of ["\u0000", "\u001f", "\u007f", "\u0085", "\u2028", "\u06dd", "\ue000", "\ufdd0", "\ufffd"]) {
        assert.strictEqual(left(c, "query"), "prohibited", c.codePointAt(0)!.toString(16))
      }
      for (const c of ["\u2ff0", "\u200e", "\u202e", "\u206a", "\u{e0020}"]) {
        assert.strictEqual(left(`a${c}`, "query"), "prohibited", c.codePointAt(0)!.toString(16))
      }
    })
  })

  describe("unassigned code points (A.1)", () => {
    it("allowed in query strings, refused in stored strings", () => {
      for (const c of ["\u0221", "\u0560", "\u{10000}", "\u{e0080}"]) {
        assert.strictEqual(right(c, "query"), c)
        assert.strictEqual(left(c, "stored"), "unassigned")
      }
    })
  })

  describe("bidirectional rules (RFC 3454 §6)", () => {
    it("RandALCat first and last, no LCat", () => {
      assert.strictEqual(right("\u0627\u0031\u0628"), "\u0627\u0031\u0628")
      assert.strictEqual(right("\u05d0"), "\u05d0")
      assert.strictEqual(right("\u05d0 \u05d1"), "\u05d0 \u05d1")
      assert.strictEqual(left("\u0627a\u0628"), "bidi")
      assert.strictEqual(left("1\u0627"), "bidi")
      assert.strictEqual(left("\u05d0\u{1d400}\u05d0"), "bidi") // LCat outside the BMP (after NFKC: A)
      assert.strictEqual(left("\u05d0\u{20000}\u05d0"), "bidi") // LCat outside the BMP
      assert.strictEqual(right("abc\u0661"), "abc\u0661") // AN is neither
    })
  })

  describe("against @mongodb-js/saslprep", () => {
    it("every table, every code point 0..0x10FFFF", () => {
      tables()
      for (const [table, name] of pairs) {
        const set = referenceTables[name]
        assert.isDefined(set, name)
        const differ: Array<string> = []
        for (let cp = 0; cp <= 0x10ffff; cp++) {
          const expected = set.has(cp) || (table === "prohibited" && referenceMissesC4(cp))
          if (inTable(table, cp) !== expected && differ.length < 10) differ.push(cp.toString(16))
        }
        assert.deepStrictEqual(differ, [], table)
      }
    })

    for (const mode of ["query", "stored"] as const) {
      it(`every code point alone, ${mode} mode`, () => {
        assert.deepStrictEqual(disagreements(strings(codePoints(0, 0x10ffff)), mode), [])
      }, 60_000)
    }

    it("every BMP code point and every 7th above, between RandALCats and after an LCat", () => {
      const sample = () => [...codePoints(0, 0xffff), ...codePoints(0x10000, 0x10ffff, 7)]
      assert.deepStrictEqual(disagreements(strings(sample(), (c) => `\u05d0${c}\u05d0`), "query"), [])
      assert.deepStrictEqual(disagreements(strings(sample(), (c) => `a${c}`), "query"), [])
      assert.deepStrictEqual(disagreements(strings(sample(), (c) => `${c}\u0628`), "stored"), [])
    })

    it("random strings of interesting code points, in both modes", () => {
      // a small deterministic generator (mulberry32)
      let seed = 0x5a51
      const random = () => {
        seed = (seed + 0x6d2b79f5) | 0
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
      }
      const pool = [
        ..."aZ1 !~\u00aa\u00ad\u00a0\u00e9\u0301\u0327\u034f\u05d0\u05be\u0627\u0661\u06dd\u0221\u1680\u200b\u200c",
        ..."\u200e\u200f\u2000\u2168\u3000\ufb1d\ufe0f\ufeff\ufb4f\ufdfa\uff21\u{1d400}\u{20000}\u{10000}\u{e0001}",
        ..."\u{1d7ce}\u{2f800}\u0340\u0958\u1e9b\u0323\u3099\u304b\u1100\u1161\u11a8\uac00"
      ]
      const inputs: Array<string> = []
      for (let i = 0; i < 50_000; i++) {
        let s = ""
        const length = 1 + Math.floor(random() * 6)
        for (let j = 0; j < length; j++) s += pool[Math.floor(random() * pool.length)]
        inputs.push(s)
      }
      assert.deepStrictEqual(disagreements(inputs, "query"), [])
      assert.deepStrictEqual(disagreements(inputs, "stored"), [])
    })
  })
})
