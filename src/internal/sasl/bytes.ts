/**
 * Byte and string helpers shared by the SASL mechanisms. Platform-neutral (no `node:*`).
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"

const encoder = new TextEncoder()
const strictDecoder = new TextDecoder("utf-8", { fatal: true })
const lenientDecoder = new TextDecoder("utf-8")

/** UTF-8 encodes a string. */
export const utf8 = (text: string): Uint8Array => encoder.encode(text)

/** Decodes UTF-8, or undefined when the bytes are not valid UTF-8. */
export const fromUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return strictDecoder.decode(bytes)
  } catch {
    return undefined
  }
}

/** Decodes UTF-8, replacing invalid sequences with U+FFFD. */
export const fromUtf8Lenient = (bytes: Uint8Array): string => lenientDecoder.decode(bytes)

/** A fresh empty response. */
export const empty = (): Uint8Array => new Uint8Array(0)

const base64Syntax = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Standard base64 (with padding) of some bytes. */
export const toBase64 = (bytes: Uint8Array): string => Encoding.encodeBase64(bytes)

/** Decodes strict, padded standard base64; undefined when the text is not base64. */
export const fromBase64 = (text: string): Uint8Array | undefined =>
  base64Syntax.test(text) ? Either.getOrUndefined(Encoding.decodeBase64(text)) : undefined

/** Lower-case hexadecimal. */
export const toHex = (bytes: Uint8Array): string => {
  let hex = ""
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0")
  return hex
}

/** Compares two byte arrays in time independent of where they differ. */
export const timingSafeEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i]
  return diff === 0
}

/** RFC 5801 / RFC 5802 `saslname`: "=" becomes "=3D" and "," becomes "=2C". */
export const escapeSaslName = (name: string): string => name.replace(/=/g, "=3D").replace(/,/g, "=2C")

/** Makes text from a server safe to quote in an error reason: printable ASCII only, bounded length. */
export const quote = (text: string): string => {
  const clean = text.replace(/[^\x20-\x7e]/g, "?")
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean
}

/** A random nonce of printable characters without ",": base64 of 18 random bytes (24 characters). */
export const randomNonce = (): string => toBase64(globalThis.crypto.getRandomValues(new Uint8Array(18)))
