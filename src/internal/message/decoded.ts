/**
 * Header values decoded for reading: RFC 2047 encoded words decoded (`encodedWords.ts`) in
 * unstructured fields and in the display names of address fields; the structured fields that
 * carry no encoded words returned unfolded as they are. And `reply`: the fields of a reply
 * (RFC 5322 §3.6.4). Pure.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import emailAddresses from "email-addresses"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput } from "../../SmtpError.js"
import { parseAddressList } from "./addresses.js"
import { decodeWords } from "./encodedWords.js"
import { get, getAll } from "./headers.js"

const ADDRESS_FIELDS = new Set(
  ["from", "sender", "reply-to", "to", "cc", "bcc"].flatMap((name) => [name, `resent-${name}`])
)

/** Structured fields without encoded words (Python's header registry reads them as structured too). */
const RAW_FIELDS = new Set([
  "date",
  "resent-date",
  "message-id",
  "resent-message-id",
  "in-reply-to",
  "references",
  "content-id",
  "mime-version",
  "content-type",
  "content-disposition",
  "content-transfer-encoding",
  "received",
  "return-path",
  "dkim-signature",
  "arc-seal",
  "arc-message-signature",
  "arc-authentication-results",
  "authentication-results"
])

/** RFC 5322 specials (and the backslash): a display name holding one is quoted, as Python writes it. */
const SPECIALS = /[()<>@,:;."[\]\\]/

const phrase = (name: string): string =>
  SPECIALS.test(name) || /^\s|\s$/.test(name) ? `"${name.replace(/[\\"]/g, "\\$&")}"` : name

const decodeName = (name: string | null): string => (name === null ? "" : decodeWords(name))

const mailbox = (m: { readonly name: string | null; readonly address: string }): string => {
  const name = decodeName(m.name)
  return name.length === 0 ? m.address : `${phrase(name)} <${m.address}>`
}

/** An address list with its display names decoded, written as Python's `str(header)` writes it. */
const decodeAddressList = (value: string): string => {
  if (value.length === 0) return value
  const parsed = emailAddresses.parseAddressList({ input: value, rfc6532: true })
  if (parsed === null) return decodeWords(value)
  return parsed.map((entry) =>
    entry.type === "group"
      ? `${phrase(decodeName(entry.name))}:${
        entry.addresses.length === 0 ? "" : " " + entry.addresses.map(mailbox).join(", ")
      };`
      : mailbox(entry)
  ).join(", ")
}

/** One unfolded value of the field `name`, decoded. @internal */
export const decodeValue = (name: string, value: string): string => {
  const lower = name.toLowerCase()
  if (ADDRESS_FIELDS.has(lower)) return decodeAddressList(value)
  return RAW_FIELDS.has(lower) || !value.includes("=?") ? value : decodeWords(value)
}

/** @internal */
export const getDecoded = (headers: ReadonlyArray<Message.Header>, name: string): Option.Option<string> =>
  Option.map(get(headers, name), (value) => decodeValue(name, value))

/** @internal */
export const getAllDecoded = (headers: ReadonlyArray<Message.Header>, name: string): Array<string> =>
  getAll(headers, name).map((value) => decodeValue(name, value))

const MSG_IDS = /<[^<>\s]+>/g

/** @internal */
export const reply = (message: Message.Message<any, any>): Either.Either<Message.ReplyFields, SmtpInvalidInput> =>
  Either.gen(function*() {
    const headers = message.headers
    const addresses = function*(field: string) {
      const out: Array<Message.Address> = []
      for (const value of getAll(headers, field).slice(0, 1)) out.push(...(yield* parseAddressList(value, field)))
      return out
    }
    const replyTo = yield* addresses("Reply-To")
    const to = replyTo.length > 0 ? replyTo : yield* addresses("From")
    if (to.length === 0) {
      return yield* Either.left(new SmtpInvalidInput({ reason: "reply: the message has no Reply-To or From address" }))
    }
    const messageId = Option.getOrUndefined(get(headers, "Message-ID"))?.match(MSG_IDS)?.[0]
    const references = Option.getOrUndefined(get(headers, "References"))?.match(MSG_IDS) ??
      // RFC 5322 §3.6.4: no References, but a single In-Reply-To id
      (Option.getOrUndefined(get(headers, "In-Reply-To"))?.match(MSG_IDS)?.slice(0, 1) ?? [])
    const subject = Option.getOrElse(getDecoded(headers, "Subject"), () => "")
    return {
      to: to.map((a) => (a.name === undefined || a.name === "" ? { address: a.address } : a)),
      subject: /^re\s*:/i.test(subject) ? subject : subject.length === 0 ? "Re:" : `Re: ${subject}`,
      inReplyTo: messageId,
      references: messageId === undefined
        ? (references.length === 0 ? undefined : references)
        : [...references.filter((r) => r !== messageId), messageId]
    }
  })
