/**
 * Serialisation for the wire: the header fields in order with CRLF line endings, Bcc and
 * Resent-Bcc left out, the blank line, then the body with its line endings normalised to CRLF
 * (as Python's generator does with `linesep="\r\n"`). A Stream body stays a Stream.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type * as Message from "../../Message.js"
import type { SmtpInvalidInput } from "../../SmtpError.js"
import * as Streams from "../stream.js"
import { concatBytes, isAscii, utf8 } from "./bytes.js"
import { anyLatin1, fieldBytes, validateField } from "./headers.js"
import { normaliseCrlf, normaliseCrlfStream, normaliseCrlfString } from "./lineEndings.js"

const NOT_TRANSMITTED = new Set(["bcc", "resent-bcc"])
const CRLF = new Uint8Array([13, 10])

/** The fields that go on the wire: all but Bcc and Resent-Bcc. @internal */
export const transmitted = (headers: ReadonlyArray<Message.Header>): Array<Message.Header> =>
  headers.filter((h) => !NOT_TRANSMITTED.has(h.name.toLowerCase()))

/** The header section as bytes, blank line included, after checking every field. @internal */
export const headerBytes = (headers: ReadonlyArray<Message.Header>): Either.Either<Uint8Array, SmtpInvalidInput> => {
  const fields = transmitted(headers)
  for (const header of fields) {
    const valid = validateField(header)
    if (Either.isLeft(valid)) return Either.left(valid.left)
  }
  const line = (header: Message.Header) => `${header.name}:${normaliseCrlfString(header.value)}\r\n`
  // a field parsed from a legacy 8-bit header section goes back as the bytes it came from
  if (anyLatin1(fields)) return Either.right(concatBytes([...fields.map((h) => fieldBytes(h, line(h))), CRLF]))
  let text = ""
  for (const header of fields) text += line(header)
  return Either.right(utf8(text + "\r\n"))
}

/** Whether a transmitted header field holds raw non-ASCII text. @internal */
export const needsSmtpUtf8 = (message: Message.Message<any, any>): boolean =>
  transmitted(message.headers).some((h) => !isAscii(h.name) || !isAscii(h.value))

/** The serialised message, from header bytes already checked. @internal */
export const serializeWith = <E = never, R = never>(
  head: Uint8Array,
  body: Uint8Array | Stream.Stream<Uint8Array, E, R>
): Uint8Array | Stream.Stream<Uint8Array, E, R> =>
  body instanceof Uint8Array
    ? concatBytes([head, normaliseCrlf(body)])
    : Streams.concat(Stream.succeed(head), normaliseCrlfStream(body))

/** @internal */
export const toStream = <E = never, R = never>(
  message: Message.Message<E, R>
): Stream.Stream<Uint8Array, E | SmtpInvalidInput, R> =>
  Stream.suspend((): Stream.Stream<Uint8Array, E | SmtpInvalidInput, R> =>
    Either.match(headerBytes(message.headers), {
      onLeft: (e) => Stream.fail(e),
      onRight: (head) => {
        const out = serializeWith(head, message.body)
        return out instanceof Uint8Array ? Stream.succeed(out) : out
      }
    })
  )

/** @internal */
export const toBytes = <E = never, R = never>(
  message: Message.Message<E, R>
): Effect.Effect<Uint8Array, E | SmtpInvalidInput, R> =>
  Effect.suspend((): Effect.Effect<Uint8Array, E | SmtpInvalidInput, R> => {
    const head = headerBytes(message.headers)
    if (Either.isLeft(head)) return Effect.fail(head.left)
    const out = serializeWith(head.right, message.body)
    return out instanceof Uint8Array
      ? Effect.succeed(out)
      : Effect.map(Stream.runCollect(out), (chunks) => concatBytes(Chunk.toReadonlyArray(chunks)))
  })
