/**
 * Message data transforms: smtplib's end-of-line fix for string messages, dot-stuffing and the
 * final `CRLF.CRLF`, as pure state machines and as Stream transforms that never hold the whole
 * message. Pure: only `effect`.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { SmtpInvalidInput } from "../SmtpError.js"
import { allocate } from "./slab.js"
import * as Streams from "./stream.js"

const CR = 13
const LF = 10
const DOT = 46

/** smtplib's `_fix_eols`: CRLF, lone LF and lone CR all become CRLF. */
export const fixEols = (s: string): string => s.replace(/\r\n|\n|\r(?!\n)/g, "\r\n")

const nonAscii = /[^\x00-\x7f]/

/**
 * A string message as smtplib sends it: line endings fixed, ASCII only (smtplib raises
 * UnicodeEncodeError; a caller with non-ASCII text encodes it to bytes themselves).
 */
export const encodeStringMessage = (s: string): Either.Either<Uint8Array, SmtpInvalidInput> => {
  const m = nonAscii.exec(s)
  if (m !== null) {
    return Either.left(
      new SmtpInvalidInput({
        reason: `A string message must be ASCII (non-ASCII character at index ${m.index}); ` +
          "encode it to bytes (for example UTF-8 with BODY=8BITMIME) to send it unchanged"
      })
    )
  }
  const fixed = fixEols(s)
  const out = new Uint8Array(fixed.length)
  for (let i = 0; i < fixed.length; i++) out[i] = fixed.charCodeAt(i)
  return Either.right(out)
}

/**
 * A dot-stuffer: doubles a `.` at the start of every line, then ends the data. A line starts after
 * LF (smtplib's rule) and also after a lone CR: a server that ends lines at a bare CR must not
 * read an end of data inside the message either (the "SMTP smuggling" family).
 */
export interface DotStuffer {
  readonly push: (chunk: Uint8Array) => Uint8Array
  /** The end of data: `CRLF.CRLF`, or `.CRLF` when the data already ended with CRLF. */
  readonly end: () => Uint8Array
}

const END_AFTER_CRLF = new Uint8Array([DOT, CR, LF])
const END = new Uint8Array([CR, LF, DOT, CR, LF])

export const makeDotStuffer = (): DotStuffer => {
  let atLineStart = true
  let prev1 = -1
  let prev2 = -1
  const push = (chunk: Uint8Array): Uint8Array => {
    if (chunk.length === 0) return chunk
    let out = chunk
    let dot = chunk.indexOf(DOT)
    if (dot !== -1) {
      const dots: Array<number> = []
      while (dot !== -1) {
        const before = dot === 0 ? (atLineStart ? LF : -1) : chunk[dot - 1]
        if (before === LF || before === CR) dots.push(dot)
        dot = chunk.indexOf(DOT, dot + 1)
      }
      if (dots.length > 0) {
        out = new Uint8Array(chunk.length + dots.length)
        let from = 0
        let to = 0
        for (const d of dots) {
          out.set(chunk.subarray(from, d), to)
          to += d - from
          out[to++] = DOT
          from = d
        }
        out.set(chunk.subarray(from), to)
      }
    }
    const last = chunk[chunk.length - 1]
    atLineStart = last === LF || last === CR
    if (chunk.length >= 2) {
      prev2 = chunk[chunk.length - 2]
      prev1 = last
    } else {
      prev2 = prev1
      prev1 = last
    }
    return out
  }
  const end = () => (prev2 === CR && prev1 === LF ? END_AFTER_CRLF : END).slice()
  return { push, end }
}

/**
 * Dot-stuffs a whole buffer and appends the end of data (smtplib's `data()` on bytes), as the
 * stuffer does, in one array (from a slab when small).
 */
export const dotStuffBytes = (data: Uint8Array): Uint8Array => {
  let dots = 0
  for (let dot = data.indexOf(DOT); dot !== -1; dot = data.indexOf(DOT, dot + 1)) {
    const before = dot === 0 ? LF : data[dot - 1]
    if (before === LF || before === CR) dots++
  }
  const end = endsWithCrlf(data) ? END_AFTER_CRLF : END
  const out = allocate(data.length + dots + end.length)
  if (dots === 0) out.set(data)
  else {
    let from = 0
    let to = 0
    for (let dot = data.indexOf(DOT); dot !== -1; dot = data.indexOf(DOT, dot + 1)) {
      const before = dot === 0 ? LF : data[dot - 1]
      if (before === LF || before === CR) {
        out.set(data.subarray(from, dot), to)
        to += dot - from
        out[to++] = DOT
        from = dot
      }
    }
    out.set(data.subarray(from), to)
  }
  out.set(end, out.length - end.length)
  return out
}

/** Dot-stuffing and the end of data as a Stream transform; state is fresh for every run. */
export const dotStuff = <E, R>(data: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    const stuffer = makeDotStuffer()
    return data.pipe(
      Stream.mapChunks(Chunk.map(stuffer.push)),
      (stuffed) => Streams.concat(stuffed, Stream.sync(stuffer.end))
    )
  })

/** Stuffing works on pieces of at most this size, so its copies stay small whatever the input's elements. */
const STUFF_SLICE = 64 * 1024

/**
 * Dot-stuffing as a Stream transform without the end of data, and the end of data to write after
 * it (known once the stream has ended). Large elements are stuffed in slices. For one run only.
 */
export const dotStuffParts = <E, R>(
  data: Stream.Stream<Uint8Array, E, R>
): { readonly body: Stream.Stream<Uint8Array, E, R>; readonly end: () => Uint8Array } => {
  const stuffer = makeDotStuffer()
  const body = Stream.mapChunks(data, (chunk) => {
    const out: Array<Uint8Array> = []
    for (const element of chunk) {
      if (element.length <= STUFF_SLICE) out.push(stuffer.push(element))
      else {
        for (let offset = 0; offset < element.length; offset += STUFF_SLICE) {
          out.push(stuffer.push(element.subarray(offset, offset + STUFF_SLICE)))
        }
      }
    }
    return Chunk.unsafeFromArray(out)
  })
  return { body, end: stuffer.end }
}

/** Reverses dot-stuffing and strips the end of data: what a server stores. For tests. */
export const unstuff = (wire: string): string => {
  if (!wire.endsWith("\r\n.\r\n") && wire !== ".\r\n") throw new Error("data does not end with CRLF.CRLF")
  const body = wire === ".\r\n" ? "" : wire.slice(0, -3)
  return body.replace(/(^|[\r\n])\.\./g, "$1.")
}

const CRLF = new Uint8Array([CR, LF])

/** Whether bytes end with CRLF. */
export const endsWithCrlf = (data: Uint8Array): boolean =>
  data.length >= 2 && data[data.length - 2] === CR && data[data.length - 1] === LF

/** The pieces of a message for BDAT: the bytes, plus CRLF when they do not end with one. */
export const withFinalCrlf = (data: Uint8Array): ReadonlyArray<Uint8Array> =>
  endsWithCrlf(data) ? [data] : [data, CRLF.slice()]

/**
 * Appends CRLF when the data does not end with one, as a Stream transform: what DATA's
 * terminator does implicitly, so that BDAT delivers the same message.
 */
export const ensureFinalCrlf = <E, R>(data: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    let prev1 = -1
    let prev2 = -1
    return data.pipe(
      Stream.map((chunk) => {
        if (chunk.length >= 2) {
          prev2 = chunk[chunk.length - 2]
          prev1 = chunk[chunk.length - 1]
        } else if (chunk.length === 1) {
          prev2 = prev1
          prev1 = chunk[0]
        }
        return chunk
      }),
      (checked) =>
        Streams.concat(
          checked,
          Stream.suspend(() => (prev2 === CR && prev1 === LF ? Stream.empty : Stream.succeed(CRLF.slice())))
        )
    )
  })

const messageIdHeader = /^message-id:[ \t]*((?:.|\r?\n[ \t])*)/im

/**
 * The Message-ID header of a message in memory (its header section only; unfolded and trimmed),
 * for the send result. Not a parser: the first Message-ID line before the blank line.
 */
export const messageIdOf = (bytes: Uint8Array): string | undefined => {
  // the header section ends at the first empty line; read at most 64 KiB of it
  let end = Math.min(bytes.length, 64 * 1024)
  for (let i = 0; i + 1 < end; i++) {
    if (bytes[i] === LF && (bytes[i + 1] === LF || (bytes[i + 1] === CR && bytes[i + 2] === LF))) {
      end = i + 1
      break
    }
  }
  const match = messageIdHeader.exec(latin1.decode(bytes.subarray(0, end)))
  if (match === null) return undefined
  const value = match[1].replace(/\r?\n[ \t]+/g, " ").trim()
  return value === "" ? undefined : value
}

const latin1 = new TextDecoder("latin1")
