/**
 * MIME parameters (`key=value` after a Content-Type or Content-Disposition value) for values
 * that are not a short token: a quoted string, or RFC 2231 continuations (`key*0*=utf-8''…`,
 * `key*1*=…`) for non-ASCII, control characters, `=?` and long values. Written as libmime 5's
 * `buildHeaderValue` wrote one parameter (its `buildHeaderParam` with sections of fewer than
 * 50 characters), which the composer used before, with one fix: a plain value or section
 * holding `'` or `*` is quoted. RFC 2045 allows both in a token, but Python's email package
 * reads them as RFC 2231 delimiters in a bare value and loses the rest of the file name
 * (libmime quoted `'` only at either end). Pure, Web APIs only.
 *
 * @internal
 */
import { utf8 } from "./bytes.js"

const HEX = "0123456789ABCDEF"

/** Bytes that RFC 2231 percent-encoding leaves as they are (a subset of attribute-char). */
const isLiteral = (b: number) =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
  b === 0x2d || b === 0x5f || b === 0x2e || b === 0x21 || b === 0x7e

/** UTF-8 percent-encoding of every byte but `A-Za-z0-9-_.!~` (a lone surrogate as U+FFFD). */
const percentEncode = (s: string): string => {
  let out = ""
  for (const b of utf8(s)) out += isLiteral(b) ? String.fromCharCode(b) : "%" + HEX[b >> 4] + HEX[b & 15]
  return out
}

/** Printable ASCII (no HTAB, no DEL) that does not look like an encoded word. */
const isPlainValue = (s: string) => !/[\x00-\x1f\x7f-\uffff]/.test(s) && !s.includes("=?")

const quote = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`

interface Section {
  readonly text: string
  readonly encoded: boolean
}

/**
 * The sections of a value, each shorter than `max` characters: a plain value cut every `max`
 * characters; any other value percent-encoded after `utf-8''`, where a section that starts
 * with a character needing no encoding stays unencoded until one that does: then it is
 * restarted encoded, or closed when the encoded character would not fit.
 */
const sections = (value: string, max: number): Array<Section> => {
  const out: Array<Section> = []
  if (isPlainValue(value)) {
    for (let i = 0; i < value.length; i += max) out.push({ text: value.slice(i, i + max), encoded: false })
    return out
  }
  const chars = Array.from(value)
  let line = "utf-8''"
  let encoded = true
  let lineStart = 0
  for (let i = 0; i < chars.length; i++) {
    const original = chars[i]!
    let chr: string = encoded || original !== " " ? percentEncode(original) : original
    if (!encoded && chr !== original) {
      if ((percentEncode(line) + chr).length >= max) {
        out.push({ text: line, encoded })
        line = ""
        encoded = true
      } else {
        encoded = true
        line = ""
        i = lineStart - 1
        continue
      }
    }
    if ((line + chr).length >= max) {
      out.push({ text: line, encoded })
      chr = original === " " ? original : percentEncode(original)
      line = chr
      encoded = chr !== original
      lineStart = i
    } else {
      line += chr
    }
  }
  if (line.length > 0) out.push({ text: line, encoded })
  return out
}

/** What a bare value must not hold: white space, tspecials, `'` and `*`, or a leading `-`. */
const NEEDS_QUOTES = /[\s'*"\\;:/=(),<>@[\]?]|^-/

/**
 * One parameter, `key=value`, as `; `-separated pieces: a bare token; a quoted string for
 * plain values shorter than 75 characters holding specials; else RFC 2231 sections (`key*N=`
 * plain, quoted when needed; `key*N*=` percent-encoded), every piece shorter than 50
 * characters after the `=` so that the field folds into short lines.
 *
 * @internal
 */
export const formatParameter = (key: string, value: string): string => {
  if (!isPlainValue(value) || value.length >= 75) {
    return sections(value, 50).map((section, i) => {
      const name = `${key}*${i}${section.encoded ? "*" : ""}`
      const bare = section.encoded || !NEEDS_QUOTES.test(section.text)
      return `${name}=${bare ? section.text : quote(section.text)}`
    }).join("; ")
  }
  return `${key}=${value.length === 0 || NEEDS_QUOTES.test(value) ? quote(value) : value}`
}
