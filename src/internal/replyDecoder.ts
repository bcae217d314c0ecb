/**
 * Incremental reply decoder: bytes in, raw reply lines out. Pure: no I/O, no Effect.
 *
 * Chunks are not lines: one chunk may hold several replies, a line may be split across chunks
 * (inside a UTF-8 character too: lines are decoded only once complete). Lines end with LF; a CR
 * before it is dropped (smtplib accepts bare LF as well).
 *
 * Each reply also comes with its bytes exactly as received (line ends included), for text that
 * is not UTF-8: a view into the chunk when the whole reply lies within one chunk (no copy), else
 * one array joining the copies kept of the earlier chunks.
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

/** One complete reply: its raw lines (`"250-first"`, `"250 last"`), and its bytes as received. */
export interface DecodedReply extends ReadonlyArray<string> {
  /**
   * The reply's bytes, every line with its line end. A view into the pushed chunk when the reply
   * lies within it: the caller must not reuse a chunk's buffer while the reply is in use.
   */
  readonly bytes: Uint8Array
}

export interface DecodeResult {
  /** Complete replies, each as its raw lines (`"250-first"`, `"250 last"`) with its bytes. */
  readonly replies: ReadonlyArray<DecodedReply>
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

/**
 * `bytes.subarray(from, to)`, as a plain Uint8Array: on a subclass (a Node Buffer) `subarray`
 * builds an instance of that class, through a species lookup and its constructor, for every line
 * (a Buffer's bytes are off the heap: reading its `buffer` costs nothing; a small plain array's
 * would be copied off the heap first, so it keeps `subarray`).
 */
const view = (bytes: Uint8Array, from: number, to: number): Uint8Array =>
  bytes.constructor === Uint8Array ?
    bytes.subarray(from, to) :
    new Uint8Array(bytes.buffer, bytes.byteOffset + from, to - from)

const preview = (bytes: Uint8Array): string => new TextDecoder().decode(bytes.subarray(0, 80))

export const make = (options?: { readonly maxLine?: number; readonly maxLines?: number }): ReplyDecoder => {
  const maxLine = options?.maxLine ?? MAX_LINE
  const maxLines = options?.maxLines ?? MAX_LINES
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true })
  /** Copies of the bytes of the reply in progress that came in earlier chunks. */
  let pending: Array<Uint8Array> = []
  let pendingLength = 0
  /** The last `partialLine` bytes of `pending` are a line whose LF has not come yet. */
  let partialLine = 0
  let lines: Array<string> = []
  let failed: DecodeFailure | undefined

  /** The bytes of `pending` from offset `from` on, followed by `tail`, in one new array. */
  const joinPending = (from: number, tail: Uint8Array): Uint8Array => {
    const out = new Uint8Array(pendingLength - from + tail.length)
    let skip = from
    let offset = 0
    for (const p of pending) {
      if (skip >= p.length) {
        skip -= p.length
        continue
      }
      const part = skip > 0 ? p.subarray(skip) : p
      skip = 0
      out.set(part, offset)
      offset += part.length
    }
    out.set(tail, offset)
    return out
  }

  const push = (chunk: Uint8Array): DecodeResult => {
    if (failed !== undefined) return { replies: [], failure: failed }
    const replies: Array<DecodedReply> = []
    /** Where the current line starts in the chunk. */
    let start = 0
    /** Where the current reply starts in the chunk (its bytes from earlier chunks are in `pending`). */
    let replyStart = 0
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start)
      if (lf === -1) {
        if (partialLine + chunk.length - start > maxLine) {
          const rest = chunk.subarray(start)
          failed = {
            _tag: "LineTooLong",
            line: preview(partialLine > 0 ? joinPending(pendingLength - partialLine, rest) : rest)
          }
          return { replies, failure: failed }
        }
        break
      }
      // the line is `raw[0, end)`: in the chunk itself when it started there (no copy, no view)
      let raw: Uint8Array = chunk
      let from = start
      let to = lf + 1
      if (partialLine > 0) {
        raw = joinPending(pendingLength - partialLine, chunk.subarray(start, lf + 1))
        from = 0
        to = raw.length
      }
      partialLine = 0
      start = lf + 1
      if (to - from > maxLine) {
        failed = { _tag: "LineTooLong", line: preview(raw.subarray(from, to)) }
        return { replies, failure: failed }
      }
      const end = to - from >= 2 && raw[to - 2] === CR ? to - 2 : to - 1
      const text = decoder.decode(view(raw, from, end))
      const last = end - from < 4 || raw[from + 3] !== HYPHEN
      // a reply of one line (the common case) as an array of exactly one, not a grown one
      if (last && lines.length === 0 && maxLines >= 1) lines = [text]
      else lines.push(text)
      if (lines.length > maxLines) {
        failed = { _tag: "TooManyLines", line: lines[0].slice(0, 80) }
        return { replies, failure: failed }
      }
      if (last) {
        const reply = lines as Array<string> & { bytes: Uint8Array }
        reply.bytes = pendingLength === 0 ? view(chunk, replyStart, start) : joinPending(0, chunk.subarray(0, start))
        replies.push(reply)
        lines = []
        if (pendingLength > 0) {
          pending = []
          pendingLength = 0
        }
        replyStart = start
      }
    }
    if (replyStart < chunk.length) {
      // copy: the caller may reuse its buffer
      const rest = chunk.slice(replyStart)
      pending.push(rest)
      pendingLength += rest.length
      partialLine += chunk.length - start
    }
    return { replies }
  }

  return { push, buffered: () => pendingLength }
}
