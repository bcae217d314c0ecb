/**
 * Checks of the values a SASL mechanism puts into its message, so that no value can split a field,
 * add one or end a line: PLAIN's NUL, XOAUTH2's and OAUTHBEARER's ^A, CRAM-MD5's space, and any
 * control character in an identity (user name, authzid, host). A reason names the mechanism, the
 * field and the character, never the value: values are credentials.
 *
 * @internal
 */

/** Control characters (C0 and DEL): never part of a user name, an authzid, a host or a token. */
export const controls = /[\u0000-\u001f\u007f]/

/** NUL: refused in every password, since PLAIN uses it as separator and servers read C strings. */
export const nul = /\u0000/

const names: Record<string, string> = {
  "\u0000": "NUL",
  "\u0001": "^A",
  "\t": "TAB",
  "\n": "LF",
  "\r": "CR",
  "\u007f": "DEL"
}

const describe = (char: string): string => {
  if (char === " ") return "a space (U+0020)"
  const code = `U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`
  return names[char] === undefined ? code : `${names[char]} (${code})`
}

/**
 * Why `value` cannot go into `field` of `mechanism` (the first character matching `forbidden`), or
 * undefined when it can. `separator` is the mechanism's field separator, named as such in the reason.
 */
export const check = (
  mechanism: string,
  field: string,
  value: string,
  forbidden: RegExp,
  separator?: string
): string | undefined => {
  const found = forbidden.exec(value)?.[0]
  if (found === undefined) return undefined
  const kind = found === separator
    ? `the ${mechanism} field separator`
    : controls.test(found)
    ? "a control character"
    : "a character this field cannot carry"
  return `${mechanism}: the ${field} contains ${describe(found)}, ${kind}`
}

/** The first failing check, or undefined when all pass. */
export const first = (...reasons: ReadonlyArray<string | undefined>): string | undefined =>
  reasons.find((reason) => reason !== undefined)
