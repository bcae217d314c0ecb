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
import { concatBytes } from "../bytes.js"
import { fieldBytes } from "../message/headers.js"
import { normaliseCrlfString } from "../message/lineEndings.js"

/** @internal */
export type Method = "simple" | "relaxed"

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

/** A header field canonicalised, as the bytes it goes out as (`fieldBytes`). @internal */
export const headerBytes = (method: Method, field: Message.Header, terminate = true): Uint8Array =>
  fieldBytes(field, header(method, field, terminate))

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

/**
 * "simple" (§3.4.3): the body as it is, without its trailing empty lines, ending with CRLF.
 * Chunks are passed on as views, except a trailing run of CR and LF, held as a count until
 * content follows it (then written) or the body ends (then dropped for one CRLF).
 */
const makeSimple = (emit: (bytes: Uint8Array) => void): BodyCanonicaliser => {
  let held = 0
  const writeHeld = () => {
    while (held > 0) {
      const k = Math.min(held, CRLF_BLOCK.length)
      emit(CRLF_BLOCK.subarray(0, k))
      held -= k
    }
  }
  const push = (chunk: Uint8Array) => {
    let last = chunk.length - 1
    while (last >= 0 && (chunk[last] === CR || chunk[last] === LF)) last--
    if (last < 0) {
      held += chunk.length
      return
    }
    writeHeld()
    emit(chunk.subarray(0, last + 1))
    held = chunk.length - last - 1
  }
  // every body ends with one CRLF: after its last line, or alone for an empty body
  const end = () => emit(CRLF)
  return { push, end }
}

/**
 * "relaxed" (§3.4.4): WSP at the end of lines dropped, runs of WSP inside a line made one SP,
 * trailing empty lines dropped, an empty body left empty. Runs of other bytes are copied whole.
 */
const makeRelaxed = (emit: (bytes: Uint8Array) => void): BodyCanonicaliser => {
  // empty lines seen and not yet written: written only if content follows them
  let emptyLines = 0
  // a run of WSP not yet written: written as one SP only if content follows on the line
  let pendingSpace = false
  // the current line has a byte that is not WSP
  let lineHasContent = false
  let out = new Uint8Array(8192)
  let o = 0

  const flush = () => {
    if (o > 0) emit(out.subarray(0, o))
    o = 0
  }
  const writeEmptyLines = () => {
    flush()
    let n = emptyLines * 2
    while (n > 0) {
      const k = Math.min(n, CRLF_BLOCK.length)
      emit(CRLF_BLOCK.subarray(0, k))
      n -= k
    }
    emptyLines = 0
  }

  const push = (chunk: Uint8Array) => {
    // never longer than its input, but for an LF whose CR ended the previous chunk
    if (out.length < chunk.length + 2) out = new Uint8Array(chunk.length + 2)
    const n = chunk.length
    let i = 0
    while (i < n) {
      const b = chunk[i]!
      if (b === CR) {
        i++ // always followed by LF: the input is CRLF-normalised
      } else if (b === LF) {
        if (lineHasContent) {
          out[o++] = CR
          out[o++] = LF
        } else {
          emptyLines++
        }
        lineHasContent = false
        pendingSpace = false
        i++
      } else if (b === SP || b === TAB) {
        pendingSpace = true
        i++
      } else {
        let j = i + 1
        while (j < n) {
          const c = chunk[j]!
          if (c === CR || c === LF || c === SP || c === TAB) break
          j++
        }
        if (!lineHasContent) {
          if (emptyLines > 0) writeEmptyLines()
          lineHasContent = true
        }
        if (pendingSpace) {
          out[o++] = SP
          pendingSpace = false
        }
        out.set(chunk.subarray(i, j), o)
        o += j - i
        i = j
      }
    }
    flush()
  }

  const end = () => {
    // a last line without CRLF gets one
    if (lineHasContent) {
      out[o++] = CR
      out[o++] = LF
      lineHasContent = false
    }
    flush()
  }

  return { push, end }
}

/**
 * An incremental body canonicaliser over CRLF-normalised chunks; each canonical piece goes to
 * `emit`, which must not keep the array (pieces are views of the input or of a reused buffer).
 *
 * @internal
 */
export const makeBodyCanonicaliser = (method: Method, emit: (bytes: Uint8Array) => void): BodyCanonicaliser =>
  method === "simple" ? makeSimple(emit) : makeRelaxed(emit)

/** A whole CRLF-normalised body canonicalised in one array. @internal */
export const body = (method: Method, bytes: Uint8Array): Uint8Array => {
  const parts: Array<Uint8Array> = []
  const canonicaliser = makeBodyCanonicaliser(method, (piece) => parts.push(piece.slice()))
  canonicaliser.push(bytes)
  canonicaliser.end()
  return concatBytes(parts)
}
