/**
 * Content-Transfer-Encodings for the composer: base64 (whole or as a Stream transform that
 * carries the leftover bytes between chunks), quoted-printable, and the choice between 7bit,
 * quoted-printable and base64 by looking at the content. Every line produced is at most 76
 * octets. Both encoders are written here (a Stream encoder has to be anyway), with
 * `Uint8Array` only (no `btoa`, no `Buffer`); they are small and tested against an independent
 * decoder.
 *
 * @internal
 */
import * as Stream from "effect/Stream"
import * as Streams from "../stream.js"
import { CR, EMPTY, LF } from "./bytes.js"

/**
 * The longest line left as 7bit. RFC 5322 allows 998 octets but asks for 78; some parsers
 * mishandle long lines, so longer ones go quoted-printable, as nodemailer does.
 */
const SEVEN_BIT_LINE = 76

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0))
const PAD = 61 // "="

/** Input bytes per base64 line: 57 bytes give 76 characters. */
const LINE_INPUT = 57

const base64Into = (input: Uint8Array, out: Uint8Array, at: number): number => {
  let o = at
  let i = 0
  const n = input.length
  for (; i + 2 < n; i += 3) {
    const v = (input[i]! << 16) | (input[i + 1]! << 8) | input[i + 2]!
    out[o++] = CODES[v >> 18]!
    out[o++] = CODES[(v >> 12) & 63]!
    out[o++] = CODES[(v >> 6) & 63]!
    out[o++] = CODES[v & 63]!
  }
  if (i < n) {
    const v = (input[i]! << 16) | ((i + 1 < n ? input[i + 1]! : 0) << 8)
    out[o++] = CODES[v >> 18]!
    out[o++] = CODES[(v >> 12) & 63]!
    out[o++] = i + 1 < n ? CODES[(v >> 6) & 63]! : PAD
    out[o++] = PAD
  }
  return o
}

/**
 * A base64 encoder for a Stream: `push` returns whole lines (each but the first preceded by
 * CRLF), keeping up to 56 bytes for the next chunk; `end` returns the last, shorter line.
 *
 * @internal
 */
export interface Base64Encoder {
  readonly push: (chunk: Uint8Array) => Uint8Array
  readonly end: () => Uint8Array
}

/** @internal */
export const makeBase64Encoder = (): Base64Encoder => {
  let pending: Uint8Array = EMPTY
  let first = true
  const lines = (input: Uint8Array, count: number): Uint8Array => {
    const out = new Uint8Array(count * 78)
    let o = 0
    for (let l = 0; l < count; l++) {
      if (!first) {
        out[o++] = CR
        out[o++] = LF
      }
      first = false
      o = base64Into(input.subarray(l * LINE_INPUT, (l + 1) * LINE_INPUT), out, o)
    }
    return out.subarray(0, o)
  }
  const push = (chunk: Uint8Array): Uint8Array => {
    if (chunk.length === 0) return EMPTY
    let input = chunk
    if (pending.length > 0) {
      input = new Uint8Array(pending.length + chunk.length)
      input.set(pending, 0)
      input.set(chunk, pending.length)
    }
    const count = Math.floor(input.length / LINE_INPUT)
    pending = input.slice(count * LINE_INPUT)
    return count === 0 ? EMPTY : lines(input, count)
  }
  const end = (): Uint8Array => {
    if (pending.length === 0) return EMPTY
    const out = new Uint8Array(2 + 76)
    let o = 0
    if (!first) {
      out[o++] = CR
      out[o++] = LF
    }
    first = false
    o = base64Into(pending, out, o)
    pending = EMPTY
    return out.subarray(0, o)
  }
  return { push, end }
}

/** Base64 in lines of 76 characters joined by CRLF (no CRLF after the last). @internal */
export const base64Lines = (bytes: Uint8Array): Uint8Array => {
  const encoder = makeBase64Encoder()
  const a = encoder.push(bytes)
  const b = encoder.end()
  if (b.length === 0) return a
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/** Base64-encodes a Stream of bytes as it flows, with fresh state for every run. @internal */
export const base64Stream = <E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    const encoder = makeBase64Encoder()
    return Stream.map(self, encoder.push).pipe(
      (encoded) => Streams.concat(encoded, Stream.sync(encoder.end)),
      Stream.filter((chunk) => chunk.length > 0)
    )
  })

const HEX = "0123456789ABCDEF"

/**
 * Quoted-printable (RFC 2045 §6.7). A CRLF pair is a hard line break; a lone CR or LF is
 * encoded, so any bytes round-trip exactly. White space before a line break, `=`, and every
 * byte outside printable US-ASCII are encoded; so is the `F` of a line starting with `From `
 * (mbox safety) and a `.` alone at the start of a line. Lines are at most 76 characters, soft
 * breaks never split an `=XX`.
 *
 * @internal
 */
export const quotedPrintable = (bytes: Uint8Array): Uint8Array => {
  const out: Array<number> = []
  let lineLength = 0
  const n = bytes.length
  const emit = (token: string) => {
    if (lineLength + token.length > 75) {
      out.push(61, CR, LF)
      lineLength = 0
    }
    for (let k = 0; k < token.length; k++) out.push(token.charCodeAt(k))
    lineLength += token.length
  }
  const escape = (b: number) => "=" + HEX[b >> 4] + HEX[b & 15]
  let atLineStart = true
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!
    if (b === CR && bytes[i + 1] === LF) {
      out.push(CR, LF)
      lineLength = 0
      atLineStart = true
      i++
      continue
    }
    const lineEnds = i + 1 === n || (bytes[i + 1] === CR && bytes[i + 2] === LF)
    let literal = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !lineEnds)
    if (atLineStart && lineLength === 0) {
      if (b === 70 && bytes[i + 1] === 114 && bytes[i + 2] === 111 && bytes[i + 3] === 109 && bytes[i + 4] === 32) {
        literal = false
      }
      if (b === 46) literal = false
    }
    atLineStart = false
    emit(literal ? String.fromCharCode(b) : escape(b))
  }
  return Uint8Array.from(out)
}

/** @internal */
export type TransferEncoding = "7bit" | "quoted-printable" | "base64"

/**
 * Chooses the encoding for content known in full: 7bit when it is printable US-ASCII with CRLF
 * line breaks only, lines of at most 76 octets and no `=_` (the prefix of every boundary, so no
 * boundary can occur in the content); otherwise quoted-printable when at most a quarter of the
 * bytes would need escaping; otherwise base64. (`maxLine`: a longer line limit for 7bit, up to
 * RFC 5322's 998 octets, for a part that may not be encoded otherwise.)
 *
 * @internal
 */
export const chooseEncoding = (bytes: Uint8Array, maxLine = SEVEN_BIT_LINE): TransferEncoding => {
  let escaped = 0
  let sevenBit = true
  let lineLength = 0
  const n = bytes.length
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!
    if (b === CR && bytes[i + 1] === LF) {
      lineLength = 0
      i++
      continue
    }
    lineLength++
    if (lineLength > maxLine) sevenBit = false
    if ((b < 32 && b !== 9) || b > 126) {
      escaped++
      sevenBit = false
    } else if (b === 61) {
      escaped++
      if (bytes[i + 1] === 95) sevenBit = false
    }
  }
  if (sevenBit) return "7bit"
  return escaped * 4 <= n ? "quoted-printable" : "base64"
}

/** Encodes content known in full with the given encoding. @internal */
export const encodeWith = (encoding: TransferEncoding, bytes: Uint8Array): Uint8Array =>
  encoding === "7bit" ? bytes : encoding === "base64" ? base64Lines(bytes) : quotedPrintable(bytes)
