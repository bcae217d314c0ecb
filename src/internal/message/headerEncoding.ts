/**
 * Non-ASCII text in header fields, for the composer: RFC 2047 encoded words for unstructured
 * text (`encodedWords.ts`), RFC 2231 parameters for file names (`parameters.ts`), or raw UTF-8
 * (RFC 6532) when the message goes out with SMTPUTF8. Either way no word is left too long to fold.
 *
 * @internal
 */
import { isPrintableAscii } from "./addresses.js"
import { isAscii } from "./bytes.js"
import { encodeWord, encodeWords } from "./encodedWords.js"
import { LONG_WORD, longestWord } from "./fold.js"
import { formatParameter } from "./parameters.js"

const hasControl = (s: string) => /[\x00-\x08\x0a-\x1f\x7f]/.test(s)

/**
 * Unstructured text (Subject, extra headers): kept as it is when it is printable ASCII (or
 * UTF-8 with `utf8Headers`) with no over-long word; otherwise the non-ASCII words become
 * encoded words; when the text holds something that reads as an encoded word (`=?`, with
 * `literalEncodedWords` false) or a word too long for a line, all of it is encoded.
 *
 * @internal
 */
export const encodeUnstructured = (value: string, utf8Headers: boolean, literalEncodedWords = false): string => {
  const looksEncoded = !literalEncodedWords && value.includes("=?")
  const longWord = longestWord(value) > LONG_WORD
  if (!looksEncoded && !longWord && !hasControl(value)) {
    if (isPrintableAscii(value.replace(/\t/g, " "))) return value
    if (utf8Headers) return value
    return encodeWords(value)
  }
  return encodeWord(value)
}

/**
 * A token (RFC 2045) without `'` and `*`: Python's email package reads those in a bare
 * parameter value as RFC 2231 delimiters and loses the rest of the file name
 * (`filename=O'Brien.pdf` has none, `filename=a*b.txt` is `a`), so `formatParameter` quotes them.
 */
const isBareToken = (s: string) => /^[!#$%&+\-.^_`|~0-9A-Za-z]+$/.test(s)

/**
 * `value; key=param; ...` with RFC 2231 continuations and percent-encoding for non-ASCII or
 * long parameters (`formatParameter`), or a quoted UTF-8 string with `utf8Headers`.
 *
 * @internal
 */
export const parameterized = (
  value: string,
  params: ReadonlyArray<readonly [string, string]>,
  utf8Headers: boolean
): string => {
  let out = value
  for (const [key, param] of params) {
    if (
      utf8Headers && !isAscii(param) && !hasControl(param) && !param.includes("\t") &&
      longestWord(param) <= LONG_WORD
    ) {
      out += `; ${key}="${param.replace(/(["\\])/g, "\\$1")}"`
    } else if (isBareToken(param) && param.length <= 60) {
      out += `; ${key}=${param}`
    } else {
      out += `; ${formatParameter(key, param)}`
    }
  }
  return out
}
