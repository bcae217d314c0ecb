/**
 * Header fields: parsing a header section, unfolding, case-insensitive lookup, validation of
 * names and values, and the functional updates. Pure.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput } from "../../SmtpError.js"
import { decodeLatin1, decodeUtf8, hasLineBreak, isAscii, latin1Bytes, show, utf8 } from "./bytes.js"
import { foldField } from "./fold.js"

type Header = Message.Header

/** A field name: printable US-ASCII except the colon (RFC 5322 §2.2, ftext). @internal */
export const isFieldName = (name: string): boolean => {
  if (name.length === 0) return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 33 || c > 126 || c === 58) return false
  }
  return true
}

const isWsp = (c: string | undefined) => c === " " || c === "\t"

/**
 * Marks a field parsed from a header section that was not UTF-8 and holds characters past ASCII:
 * read as Latin-1, it is written back as Latin-1 (`fieldBytes`), byte for byte. Not enumerable:
 * a field a caller makes or copies is written as UTF-8.
 */
const Latin1: unique symbol = Symbol.for("effect-smtp/internal/message/headers/Latin1")

/**
 * The header section of a message's bytes: as UTF-8, or, when it is not valid UTF-8 (a legacy
 * 8-bit header), as Latin-1, its non-ASCII fields marked to be written back as they came.
 *
 * @internal
 */
export const parseHeaderBytes = (bytes: Uint8Array): Either.Either<Array<Header>, SmtpInvalidInput> => {
  const text = decodeUtf8(bytes)
  if (text !== undefined) return parseHeaderSection(text)
  return Either.map(parseHeaderSection(decodeLatin1(bytes)), (headers) => {
    for (const h of headers) {
      if (!isAscii(h.name) || !isAscii(h.value)) Object.defineProperty(h, Latin1, { value: true })
    }
    return headers
  })
}

/** A field's text as it goes on the wire: UTF-8, or Latin-1 for a field `parseHeaderBytes` marked. @internal */
export const fieldBytes = (header: Header, text: string): Uint8Array =>
  (header as { readonly [Latin1]?: true })[Latin1] === true ? latin1Bytes(text) : utf8(text)

/** Whether any of the fields is written as Latin-1 (`fieldBytes`). @internal */
export const anyLatin1 = (headers: ReadonlyArray<Header>): boolean =>
  headers.some((h) => (h as { readonly [Latin1]?: true })[Latin1] === true)

/**
 * Splits a header section (the text before the blank line, or up to the first blank line) into
 * fields. Lines end with CRLF or LF (a bare CR is refused: the end of the header section is
 * found by CRLF CRLF or LF LF only). Continuation lines are kept in the raw value, joined with
 * CRLF. A first line that is an mbox `From ` separator is dropped, as Python's parser does.
 *
 * @internal
 */
export const parseHeaderSection = (text: string): Either.Either<Array<Header>, SmtpInvalidInput> => {
  const lines = text.split(/\r?\n/)
  const headers: Array<{ name: string; value: string }> = []
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!
    if (line.length === 0) break
    if (line.includes("\r")) {
      return Either.left(new SmtpInvalidInput({ reason: `Malformed header section: a bare CR on line ${n + 1}` }))
    }
    if (n === 0 && line.startsWith("From ")) continue
    if (isWsp(line[0])) {
      const last = headers[headers.length - 1]
      if (last === undefined) {
        return Either.left(new SmtpInvalidInput({ reason: "Malformed header section: line 1 is a continuation line" }))
      }
      last.value += "\r\n" + line
      continue
    }
    const colon = line.indexOf(":")
    const name = colon === -1 ? "" : line.slice(0, colon).replace(/[ \t]+$/, "")
    if (!isFieldName(name)) {
      return Either.left(
        new SmtpInvalidInput({ reason: `Malformed header section: line ${n + 1} is not a header field` })
      )
    }
    headers.push({ name, value: line.slice(colon + 1) })
  }
  return Either.right(headers)
}

/**
 * Unfolds a raw value (RFC 5322 §2.2.3: a line break followed by white space is removed, the
 * white space stays) and trims the folding white space (space and tab, not Unicode white space:
 * a raw UTF-8 value may begin with U+2029 or U+00A0) at its ends.
 *
 * @internal
 */
export const unfold = (raw: string): string => raw.replace(/\r\n|\r|\n/g, "").replace(/^[ \t]+|[ \t]+$/g, "")

const sameName = (a: string, b: string) => a.length === b.length && a.toLowerCase() === b.toLowerCase()

/** @internal */
export const has = (headers: ReadonlyArray<Header>, name: string): boolean =>
  headers.some((h) => sameName(h.name, name))

/** @internal */
export const get = (headers: ReadonlyArray<Header>, name: string): Option.Option<string> => {
  const found = headers.find((h) => sameName(h.name, name))
  return found === undefined ? Option.none() : Option.some(unfold(found.value))
}

/** @internal */
export const getAll = (headers: ReadonlyArray<Header>, name: string): Array<string> =>
  headers.filter((h) => sameName(h.name, name)).map((h) => unfold(h.value))

/** @internal */
export const remove = (headers: ReadonlyArray<Header>, name: string): Array<Header> =>
  headers.filter((h) => !sameName(h.name, name))

/** Control characters no header field value may hold (RFC 5322 §2.2: printable characters and WSP). */
const control = /[\x00-\x08\x0b-\x1f\x7f]/

/**
 * Builds a field from a name and an unfolded value given by a caller: the name must be a valid
 * field name, the value must hold no CR or LF (header injection); long values are folded at
 * white space.
 *
 * @internal
 */
export const makeField = (name: string, value: string, what = `header ${JSON.stringify(name)}`) =>
  Either.gen(function*() {
    if (!isFieldName(name)) {
      return yield* Either.left(
        new SmtpInvalidInput({ reason: `Invalid header field name ${JSON.stringify(name)}` })
      )
    }
    if (typeof value !== "string") return yield* Either.left(new SmtpInvalidInput({ reason: `${what}: not a string` }))
    if (hasLineBreak(value)) {
      return yield* Either.left(
        new SmtpInvalidInput({ reason: `${what}: ${show(value)} holds CR or LF (header injection)` })
      )
    }
    // (the values a caller writes as they are: a Message-ID, a Date, setHeader's; text that is
    // encoded, a subject or a name, reaches here encoded)
    if (control.test(value)) {
      return yield* Either.left(
        new SmtpInvalidInput({
          reason: `${what}: ${show(value)} holds a control character (NUL to US but tab, or DEL)`
        })
      )
    }
    const folded = foldField(name, value)
    if (folded === undefined) {
      return yield* Either.left(
        new SmtpInvalidInput({
          reason: `${what}: ${show(value)} has a word too long to fold into lines of at most 998 octets`
        })
      )
    }
    return { name, value: folded } satisfies Header
  })

/**
 * Checks a field before it goes on the wire: a valid name, and every line break inside the raw
 * value followed by white space (a fold), so that no value can start a new field.
 *
 * @internal
 */
export const validateField = (header: Header): Either.Either<void, SmtpInvalidInput> => {
  if (!isFieldName(header.name)) {
    return Either.left(new SmtpInvalidInput({ reason: `Invalid header field name ${JSON.stringify(header.name)}` }))
  }
  const parts = header.value.split(/\r\n|\r|\n/)
  for (let i = 1; i < parts.length; i++) {
    if (!isWsp(parts[i]![0])) {
      return Either.left(
        new SmtpInvalidInput({
          reason: `Header ${JSON.stringify(header.name)} holds a line break that is not a fold (header injection)`
        })
      )
    }
  }
  return Either.void
}
