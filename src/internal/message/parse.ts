/**
 * Parsing a message: only the header section is read and held; the body is left as bytes (a
 * view, not a copy) or as the rest of the source Stream, untouched.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput } from "../../SmtpError.js"
import * as Streams from "../stream.js"
import { concatBytes, CR, EMPTY, LF, utf8 } from "./bytes.js"
import { parseHeaderBytes } from "./headers.js"

/** The default bound on the header section: 1 MiB. @internal */
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024

/**
 * Finds the end of the header section (the first empty line: CRLF CRLF, LF LF, or an empty line
 * at the very start) incrementally. `push` returns the index in the chunk of the first body byte,
 * or -1 when the header section goes on.
 *
 * @internal
 */
export interface HeaderEndFinder {
  readonly push: (chunk: Uint8Array) => number
}

const MID_LINE = 0
const LINE_START = 1
const CR_AT_LINE_START = 2

/** @internal */
export const makeHeaderEndFinder = (): HeaderEndFinder => {
  let state = LINE_START
  const push = (chunk: Uint8Array): number => {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!
      if (state === MID_LINE) {
        if (b === LF) state = LINE_START
        else if (b !== CR) {
          // a fast path over the rest of the line
          const lf = chunk.indexOf(LF, i + 1)
          if (lf === -1) return -1
          i = lf
          state = LINE_START
        }
      } else if (state === LINE_START) {
        if (b === LF) return i + 1
        state = b === CR ? CR_AT_LINE_START : MID_LINE
      } else {
        if (b === LF) return i + 1
        state = MID_LINE
      }
    }
    return -1
  }
  return { push }
}

/** @internal */
export interface ParseOptions {
  readonly maxHeaderBytes?: number | undefined
}

const tooLarge = (max: number) =>
  new SmtpInvalidInput({ reason: `The header section is larger than ${max} bytes (or has no end)` })

/** @internal */
export const parse = (
  input: string | Uint8Array,
  options?: ParseOptions
): Either.Either<Message.Message, SmtpInvalidInput> => {
  if (typeof input !== "string" && !(input instanceof Uint8Array)) {
    return Either.left(new SmtpInvalidInput({ reason: "Message.parse takes a string or bytes" }))
  }
  const max = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
  const bytes = typeof input === "string" ? utf8(input) : input
  const at = makeHeaderEndFinder().push(bytes)
  const headerEnd = at === -1 ? bytes.length : at
  if (headerEnd > max) return Either.left(tooLarge(max))
  return Either.map(
    parseHeaderBytes(bytes.subarray(0, headerEnd)),
    (headers): Message.Message => ({ headers, body: at === -1 ? EMPTY : bytes.subarray(at) })
  )
}

/**
 * Pulls the source only until the end of the header section. The body Stream yields the rest
 * of the chunk that held the blank line, then pulls the source on (valid within the Scope); run
 * again (a retry), it reads the source again.
 *
 * @internal
 */
export const parseStream = <E = never, R = never>(
  source: Stream.Stream<Uint8Array, E, R>,
  options?: ParseOptions
): Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, SmtpInvalidInput | E, R | Scope.Scope> =>
  Effect.gen(function*() {
    const max = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
    const pull = yield* Stream.toPull(source)
    const finder = makeHeaderEndFinder()
    const head: Array<Uint8Array> = []
    let size = 0
    let rest: Array<Uint8Array> | undefined
    while (rest === undefined) {
      const next = yield* Effect.catchAll(
        Effect.map(pull, Option.some),
        (e) => Option.isNone(e) ? Effect.succeed(Option.none<Chunk.Chunk<Uint8Array>>()) : Effect.fail(e.value)
      )
      if (Option.isNone(next)) break
      const pieces = Chunk.toReadonlyArray(next.value)
      for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i]!
        const at = finder.push(piece)
        if (at === -1) {
          head.push(piece)
          size += piece.length
          if (size > max) return yield* Effect.fail(tooLarge(max))
          continue
        }
        head.push(piece.subarray(0, at))
        size += at
        if (size > max) return yield* Effect.fail(tooLarge(max))
        rest = [piece.subarray(at), ...pieces.slice(i + 1)].filter((p) => p.length > 0)
        break
      }
    }
    const headerBytes = concatBytes(head)
    const headers = yield* parseHeaderBytes(headerBytes)
    if (rest === undefined) return { headers, body: EMPTY }
    // the first run goes on from where the header section ended; a later one (a retry) reads the
    // source again and skips the header section, which must come back the same
    const first = Streams.concat(Streams.fromIterable(rest), Stream.repeatEffectChunkOption(pull))
    let ran = false
    const body = Stream.suspend(() => {
      if (ran) return readAgain(source, headerBytes)
      ran = true
      return first
    })
    return { headers, body }
  }).pipe(Effect.withSpan("Message.parseStream"))

const readAgainFailed = () =>
  new SmtpInvalidInput({
    reason: "A parsed message was read again and its source gave other bytes (or none)"
  })

/**
 * The source read again, less its first `head.length` bytes, which must be `head`: the body of a
 * parsed message, for a second run. A source that ends early or differs fails the Stream (before
 * the end of the data: nothing is delivered) rather than giving a shorter or other body.
 */
const readAgain = <E, R>(
  source: Stream.Stream<Uint8Array, E, R>,
  head: Uint8Array
): Stream.Stream<Uint8Array, E | SmtpInvalidInput, R> =>
  Stream.suspend(() => {
    let matched = 0
    let differs = false
    const body = Stream.mapConcat(source, (piece): ReadonlyArray<Uint8Array> => {
      if (differs) return []
      if (matched === head.length) return [piece]
      const n = Math.min(piece.length, head.length - matched)
      for (let i = 0; i < n; i++) {
        if (piece[i] !== head[matched + i]) {
          differs = true
          return []
        }
      }
      matched += n
      return n === piece.length ? [] : [piece.subarray(n)]
    })
    return Streams.concat(
      body,
      Stream.suspend(() => differs || matched < head.length ? Stream.fail(readAgainFailed()) : Stream.empty)
    )
  })
