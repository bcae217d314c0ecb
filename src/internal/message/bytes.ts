/**
 * Byte helpers shared by the message modules: UTF-8, ASCII tests, concatenation. Pure, no
 * `node:*`.
 *
 * @internal
 */

const encoder = new TextEncoder()
const fatalDecoder = new TextDecoder("utf-8", { fatal: true })

/** @internal */
export const CR = 13
/** @internal */
export const LF = 10

/** @internal */
export const utf8 = (s: string): Uint8Array => encoder.encode(s)

/** @internal */
export const EMPTY = new Uint8Array(0)

/** Decodes bytes as UTF-8; undefined when they are not valid UTF-8. @internal */
export const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return fatalDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

/** Decodes bytes as Latin-1: one character per byte. @internal */
export const decodeLatin1 = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192))
  }
  return out
}

/** Latin-1 bytes of a string whose characters are at most U+00FF (`decodeLatin1` undone). @internal */
export const latin1Bytes = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
  return out
}

/** @internal */
export { concatBytes } from "../bytes.js"

/** Whether every character is US-ASCII. @internal */
export const isAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) return false
  }
  return true
}

/** Whether the string holds a CR or an LF. @internal */
export const hasLineBreak = (s: string): boolean => s.includes("\r") || s.includes("\n")

/** The length of a string in UTF-8 octets, without encoding it. @internal */
export const utf8Length = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4
        i++
      } else n += 3
    } else n += 3
  }
  return n
}

/**
 * A caller's value for error messages: JSON-quoted (so CR, LF and control characters show as
 * escapes), cut at 100 characters. Only for header text and addresses, never bodies or secrets.
 *
 * @internal
 */
export const show = (value: string): string => {
  const chars = Array.from(value)
  return JSON.stringify(chars.length > 100 ? chars.slice(0, 100).join("") + "…" : value)
}
