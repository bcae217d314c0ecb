/**
 * Parsing of the error JSON an OAuth SASL server sends as a challenge (XOAUTH2, RFC 7628 §3.2.2).
 *
 * @internal
 */
import { fromUtf8Lenient } from "./bytes.js"
import type { OAuthError } from "./types.js"

const field = (json: unknown, name: string): string | undefined => {
  if (typeof json !== "object" || json === null) return undefined
  const value = (json as Record<string, unknown>)[name]
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined
}

/** Parses an error challenge. Text that is not JSON (or not an object) still yields `{ raw }`. */
export const parseOAuthError = (challenge: Uint8Array): OAuthError => {
  const raw = fromUtf8Lenient(challenge)
  let json: unknown = undefined
  try {
    json = JSON.parse(raw)
  } catch {
    // not JSON: only `raw` is reported
  }
  const status = field(json, "status")
  const schemes = field(json, "schemes")
  const scope = field(json, "scope")
  return {
    raw,
    ...(status !== undefined ? { status } : {}),
    ...(schemes !== undefined ? { schemes } : {}),
    ...(scope !== undefined ? { scope } : {})
  }
}
