/**
 * Header folding (RFC 5322 §2.2.3): a line break is inserted before white space only, so
 * unfolding gives back exactly the original value. Lines aim at 78 octets and never pass 998.
 *
 * @internal
 */
import { utf8Length } from "./bytes.js"

/** The hard limit of RFC 5322 §2.1.1, in octets, without the CRLF. @internal */
export const MAX_LINE = 998

/** The recommended limit of RFC 5322 §2.1.1. @internal */
export const SOFT_LINE = 78

/**
 * The raw value of a field (`" " + value`, folded), or `undefined` when a run of non-white
 * characters is too long to fit in a line of 998 octets.
 *
 * @internal
 */
export const foldField = (name: string, value: string): string | undefined => {
  if (value.length === 0) return ""
  const segments = (" " + value).match(/[ \t]+[^ \t]*/g) ?? []
  let out = ""
  let lineLength = utf8Length(name) + 1
  let first = true
  for (const segment of segments) {
    const length = utf8Length(segment)
    const hasWord = /[^ \t]/.test(segment)
    if (!first && hasWord && lineLength + length > SOFT_LINE) {
      out += "\r\n"
      lineLength = 0
    }
    out += segment
    lineLength += length
    if (lineLength > MAX_LINE) return undefined
    first = false
  }
  return out
}

/** A word longer than this (octets) is encoded, so that it can be split across lines. @internal */
export const LONG_WORD = 900

/** The longest run of non-white characters, in UTF-8 octets. @internal */
export const longestWord = (value: string): number => {
  let longest = 0
  for (const word of value.split(/[ \t]+/)) {
    const n = utf8Length(word)
    if (n > longest) longest = n
  }
  return longest
}
