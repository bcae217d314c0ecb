/**
 * Address lists: parsed with `email-addresses` (RFC 5322 with RFC 6532 UTF-8: display names,
 * quoted strings, comments, groups), display names decoded from RFC 2047 encoded words
 * (`encodedWords.ts`); and formatted back for the composer.
 *
 * @internal
 */
import * as Either from "effect/Either"
import emailAddresses from "email-addresses"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput } from "../../SmtpError.js"
import { isAscii, show } from "./bytes.js"
import { decodeWords, encodeWord } from "./encodedWords.js"
import { LONG_WORD, longestWord } from "./fold.js"

type Address = Message.Address

const decodeName = (name: string | null): string | undefined => {
  if (name === null) return undefined
  return name.includes("=?") ? decodeWords(name) : name
}

/**
 * Parses an unfolded address-list value. Groups are flattened to their mailboxes; an empty
 * value is an empty list; a value that is not an address list is `SmtpInvalidInput`.
 *
 * @internal
 */
export const parseAddressList = (value: string, field: string): Either.Either<Array<Address>, SmtpInvalidInput> => {
  const input = value.trim()
  if (input.length === 0) return Either.right([])
  const parsed = emailAddresses.parseAddressList({ input, rfc6532: true })
  if (parsed === null) {
    return Either.left(new SmtpInvalidInput({ reason: `The ${field} header is not a valid address list` }))
  }
  const out: Array<Address> = []
  for (const entry of parsed) {
    const mailboxes = entry.type === "group" ? entry.addresses : [entry]
    for (const m of mailboxes) out.push({ name: decodeName(m.name), address: m.address })
  }
  return Either.right(out)
}

/** A group read from a caller's string: its display name and mailboxes. @internal */
export interface Group {
  readonly group: string
  readonly members: ReadonlyArray<Address>
}

/**
 * Parses one mailbox given by a caller (`"a@example.com"`, `"Ann <a@example.com>"`), or with
 * `groups` a group (`"Team: a@example.com, b@example.com;"`, `"undisclosed-recipients:;"`).
 * With `addressOnly` the input must be a bare address (no display name). `at` names the
 * field and position in the refusal, which shows the value.
 *
 * @internal
 */
export const parseMailbox = (
  input: string,
  at: string,
  addressOnly: boolean,
  groups = false
): Either.Either<Address | Group, SmtpInvalidInput> => {
  const fail = (why: string) => Either.left(new SmtpInvalidInput({ reason: `${at}: ${show(input)} ${why}` }))
  const parsed = emailAddresses.parseOneAddress({ input: input.trim(), rfc6532: true })
  if (parsed === null) {
    return fail(
      input.includes(",")
        ? "is not an address (give a list for several: [\"a@example.com\", \"b@example.com\"])"
        : groups
        ? "is not an address or a group (\"Name: a@example.com, b@example.com;\")"
        : "is not an address"
    )
  }
  if (parsed.type === "group") {
    if (!groups) return fail("is a group; this field takes mailboxes only")
    if (parsed.name === null || parsed.name.trim() === "") return fail("is a group without a name")
    return Either.right({
      group: decodeName(parsed.name)!,
      members: parsed.addresses.map((m) => ({ name: decodeName(m.name), address: m.address }))
    })
  }
  if (addressOnly && parsed.name !== null) return fail("is not a bare address (give the display name as name)")
  return Either.right({ name: decodeName(parsed.name), address: parsed.address })
}

const ATEXT_PHRASE = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/

/** @internal */
export { show } from "./bytes.js"

/** Printable US-ASCII and SP only: no control characters, no HTAB. @internal */
export const isPrintableAscii = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return false
  }
  return true
}

const quote = (s: string) => `"${s.replace(/(["\\])/g, "\\$1")}"`

/**
 * A display name as an RFC 5322 phrase: atoms as they are, a quoted string when it holds
 * specials, RFC 2047 encoded words (Q, restricted to the characters allowed in a phrase) when
 * it is not printable ASCII, or a quoted UTF-8 string with `utf8Headers` (RFC 6532).
 *
 * @internal
 */
export const formatPhrase = (name: string, utf8Headers: boolean): string => {
  // a word too long for a line is encoded: encoded words can be split across lines, an atom or a
  // quoted string cannot (as `encodeUnstructured` does for a subject)
  const long = longestWord(name) > LONG_WORD
  if (!long && isPrintableAscii(name) && !name.includes("=?")) {
    return ATEXT_PHRASE.test(name) ? name : quote(name)
  }
  if (!long && utf8Headers && !/[\x00-\x1f\x7f]/.test(name) && !name.includes("=?")) return quote(name)
  return encodeWord(name)
}

/** `name <address>`, or the bare address when there is no name. @internal */
export const formatMailbox = (mailbox: Address, utf8Headers: boolean): string =>
  mailbox.name === undefined || mailbox.name.length === 0
    ? mailbox.address
    : `${formatPhrase(mailbox.name, utf8Headers)} <${mailbox.address}>`

/** Whether an address needs SMTPUTF8 (any non-ASCII character). @internal */
export const isInternational = (address: string): boolean => !isAscii(address)

/**
 * A group: `name: member, member;`, or `name:;` when it is empty. An encoded word is followed
 * by a space before the colon: RFC 2047 §5 wants encoded words delimited by white space, and
 * Python reports `=?…?=:` as a defect.
 *
 * @internal
 */
export const formatGroup = (group: Group, utf8Headers: boolean): string =>
  `${formatPhrase(group.group, utf8Headers).replace(/\?=$/, "?= ")}:${
    group.members.length === 0 ? "" : " " + group.members.map((m) => formatMailbox(m, utf8Headers)).join(", ")
  };`
