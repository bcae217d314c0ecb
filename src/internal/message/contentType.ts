/**
 * Content-Type values given by a caller (`text/calendar; method=REQUEST; charset=utf-8`): the
 * media type (RFC 2045 §5.1 tokens, lower-cased) and its parameters, names lower-cased, values
 * as written (a quoted string unquoted). The composer writes the parameters back itself
 * (`parameterized`), so a non-ASCII value becomes RFC 2231 as a file name does. Pure.
 *
 * @internal
 */
import * as Either from "effect/Either"

/** The media type and its parameters, in order. @internal */
export interface ContentType {
  readonly type: string
  readonly params: ReadonlyArray<readonly [string, string]>
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/

/** A bare parameter value: token characters, or any non-ASCII (read as written, RFC 6532 style). */
const BARE_VALUE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z\u0080-\uffff]+/

/**
 * Parses `type/subtype *(; name=value)`: white space is allowed around `;` and `=`, a value is
 * a token (non-ASCII allowed) or a quoted string; a trailing `;` is ignored. Parameter names
 * may not hold `*` (RFC 2231 syntax: give the decoded value), `'` or `%` (not attribute-chars
 * of RFC 2231), nor repeat. The error is why the value is refused, without the value.
 *
 * @internal
 */
export const parseContentType = (input: string): Either.Either<ContentType, string> => {
  let s = input.trim()
  const type = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\/([!#$%&'*+\-.^_`|~0-9A-Za-z]+)/.exec(s)
  if (type === null) return Either.left("is not a MIME type (type/subtype)")
  s = s.slice(type[0].length)
  const params: Array<readonly [string, string]> = []
  const seen = new Set<string>()
  for (;;) {
    s = s.replace(/^[ \t]+/, "")
    if (s.length === 0) break
    if (s[0] !== ";") return Either.left("is not a MIME type (type/subtype, then \"; name=value\" parameters)")
    s = s.slice(1).replace(/^[ \t]+/, "")
    if (s.length === 0) break
    const name = TOKEN.exec(s)
    if (name === null) return Either.left("has a parameter without a name")
    const key = name[0].toLowerCase()
    if (key.includes("*")) return Either.left(`has an RFC 2231 parameter name (${key}): give the decoded value`)
    if (/['%]/.test(key)) return Either.left(`has a parameter name with ' or % (${key}), which RFC 2231 forbids`)
    if (seen.has(key)) return Either.left(`has the parameter ${key} twice`)
    seen.add(key)
    s = s.slice(name[0].length).replace(/^[ \t]+/, "")
    if (s[0] !== "=") return Either.left(`has a parameter (${key}) without "=value"`)
    s = s.slice(1).replace(/^[ \t]+/, "")
    let value: string
    if (s[0] === "\"") {
      let i = 1
      value = ""
      for (; i < s.length && s[i] !== "\""; i++) {
        if (s[i] === "\\" && i + 1 < s.length) i++
        value += s[i]
      }
      if (i >= s.length) return Either.left(`has an unterminated quoted string (parameter ${key})`)
      s = s.slice(i + 1)
    } else {
      const bare = BARE_VALUE.exec(s)
      if (bare === null) return Either.left(`has a parameter (${key}) whose value is neither a token nor quoted`)
      value = bare[0]
      s = s.slice(value.length)
    }
    params.push([key, value])
  }
  return Either.right({ type: `${type[1]!}/${type[2]!}`.toLowerCase(), params })
}
