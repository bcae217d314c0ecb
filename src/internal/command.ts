/**
 * Command encoding. Pure.
 *
 * @internal
 */
import * as Either from "effect/Either"
import { SmtpInvalidInput } from "../SmtpError.js"
import { allocate } from "./slab.js"

const encoder = new TextEncoder()

/** One encoded command: the bytes for the wire and a display form for the transcript. */
export interface Command {
  /** The verb, upper-case (`"MAIL"`): what errors and spans name. */
  readonly verb: string
  readonly bytes: Uint8Array
  /** The line as the debug transcript shows it (secrets replaced). */
  readonly display: string
  /** Bytes written right after the line (a BDAT chunk); never shown in the transcript. */
  readonly payload?: ReadonlyArray<Uint8Array> | undefined
  /** How many replies it draws: 1, or one per accepted recipient at an LMTP end of data. */
  readonly replies?: number | undefined
  /** It ends message data (the final dot, `BDAT ... LAST`): once written, the message may be accepted. */
  readonly endsData?: boolean | undefined
}

/**
 * A command line known to be ASCII without CR, LF or NUL: its bytes are made when read, or
 * together with the rest of its flight (`encodeLines`: one array for a whole flight).
 */
class AsciiLine implements Command {
  private encoded: Uint8Array | undefined = undefined
  constructor(readonly verb: string, readonly line: string, readonly display: string) {}
  get bytes(): Uint8Array {
    if (this.encoded === undefined) {
      this.encoded = allocate(this.line.length + 2)
      copyLine(this.line, this.encoded, 0)
    }
    return this.encoded
  }
}

/** Writes an ASCII line and CRLF at `at`; returns where it ends. */
const copyLine = (line: string, out: Uint8Array, at: number): number => {
  for (let i = 0; i < line.length; i++) out[at++] = line.charCodeAt(i)
  out[at++] = 13
  out[at++] = 10
  return at
}

/** How many bytes a command's line (and payload) takes, without encoding it. */
export const byteLength = (c: Command): number => {
  let n = c instanceof AsciiLine ? c.line.length + 2 : c.bytes.length
  if (c.payload !== undefined) { for (const p of c.payload) n += p.length }
  return n
}

/**
 * The bytes of a flight of commands in one array, when every one is an ASCII line (no payload);
 * `undefined` otherwise.
 */
export const encodeLines = (commands: ReadonlyArray<Command>): Uint8Array | undefined => {
  let size = 0
  for (const c of commands) {
    if (!(c instanceof AsciiLine)) return undefined
    size += c.line.length + 2
  }
  const out = allocate(size)
  let at = 0
  for (const c of commands) at = copyLine((c as AsciiLine).line, out, at)
  return out
}

/**
 * Message data already dot-stuffed and terminated, as one write that draws `replies` replies
 * (the end of data: one in SMTP, one per accepted recipient in LMTP).
 */
export const messageData = (stuffed: Uint8Array, replies: number): Command => ({
  verb: "<end of data>",
  bytes: stuffed,
  display: `<message data: ${stuffed.length} bytes>`,
  replies,
  endsData: true
})

/** `BDAT n [LAST]` with its chunk (RFC 3030), given as one or more pieces. */
export const bdat = (chunk: Uint8Array | ReadonlyArray<Uint8Array>, last: boolean): Command => {
  const pieces = chunk instanceof Uint8Array ? [chunk] : chunk
  const size = pieces.reduce((n, p) => n + p.length, 0)
  const line = `BDAT ${size}${last ? " LAST" : ""}`
  return { verb: "BDAT", bytes: encoder.encode(`${line}\r\n`), display: line, payload: pieces, endsData: last }
}

/** The verbs errors, spans and logs may name; any other (given to `docmd`) is `"the command"`. */
const knownVerbs = new Set([
  "HELO",
  "EHLO",
  "LHLO",
  "MAIL",
  "RCPT",
  "DATA",
  "BDAT",
  "RSET",
  "VRFY",
  "EXPN",
  "HELP",
  "NOOP",
  "QUIT",
  "STARTTLS",
  "AUTH",
  "ETRN",
  "ATRN",
  "TURN",
  "XCLIENT",
  "XFORWARD",
  "<end of data>",
  "<greeting>"
])

/**
 * How errors and spans name a command: its verb when it is a known one, never anything else a
 * caller wrote (a `docmd` line could be a credential: smtplib-style manual AUTH).
 */
export const verbName = (verb: string): string => (knownVerbs.has(verb) ? verb : "the command")

const nonAscii = /[^\x00-\x7f]/

/** The verb a command line names, upper-case. */
const verbOf = (verb: string): string => (verb.includes(" ") ? verb.split(" ")[0] : verb).toUpperCase()
const lineBreak = /[\r\n]/

/**
 * Encodes `VERB args\r\n`. CR or LF anywhere is refused (smtplib raises ValueError), as is a
 * non-ASCII character unless `utf8` (an SMTPUTF8 transaction).
 */
export const encode = (
  verb: string,
  args?: string | undefined,
  options?: { readonly utf8?: boolean | undefined; readonly display?: string | undefined }
): Either.Either<Command, SmtpInvalidInput> => {
  const line = args === undefined || args === "" ? verb : `${verb} ${args}`
  // the common case: ASCII without CR, LF or NUL, encoded when written (with its flight)
  let i = 0
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c > 0x7f || c === 13 || c === 10 || c === 0) break
  }
  if (i === line.length) return Either.right(new AsciiLine(verbOf(verb), line, options?.display ?? line))
  // only a known verb is named: anything else could be a secret given to docmd
  const named = () => {
    const known = verbName(verb.split(/[\s\0]/)[0].toUpperCase())
    return known === "the command" ? known : JSON.stringify(known)
  }
  if (lineBreak.test(line)) {
    return Either.left(
      new SmtpInvalidInput({ reason: `A command may not contain CR or LF: ${named()} (nothing was sent)` })
    )
  }
  if (line.includes("\0")) {
    return Either.left(new SmtpInvalidInput({ reason: `A command may not contain NUL: ${named()} (nothing was sent)` }))
  }
  if (options?.utf8 !== true && nonAscii.test(line)) {
    return Either.left(
      new SmtpInvalidInput({
        reason: `Non-ASCII characters in ${named()}: they need SMTPUTF8 (pass it in the mail options)`
      })
    )
  }
  return Either.right({ verb: verbOf(verb), bytes: encoder.encode(`${line}\r\n`), display: options?.display ?? line })
}

const addressBreak = /[\r\n\0]/
const unsafeAddress = (what: string) =>
  new SmtpInvalidInput({ reason: `The ${what} address contains CR, LF or NUL (nothing was sent)` })

/** Refuses an address with CR, LF or NUL anywhere (before any bracket extraction hides it). */
export const checkAddress = (what: string, address: string): Either.Either<string, SmtpInvalidInput> =>
  addressBreak.test(address) ? Either.left(unsafeAddress(what)) : Either.right(address)

const utf8Line = { utf8: true }
/** An address that is not a string (a JavaScript caller may give anything). */
export const notAString = (what: "sender" | "recipient") =>
  new SmtpInvalidInput({ reason: `The ${what} address is not a string (nothing was sent)` })

/**
 * `MAIL FROM:<sender>` or `RCPT TO:<recipient>` and its parameters (`params`: empty, or a space
 * and the parameters), as `checkAddress` then `encode` make it, in one step (two a message and
 * one per recipient).
 */
export const addressCommand = (
  verb: "MAIL" | "RCPT",
  address: string,
  params: string,
  utf8: boolean
): Either.Either<Command, SmtpInvalidInput> =>
  typeof address !== "string" ?
    Either.left(notAString(verb === "MAIL" ? "sender" : "recipient")) :
    addressBreak.test(address) ?
    Either.left(unsafeAddress(verb === "MAIL" ? "sender" : "recipient")) :
    encode(verb, `${verb === "MAIL" ? "FROM:" : "TO:"}${quoteAddress(address)}${params}`, utf8 ? utf8Line : undefined)

/** Spaces and tabs off both ends; blanks only: a CR or LF must stay, for the encoder to refuse it. */
const trimBlanks = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, "")

/**
 * smtplib's `quoteaddr`: `<>` stays; `"Name <a@b>"` becomes `<a@b>`; a bare address is wrapped.
 */
export const quoteAddress = (address: string): string => {
  const trimmed = trimBlanks(address)
  if (trimmed === "<>" || trimmed === "") return "<>"
  return `<${addressOnly(trimmed)}>`
}

/**
 * smtplib's `_addr_only`: the address inside angle brackets when there are any, else the string.
 */
export const addressOnly = (address: string): string => {
  const trimmed = trimBlanks(address)
  if (trimmed === "<>") return trimmed
  const open = trimmed.lastIndexOf("<")
  const close = trimmed.lastIndexOf(">")
  if (open !== -1 && close > open) return trimmed.slice(open + 1, close).trim()
  return trimmed
}

/** Whether a string needs SMTPUTF8 to be sent in a command. */
export const isAscii = (s: string): boolean => !nonAscii.test(s)

/**
 * A line that is not a command (an AUTH response): `verb` names it in errors and spans, `display`
 * in the transcript, so the line itself (a credential) appears nowhere but on the wire.
 */
export const secretLine = (verb: string, line: string, display: string): Either.Either<Command, SmtpInvalidInput> =>
  lineBreak.test(line) || line.includes("\0") || nonAscii.test(line) ?
    Either.left(
      new SmtpInvalidInput({ reason: `An ${verb} line may not contain CR, LF, NUL or non-ASCII characters` })
    ) :
    Either.right({ verb, bytes: encoder.encode(`${line}\r\n`), display })
