/**
 * The server's reply to a command: a three-digit code and one or more lines of text.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/**
 * A decoded, validated SMTP reply. `lines` holds the text of each line without the code and
 * separator; `text` joins them with `"\n"`, as smtplib does.
 *
 * @since 0.1.0
 * @category models
 */
export class SmtpReply extends Schema.Class<SmtpReply>("effect-smtp/SmtpReply")({
  code: Schema.Int.pipe(Schema.between(200, 599)),
  lines: Schema.Array(Schema.String)
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
}

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

const lineRe = /^(\d{3})([ -]?)(.*)$/s

/**
 * Decodes the raw lines of one reply (`"250-first"`, `"250 last"`) into an {@link SmtpReply}:
 * every line starts with the same code in 200..599, every line but the last has `-` after the
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
      if (raw.length === 0) return ParseResult.fail(new ParseResult.Type(ast, raw, "a reply has at least one line"))
      let code: string | undefined
      const lines: Array<string> = []
      for (let i = 0; i < raw.length; i++) {
        const m = lineRe.exec(raw[i])
        const last = i === raw.length - 1
        if (m === null) {
          return ParseResult.fail(new ParseResult.Type(ast, raw, `line ${i + 1} does not start with a 3-digit code`))
        }
        if (code === undefined) code = m[1]
        else if (m[1] !== code) {
          return ParseResult.fail(
            new ParseResult.Type(ast, raw, `line ${i + 1} has code ${m[1]}, the reply started with ${code}`)
          )
        }
        if (!last && m[2] !== "-") {
          return ParseResult.fail(new ParseResult.Type(ast, raw, `line ${i + 1} is not a continuation line`))
        }
        if (last && m[2] === "-") {
          return ParseResult.fail(new ParseResult.Type(ast, raw, "the last line is a continuation line"))
        }
        if (m[2] === "" && m[3] !== "") {
          return ParseResult.fail(new ParseResult.Type(ast, raw, `line ${i + 1} has no separator after the code`))
        }
        lines.push(m[3].replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ""))
      }
      const n = Number(code)
      if (n < 200 || n > 599) {
        return ParseResult.fail(new ParseResult.Type(ast, raw, `reply code ${code} is outside 200..599`))
      }
      return ParseResult.succeed(new SmtpReply({ code: n, lines }, { disableValidation: true }))
    },
    encode: (reply) => ParseResult.succeed(rawLines(reply))
  }
)

const decodeLines = Schema.decodeEither(FromLines)

/**
 * Validates raw reply lines; the Left is a one-line explanation.
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromLines = (raw: ReadonlyArray<string>): Either.Either<SmtpReply, string> =>
  Either.mapLeft(decodeLines(raw), (e) => ParseResult.ArrayFormatter.formatErrorSync(e)[0]?.message ?? "invalid reply")
