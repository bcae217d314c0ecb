/**
 * RFC 2047 encoded words. Encoding is what the composer emits: UTF-8 in the Q encoding, each
 * word at most 52 characters and holding whole characters only, written exactly as libmime 5
 * wrote them with `encodeWord(text, "Q", 52)` and `encodeWords(text, "Q", 52)` (minus one bug,
 * see `encodeWords`). Decoding is for parsed headers: Q and B, in any charset the runtime's
 * `TextDecoder` knows (the WHATWG encodings). Pure, Web APIs only.
 *
 * @internal
 */
import { utf8 } from "./bytes.js"

const HEX = "0123456789ABCDEF"

/** The longest encoded text in one word: 52 - "=?UTF-8?Q?".length - "?=".length. */
const MAX_TEXT = 40

/**
 * The Q form of one byte (RFC 2047 §4.2 and §5 (3), the rules for a phrase, which also suit
 * unstructured text): letters, digits and `!*+/` as they are, `-` too except at the start,
 * SP as `_` except at the end, everything else `=XX`.
 */
const qByte = (bytes: Uint8Array, i: number): string => {
  const b = bytes[i]!
  if (
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
    b === 0x21 || b === 0x2a || b === 0x2b || b === 0x2f
  ) return String.fromCharCode(b)
  if (b === 0x2d && i > 0 && bytes[i - 1] !== 0x0a && bytes[i - 1] !== 0x0d) return "-"
  const next = bytes[i + 1]
  if (b === 0x20 && next !== undefined && next !== 0x0a && next !== 0x0d) return "_"
  return "=" + HEX[b >> 4] + HEX[b & 15]
}

/**
 * The whole text as UTF-8 Q encoded words, separated by single spaces: each word holds as
 * many whole characters as fit in 40 encoded characters (a character is never split across
 * words, RFC 2047 §5 (3)). A lone surrogate is encoded as U+FFFD.
 *
 * @internal
 */
export const encodeWord = (text: string): string => {
  const bytes = utf8(text)
  const words: Array<string> = []
  let word = ""
  let char = ""
  const endChar = () => {
    if (word.length > 0 && word.length + char.length > MAX_TEXT) {
      words.push(word)
      word = ""
    }
    word += char
    char = ""
  }
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i]! & 0xc0) !== 0x80) endChar()
    char += qByte(bytes, i)
  }
  endChar()
  words.push(word)
  return words.map((w) => `=?UTF-8?Q?${w}?=`).join(" ")
}

const FIRST_NON_ASCII_WORD = /(?:^|\s)[^\s]*[\u0080-\uffff]/

/**
 * Unstructured text with the span from its first to its last word holding a non-ASCII
 * character encoded (`encodeWord`); the text around the span is left as it is. Words are
 * separated by white space as JavaScript's `\s` knows it.
 *
 * libmime 5 started the span at the white space before the word when that word began with
 * non-ASCII white space (`"abc \u3000def"`), gluing the encoded word to the text before it
 * (`abc=?UTF-8?Q?_=E3=80=80def?=`, which no reader decodes); here that white space stays out
 * of the span. Every other output is libmime's, byte for byte.
 *
 * @internal
 */
export const encodeWords = (text: string): string => {
  const first = FIRST_NON_ASCII_WORD.exec(text)
  if (first === null) return text
  let start = first.index + Math.max(0, first[0].search(/[^\s]/))
  if (start > 0 && !/\s/.test(text[start - 1]!)) start++
  let last = text.length - 1
  while (last >= 0 && text.charCodeAt(last) < 0x80) last--
  const wordEnd = text.slice(last + 1).search(/\s/)
  const end = wordEnd < 0 ? text.length : last + 1 + wordEnd
  return text.slice(0, start) + encodeWord(text.slice(start, end)) + text.slice(end)
}

const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1

/** Q text to bytes: `_` and white space are SP, `=XX` a byte, anything else itself. */
const decodeQ = (text: string): Uint8Array => {
  const input = utf8(text.replace(/=\s+([0-9a-fA-F])/g, "=$1").replace(/[_\s]/g, " "))
  const out = new Uint8Array(input.length)
  let o = 0
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!
    if (c === 0x3d && i + 2 < input.length) {
      const hi = hexValue(input[i + 1]!)
      const lo = hexValue(input[i + 2]!)
      if (hi >= 0 && lo >= 0) {
        out[o++] = hi * 16 + lo
        i += 2
        continue
      }
    }
    out[o++] = c
  }
  return out.subarray(0, o)
}

const BASE64_VALUE = (() => {
  const table = new Int8Array(128).fill(-1)
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for (let i = 0; i < 64; i++) table[alphabet.charCodeAt(i)] = i
  return table
})()

/** B text to bytes, leniently: characters outside the alphabet (padding too) are skipped. */
const decodeB = (text: string): Uint8Array => {
  const out = new Uint8Array(Math.ceil(text.length * 3 / 4))
  let o = 0
  let bits = 0
  let count = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const v = c < 128 ? BASE64_VALUE[c]! : -1
    if (v < 0) continue
    bits = (bits << 6) | v
    count += 6
    if (count >= 8) {
      count -= 8
      out[o++] = (bits >> count) & 0xff
    }
  }
  return out.subarray(0, o)
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** windows-1252's 0x80-0x9F (WHATWG); the other bytes are their Latin-1 code points. */
const CP1252 = "\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f" +
  "\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178"

/** windows-1252 by hand: Node 20's `TextDecoder` reads it as Latin-1 (nodejs/node#56542). */
const decodeWindows1252 = (bytes: Uint8Array): string => {
  let out = ""
  for (const b of bytes) out += b >= 0x80 && b < 0xa0 ? CP1252[b - 0x80] : String.fromCharCode(b)
  return out
}

interface Decoder {
  /** The WHATWG name of the encoding, which aliases share. */
  readonly encoding: string
  readonly decode: (bytes: Uint8Array) => string
}

/**
 * A decoder for a charset label, or `undefined` when the runtime does not know it (or maps
 * it to WHATWG's "replacement" decoder, which would turn the text into one U+FFFD).
 */
const decoderFor = (label: string): Decoder | undefined => {
  try {
    const decoder = new TextDecoder(label, { ignoreBOM: true })
    if (decoder.encoding === "replacement") return undefined
    if (decoder.encoding === "windows-1252") return { encoding: decoder.encoding, decode: decodeWindows1252 }
    return { encoding: decoder.encoding, decode: (bytes) => decoder.decode(bytes) }
  } catch {
    return undefined
  }
}

const ENCODED_WORD = /=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=/g

interface Run {
  /** The text between the previous run (or the start) and this one. */
  readonly before: string
  readonly charset: string
  readonly decoder: Decoder | undefined
  readonly start: number
  end: number
  bytes: Array<Uint8Array>
}

/** The text of a run, or `undefined` when its charset is unknown and its bytes not UTF-8. */
const decodeRun = (run: Run): string | undefined => {
  let length = 0
  for (const b of run.bytes) length += b.length
  const bytes = new Uint8Array(length)
  let at = 0
  for (const b of run.bytes) {
    bytes.set(b, at)
    at += b.length
  }
  if (run.decoder !== undefined) return run.decoder.decode(bytes)
  try {
    return fatalUtf8.decode(bytes)
  } catch {
    return undefined
  }
}

/**
 * Decodes the encoded words of a header value (a display name, unstructured text). White
 * space between two encoded words is dropped (RFC 2047 §6.2); the bytes of neighbouring words
 * in the same charset are decoded together, so a character split across words (against §5,
 * but common) comes back whole. A charset is decoded with `TextDecoder`, which knows the WHATWG
 * encodings (UTF-8, UTF-16, the ISO-8859 and Windows code pages, KOI8, Shift_JIS, EUC-JP,
 * ISO-2022-JP, GBK/GB18030, Big5, EUC-KR; `us-ascii` and `iso-8859-1` read as windows-1252, as
 * browsers read them). A charset it does not know (UTF-7, for one) is read as UTF-8 when the
 * bytes are valid UTF-8; otherwise the encoded words are left as they are written (§6.2).
 * An RFC 2231 language suffix (`utf-8*en`) is ignored.
 *
 * @internal
 */
export const decodeWords = (text: string): string => {
  let out = ""
  let at = 0
  let run: Run | undefined
  let previousRaw = true
  const close = (r: Run) => {
    const decoded = decodeRun(r)
    const raw = decoded === undefined
    if (raw || previousRaw || !/^\s*$/.test(r.before)) out += r.before
    out += decoded ?? text.slice(r.start, r.end)
    previousRaw = raw
  }
  for (const match of text.matchAll(ENCODED_WORD)) {
    const start = match.index!
    const end = start + match[0].length
    const label = match[1]!.replace(/\*.*$/, "").trim()
    const decoder = decoderFor(label)
    const charset = decoder?.encoding ?? label.toLowerCase()
    const bytes = match[2] === "Q" || match[2] === "q" ? decodeQ(match[3]!) : decodeB(match[3]!)
    const before = text.slice(at, start)
    if (run !== undefined && run.charset === charset && /^\s*$/.test(before)) {
      run.bytes.push(bytes)
      run.end = end
    } else {
      if (run !== undefined) close(run)
      run = { before, charset, decoder, start, end, bytes: [bytes] }
    }
    at = end
  }
  if (run !== undefined) close(run)
  return out + text.slice(at)
}
