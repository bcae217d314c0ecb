/**
 * DKIM canonicalisation (RFC 6376 §3.4): "simple" and "relaxed", for header fields and for the
 * body. Pure: strings or bytes in, bytes out. The body canonicaliser is incremental (a byte
 * state machine that holds back only a count of trailing empty lines and one pending space), so
 * a streamed body is hashed chunk by chunk in constant memory.
 *
 * The input body must already have CRLF line endings (the serialiser's normalisation runs
 * first), since what is hashed must be what goes on the wire.
 *
 * @internal
 */
import type * as Message from "../../Message.js"
import { normaliseCrlfString } from "../message/lineEndings.js"

/** @internal */
export type Method = "simple" | "relaxed"

const encoder = new TextEncoder()

/** The value as it goes on the wire: line breaks as CRLF. */
const wireValue = (value: string): string => normaliseCrlfString(value)

/**
 * One header field canonicalised, with its CRLF (RFC 6376 §3.4.1, §3.4.2). The DKIM-Signature
 * field being signed is canonicalised with `terminate = false` (§3.7).
 *
 * @internal
 */
export const header = (method: Method, field: Message.Header, terminate = true): string => {
  const end = terminate ? "\r\n" : ""
  if (method === "simple") return `${field.name}:${wireValue(field.value)}${end}`
  const value = wireValue(field.value)
    .replace(/\r\n/g, "")
    .replace(/[ \t]+/g, " ")
    .replace(/^ | $/g, "")
  return `${field.name.toLowerCase().replace(/[ \t]+$/, "")}:${value}${end}`
}

/** A header field canonicalised, as UTF-8 bytes. @internal */
export const headerBytes = (method: Method, field: Message.Header, terminate = true): Uint8Array =>
  encoder.encode(header(method, field, terminate))

/**
 * An incremental body canonicaliser: `push` takes CRLF-normalised chunks, `end` flushes; each
 * canonical piece goes to `emit` (which must not keep the array: it is reused).
 *
 * @internal
 */
export interface BodyCanonicaliser {
  readonly push: (chunk: Uint8Array) => void
  readonly end: () => void
}

const CR = 13
const LF = 10
const SP = 32
const TAB = 9
const CRLF = Uint8Array.of(CR, LF)
const CRLF_BLOCK = new Uint8Array(4096).map((_, i) => (i % 2 === 0 ? CR : LF))

/** @internal */
export const makeBodyCanonicaliser = (method: Method, emit: (bytes: Uint8Array) => void): BodyCanonicaliser => {
  const relaxed = method === "relaxed"
  // empty lines seen and not yet written: written only if content follows them
  let emptyLines = 0
  // a run of WSP not yet written (relaxed): written as one SP only if content follows on the line
  let pendingSpace = false
  // the current line has content (for simple, any byte; for relaxed, a non-WSP byte)
  let lineHasContent = false
  // something was written: for simple, an empty canonical body is CRLF
  let wrote = false
  let out = new Uint8Array(8192)
  let o = 0

  const flush = () => {
    if (o > 0) {
      emit(out.subarray(0, o))
      wrote = true
      o = 0
    }
  }
  const put = (b: number) => {
    if (o === out.length) flush()
    out[o++] = b
  }
  const writeEmptyLines = () => {
    if (emptyLines === 0) return
    flush()
    let n = emptyLines * 2
    while (n > 0) {
      const k = Math.min(n, CRLF_BLOCK.length)
      emit(CRLF_BLOCK.subarray(0, k))
      n -= k
    }
    wrote = true
    emptyLines = 0
  }

  const push = (chunk: Uint8Array) => {
    if (out.length < chunk.length + 2) out = new Uint8Array(chunk.length + 2)
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      if (b === CR) continue // always followed by LF: the input is CRLF-normalised
      if (b === LF) {
        if (lineHasContent) {
          put(CR)
          put(LF)
        } else {
          emptyLines++
        }
        lineHasContent = false
        pendingSpace = false
        continue
      }
      if (relaxed && (b === SP || b === TAB)) {
        pendingSpace = true
        continue
      }
      if (!lineHasContent) {
        if (emptyLines > 0) writeEmptyLines()
        lineHasContent = true
      }
      if (pendingSpace) {
        put(SP)
        pendingSpace = false
      }
      put(b)
    }
    flush()
  }

  const end = () => {
    // a last line without CRLF gets one (RFC 6376 §3.4.3, §3.4.4)
    if (lineHasContent) {
      put(CR)
      put(LF)
      lineHasContent = false
    }
    flush()
    if (!relaxed && !wrote) emit(CRLF)
    wrote = true
  }

  return { push, end }
}

/** A whole CRLF-normalised body canonicalised in one array. @internal */
export const body = (method: Method, bytes: Uint8Array): Uint8Array => {
  const parts: Array<Uint8Array> = []
  let size = 0
  const canonicaliser = makeBodyCanonicaliser(method, (piece) => {
    parts.push(piece.slice())
    size += piece.length
  })
  canonicaliser.push(bytes)
  canonicaliser.end()
  const result = new Uint8Array(size)
  let at = 0
  for (const part of parts) {
    result.set(part, at)
    at += part.length
  }
  return result
}
