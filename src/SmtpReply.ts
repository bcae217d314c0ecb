/**
 * The server's reply to a command: a three-digit code and one or more lines of text.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Hash from "effect/Hash"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Arrays from "./internal/arrays.js"

/**
 * A decoded, validated SMTP reply. `lines` holds the text of each line without the code and
 * separator; `text` joins them with `"\n"`, as smtplib does. Codes 100..599 are well-formed
 * (RFC 5321 §4.2); what a code means is for the operation that reads it.
 *
 * Two replies are `Equal` when their code, lines and raw bytes (or the absence of them) are.
 * Encoded (`Schema.encode`), the raw bytes are Base64.
 *
 * @since 0.1.0
 * @category models
 */
export class SmtpReply extends Schema.Class<SmtpReply>("effect-smtp/SmtpReply")({
  code: Schema.Int.pipe(Schema.between(100, 599)),
  lines: Schema.Array(Schema.String),
  /**
   * The reply exactly as received, every line with its code and line end, when it came from a
   * server (absent for a reply built with {@link make}). `lines` decode it as UTF-8 (anything else
   * becomes U+FFFD); {@link SmtpReply.decodeLines} decodes it with another charset. It may be a
   * view into the bytes the socket delivered: copy it to keep it apart from them.
   *
   * @since 0.2.0
   */
  raw: Schema.optionalWith(Schema.Uint8ArrayFromBase64, { exact: true })
}) {
  /**
   * The reply text, lines joined with `"\n"` (smtplib's second tuple member).
   *
   * @since 0.1.0
   */
  get text(): string {
    return this.lines.join("\n")
  }

  /**
   * The RFC 3463 enhanced status code on the first line (`"5.1.1"`), when there is one whose
   * class matches the reply code.
   *
   * @since 0.1.0
   */
  get enhancedCode(): string | undefined {
    return parseEnhancedCode(this.code, this.lines[0] ?? "")
  }

  /**
   * The lines decoded from the raw bytes with `decoder` (a `TextDecoder("latin1")` for a Latin-1
   * banner), without code and separator and trimmed as `lines` are; `lines` when there are no raw
   * bytes.
   *
   * @since 0.2.0
   */
  decodeLines(decoder: { decode(input: Uint8Array): string }): ReadonlyArray<string> {
    const raw = this.raw
    if (raw === undefined) return this.lines
    const out: Array<string> = []
    let start = 0
    while (start < raw.length) {
      const lf = raw.indexOf(10, start)
      const next = lf === -1 ? raw.length : lf + 1
      const end = lf === -1 ? raw.length : lf > start && raw[lf - 1] === 13 ? lf - 1 : lf
      out.push(trim(decoder.decode(raw.subarray(Math.min(start + 4, end), end))))
      start = next
    }
    return out
  }

  /**
   * The text decoded from the raw bytes with `decoder`: {@link SmtpReply.decodeLines} joined with
   * `"\n"`, as `text`.
   *
   * @since 0.2.0
   */
  decodeText(decoder: { decode(input: Uint8Array): string }): string {
    return this.decodeLines(decoder).join("\n")
  }

  /**
   * 1yz: a positive preliminary reply (RFC 5321 §4.2.1). No SMTP command has one; no operation
   * that expects a result takes it for success.
   *
   * @since 0.2.0
   */
  get isPreliminary(): boolean {
    return this.code >= 100 && this.code < 200
  }

  /**
   * 2yz: the command succeeded.
   *
   * @since 0.1.0
   */
  get isPositive(): boolean {
    return this.code >= 200 && this.code < 300
  }

  /**
   * 3yz: the server waits for more (354 after DATA, 334 during AUTH).
   *
   * @since 0.1.0
   */
  get isIntermediate(): boolean {
    return this.code >= 300 && this.code < 400
  }

  /**
   * 4yz: a transient failure; the same command may succeed later.
   *
   * @since 0.1.0
   */
  get isTransient(): boolean {
    return this.code >= 400 && this.code < 500
  }

  /**
   * 5yz: a permanent failure.
   *
   * @since 0.1.0
   */
  get isPermanent(): boolean {
    return this.code >= 500
  }

  /**
   * The reply as it came over the wire, CRLF-separated lines without the final CRLF.
   *
   * @since 0.1.0
   */
  override toString(): string {
    return rawLines(this).join("\r\n")
  }

  /**
   * Equal code, lines and raw bytes.
   *
   * @since 0.2.0
   */
  [Equal.symbol](that: Equal.Equal): boolean {
    if (!(that instanceof SmtpReply) || that.code !== this.code || that.lines.length !== this.lines.length) return false
    for (let i = 0; i < this.lines.length; i++) if (this.lines[i] !== that.lines[i]) return false
    return bytesEqual(this.raw, that.raw)
  }

  /**
   * A hash of the code and lines.
   *
   * @since 0.2.0
   */
  [Hash.symbol](): number {
    return Hash.cached(this, Hash.combine(Hash.number(this.code))(Hash.array(this.lines)))
  }
}

const bytesEqual = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => {
  if (a === undefined || b === undefined) return a === b
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const trim = (text: string): string => text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "")

/** The reply's lines as on the wire: `250-first`, ..., `250 last`. */
const rawLines = (reply: { readonly code: number; readonly lines: ReadonlyArray<string> }): Array<string> => {
  const last = reply.lines.length - 1
  return reply.lines.map((line, i) => `${reply.code}${i === last ? " " : "-"}${line}`)
}

/**
 * Builds a reply from a code and text (lines split on `"\n"`); throws on an invalid code, so it
 * is meant for tests and literals.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (code: number, text: string = ""): SmtpReply => new SmtpReply({ code, lines: text.split("\n") })

const enhancedRe = /^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)/

/**
 * Reads an RFC 3463 enhanced status code at the start of a reply line; only a class equal to the
 * reply code's first digit counts.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseEnhancedCode = (code: number, line: string): string | undefined => {
  const m = enhancedRe.exec(line)
  if (m === null || Number(m[1]) !== Math.floor(code / 100)) return undefined
  return `${m[1]}.${m[2]}.${m[3]}`
}

/** Validates raw lines (see {@link FromLines}); the string is why they are not a reply. */
/**
 * A reply from fields already validated, without the Schema class constructor (it copies and
 * merges the fields: most of the cost of decoding a reply). The instance is the same as one made
 * with `new SmtpReply(...)`: its prototype, and its fields as own enumerable properties.
 */
const unsafeReply = (code: number, lines: ReadonlyArray<string>, raw: Uint8Array | undefined): SmtpReply => {
  const reply = Object.create(SmtpReply.prototype) as { code: number; lines: ReadonlyArray<string>; raw?: Uint8Array }
  reply.code = code
  reply.lines = lines
  if (raw !== undefined) reply.raw = raw
  return reply as SmtpReply
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57
/** A blank that `trim` removes: space, tab, CR, LF. */
const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10

const outside = (raw: ReadonlyArray<string>): string => `reply code ${raw[0].slice(0, 3)} is outside 100..599`

/**
 * `/^(\d{3})([ -]?)(.*)$/s` and `trim` by hand (a reply is decoded for every command): the same
 * results and messages.
 */
const parseLines = (raw: ReadonlyArray<string>, bytes: Uint8Array | undefined): SmtpReply | string => {
  if (raw.length === 0) return "a reply has at least one line"
  let code = -1
  // one line (the common case): an array of exactly one, made at the end
  const lines: Array<string> | undefined = raw.length === 1 ? undefined : Arrays.objectArray<string>()
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i]
    const last = i === raw.length - 1
    if (
      line.length < 3 || !isDigit(line.charCodeAt(0)) || !isDigit(line.charCodeAt(1)) || !isDigit(line.charCodeAt(2))
    ) {
      return `line ${i + 1} does not start with a 3-digit code`
    }
    const n = (line.charCodeAt(0) - 48) * 100 + (line.charCodeAt(1) - 48) * 10 + (line.charCodeAt(2) - 48)
    if (code === -1) code = n
    else if (n !== code) {
      return `line ${i + 1} has code ${line.slice(0, 3)}, the reply started with ${raw[0].slice(0, 3)}`
    }
    const separator = line.length > 3 ? line.charCodeAt(3) : -1
    const hyphen = separator === 45
    if (!last && !hyphen) return `line ${i + 1} is not a continuation line`
    if (last && hyphen) return "the last line is a continuation line"
    if (separator !== -1 && separator !== 32 && !hyphen) return `line ${i + 1} has no separator after the code`
    let from = 4
    let to = line.length
    while (from < to && isBlank(line.charCodeAt(from))) from++
    while (to > from && isBlank(line.charCodeAt(to - 1))) to--
    const text = from === 4 && to === line.length ? (line.length === 4 ? "" : line.slice(4)) : line.slice(from, to)
    // (not a literal: V8 pretenured the literal's arrays on the reply path)
    if (lines === undefined) return code < 100 || code > 599 ? outside(raw) : unsafeReply(code, Arrays.one(text), bytes)
    lines.push(text)
  }
  if (code < 100 || code > 599) return outside(raw)
  return unsafeReply(code, lines!, bytes)
}

/**
 * Decodes the raw lines of one reply (`"250-first"`, `"250 last"`) into an {@link SmtpReply}:
 * every line starts with the same code in 100..599, every line but the last has `-` after the
 * code, the last has a space or nothing. Text is trimmed of surrounding blanks as smtplib does.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FromLines: Schema.Schema<SmtpReply, ReadonlyArray<string>> = Schema.transformOrFail(
  Schema.Array(Schema.String),
  Schema.typeSchema(SmtpReply),
  {
    strict: true,
    decode: (raw, _, ast) => {
      const reply = parseLines(raw, undefined)
      return typeof reply === "string"
        ? ParseResult.fail(new ParseResult.Type(ast, raw, reply))
        : ParseResult.succeed(reply)
    },
    encode: (reply) => ParseResult.succeed(rawLines(reply))
  }
)

/**
 * Validates raw reply lines as {@link FromLines} does; the Left is a one-line explanation. `bytes`
 * (since 0.2.0) are the reply as received, kept as `raw`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromLines = (raw: ReadonlyArray<string>, bytes?: Uint8Array): Either.Either<SmtpReply, string> => {
  const reply = parseLines(raw, bytes)
  return typeof reply === "string" ? Either.left(reply) : Either.right(reply)
}
