/**
 * Incremental reply decoder: bytes in, raw reply lines out. Pure: no I/O, no Effect.
 *
 * Chunks are not lines: one chunk may hold several replies, a line may be split across chunks
 * (inside a UTF-8 character too: lines are decoded only once complete). Lines end with LF; a CR
 * before it is dropped (smtplib accepts bare LF as well).
 *
 * @internal
 */

/** smtplib's `_MAXLINE`: a line, terminator included, may not exceed this many bytes. */
export const MAX_LINE = 8192
/** The most lines one reply may have. */
export const MAX_LINES = 1000

export type DecodeFailure =
  | { readonly _tag: "LineTooLong"; readonly line: string }
  | { readonly _tag: "TooManyLines"; readonly line: string }

export interface DecodeResult {
  /** Complete replies, each as its raw lines (`"250-first"`, `"250 last"`). */
  readonly replies: ReadonlyArray<ReadonlyArray<string>>
  /** Set when the stream is broken; nothing more can be decoded after it. */
  readonly failure?: DecodeFailure | undefined
}

export interface ReplyDecoder {
  readonly push: (chunk: Uint8Array) => DecodeResult
  /** Bytes received but not yet part of a complete reply. */
  readonly buffered: () => number
}

const LF = 10
const CR = 13
const HYPHEN = 45

const preview = (bytes: Uint8Array): string => new TextDecoder().decode(bytes.subarray(0, 80))

export const make = (options?: { readonly maxLine?: number; readonly maxLines?: number }): ReplyDecoder => {
  const maxLine = options?.maxLine ?? MAX_LINE
  const maxLines = options?.maxLines ?? MAX_LINES
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true })
  let partial: Array<Uint8Array> = []
  let partialLength = 0
  let lines: Array<string> = []
  let linesBytes = 0
  let failed: DecodeFailure | undefined

  const takeLine = (tail: Uint8Array): Uint8Array => {
    if (partial.length === 0) return tail
    const out = new Uint8Array(partialLength + tail.length)
    let offset = 0
    for (const p of partial) {
      out.set(p, offset)
      offset += p.length
    }
    out.set(tail, offset)
    partial = []
    partialLength = 0
    return out
  }

  const push = (chunk: Uint8Array): DecodeResult => {
    if (failed !== undefined) return { replies: [], failure: failed }
    const replies: Array<ReadonlyArray<string>> = []
    let start = 0
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start)
      if (lf === -1) {
        const rest = chunk.subarray(start)
        if (partialLength + rest.length > maxLine) {
          failed = { _tag: "LineTooLong", line: preview(takeLine(rest)) }
          return { replies, failure: failed }
        }
        // copy: the caller may reuse its buffer
        partial.push(rest.slice())
        partialLength += rest.length
        break
      }
      const raw = takeLine(chunk.subarray(start, lf + 1))
      start = lf + 1
      if (raw.length > maxLine) {
        failed = { _tag: "LineTooLong", line: preview(raw) }
        return { replies, failure: failed }
      }
      const end = raw.length >= 2 && raw[raw.length - 2] === CR ? raw.length - 2 : raw.length - 1
      const bytes = raw.subarray(0, end)
      const line = decoder.decode(bytes)
      lines.push(line)
      linesBytes += raw.length
      if (lines.length > maxLines) {
        failed = { _tag: "TooManyLines", line: lines[0].slice(0, 80) }
        return { replies, failure: failed }
      }
      if (bytes.length < 4 || bytes[3] !== HYPHEN) {
        replies.push(lines)
        lines = []
        linesBytes = 0
      }
    }
    return { replies }
  }

  return { push, buffered: () => partialLength + linesBytes }
}
