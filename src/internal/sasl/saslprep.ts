/**
 * SASLprep (RFC 4013), the stringprep (RFC 3454) profile for user names and passwords, on Web-standard
 * APIs only: mapping (C.1.2 to SPACE, B.1 to nothing), NFKC (`String.prototype.normalize`), the
 * prohibited output (C.1.2, C.2.1, C.2.2, C.3 to C.9), the bidirectional rules (RFC 3454 §6) and, for
 * stored strings, unassigned code points (A.1). The tables (Unicode 3.2) are in `saslprepTables.ts`,
 * decoded on first use of a string that is not printable ASCII.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Tables from "./saslprepTables.js"

/**
 * `"query"` allows unassigned code points (A.1), `"stored"` refuses them (RFC 3454 §7).
 */
export type Mode = "query" | "stored"

/**
 * Why a string was refused: a prohibited code point in the output (or an unpaired surrogate in the
 * input), an unassigned code point in a stored string, a violation of the bidirectional rules, or
 * a non-empty input that maps to nothing (RFC 4013 allows it; refused as `@mongodb-js/saslprep`
 * did, since an empty user name or password is never what was meant).
 */
export type Failure = "prohibited" | "unassigned" | "bidi" | "empty"

/** A decoded table: range boundaries, start inclusive and end exclusive, alternating. */
type Ranges = Int32Array

const decode = (text: string): Ranges => {
  const bounds: Array<number> = []
  let n = 0
  let at = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0x5d) {
      n = n * 32 + c - 0x5d
      // alternately the gap from the previous end, and the length minus one
      at += bounds.length % 2 === 0 ? n : n + 1
      bounds.push(at)
      n = 0
    } else {
      n = n * 32 + c - 0x3c
    }
  }
  return Int32Array.from(bounds)
}

/** Whether `cp` is in the ranges: the number of boundaries at or below it is odd. */
const has = (ranges: Ranges, cp: number): boolean => {
  let lo = 0
  let hi = ranges.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (ranges[mid] <= cp) lo = mid + 1
    else hi = mid
  }
  return (lo & 1) === 1
}

interface Decoded {
  readonly mapToSpace: Ranges
  readonly mapToNothing: Ranges
  readonly prohibited: Ranges
  readonly unassigned: Ranges
  readonly randAL: Ranges
  readonly l: Ranges
}

let decoded: Decoded | undefined = undefined

/** The tables, decoded once. Exported for tests. */
export const tables = (): Decoded =>
  decoded ??= {
    mapToSpace: decode(Tables.mapToSpace),
    mapToNothing: decode(Tables.mapToNothing),
    prohibited: decode(Tables.prohibited),
    unassigned: decode(Tables.unassigned),
    randAL: decode(Tables.randAL),
    l: decode(Tables.l)
  }

/** Whether a code point is in one of the tables. For tests. */
export const inTable = (table: keyof Decoded, cp: number): boolean => has(tables()[table], cp)

const printableAscii = /^[\x20-\x7e]*$/

/**
 * Prepares a user name or password. Printable ASCII is returned as is, the empty string included.
 * Left with the rule that refused it; the reason never includes the text.
 */
export const saslprep = (input: string, mode: Mode): Either.Either<string, Failure> => {
  if (printableAscii.test(input)) return Either.right(input)
  const t = tables()
  let mapped = ""
  for (const ch of input) {
    const cp = ch.codePointAt(0)!
    // an unpaired surrogate (C.5) is refused before mapping, so that removing a B.1 character between
    // two halves cannot pair them
    if (cp >= 0xd800 && cp <= 0xdfff) return Either.left("prohibited")
    if (has(t.mapToSpace, cp)) mapped += " "
    else if (!has(t.mapToNothing, cp)) mapped += ch
  }
  const output = mapped.normalize("NFKC")
  if (output === "") return Either.left("empty")
  let randAL = false
  let l = false
  let first = true
  let firstRandAL = false
  let lastRandAL = false
  for (const ch of output) {
    const cp = ch.codePointAt(0)!
    if (has(t.prohibited, cp)) return Either.left("prohibited")
    if (mode === "stored" && has(t.unassigned, cp)) return Either.left("unassigned")
    lastRandAL = has(t.randAL, cp)
    if (lastRandAL) randAL = true
    else if (has(t.l, cp)) l = true
    if (first) firstRandAL = lastRandAL
    first = false
  }
  // RFC 3454 §6: with any RandALCat, no LCat, and RandALCat first and last
  if (randAL && (l || !firstRandAL || !lastRandAL)) return Either.left("bidi")
  return Either.right(output)
}
