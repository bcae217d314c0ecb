/**
 * The composer: options in, a MIME message out. Structure: a text/plain or text/html leaf;
 * multipart/alternative for text, the caller's alternatives, HTML and a calendar invitation,
 * in that order (increasing preference, RFC 2046 §5.1.4); multipart/related around the HTML and
 * its inline (Content-ID) parts; multipart/mixed when there are attachments (the invitation's
 * `.ics` last). Every caller string that ends up in a header is checked for CR and LF first
 * (header injection), before anything is built; every refusal names the option, its position
 * and the value (`show`), never a body.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Random from "effect/Random"
import * as Stream from "effect/Stream"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput } from "../../SmtpError.js"
import * as Streams from "../stream.js"
import { formatGroup, formatMailbox, formatPhrase, type Group, parseMailbox, show } from "./addresses.js"
import { concatBytes, hasLineBreak, utf8 } from "./bytes.js"
import { parseContentType } from "./contentType.js"
import { formatDate } from "./date.js"
import { base64Stream, chooseEncoding, encodeWith, type TransferEncoding } from "./encodings.js"
import { encodeUnstructured, parameterized } from "./headerEncoding.js"
import { isFieldName, makeField } from "./headers.js"
import { normaliseCrlfString } from "./lineEndings.js"
import { mimeTypeOf } from "./mimeTypes.js"

type Header = Message.Header
type Address = Message.Address
type Content<E, R> = Uint8Array | Stream.Stream<Uint8Array, E, R>

interface Leaf<E, R> {
  readonly _tag: "Leaf"
  readonly headers: ReadonlyArray<Header>
  readonly content: Content<E, R>
}

interface Multipart<E, R> {
  readonly _tag: "Multipart"
  readonly subtype: "mixed" | "alternative" | "related"
  readonly params: string
  readonly parts: ReadonlyArray<Node<E, R>>
}

type Node<E, R> = Leaf<E, R> | Multipart<E, R>

const invalid = (reason: string) => Either.left(new SmtpInvalidInput({ reason }))

const checkText = (value: string, at: string): Either.Either<string, SmtpInvalidInput> =>
  // (from JavaScript anything may come: a typed failure, never a defect)
  typeof value !== "string" ?
    invalid(`${at}: not a string`) :
    hasLineBreak(value) ?
    invalid(`${at}: ${show(value)} holds CR or LF (header injection)`) :
    Either.right(value)

const asList = <A>(value: A | ReadonlyArray<A> | undefined): ReadonlyArray<A> | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value as A]

type Entry = Address | Group

const isGroup = (entry: Entry): entry is Group => "group" in entry

const mailbox = (
  item: Message.AddressInput,
  at: string,
  groups: boolean
): Either.Either<Entry, SmtpInvalidInput> =>
  Either.gen(function*() {
    if (typeof item === "string") {
      yield* checkText(item, at)
      return yield* parseMailbox(item, at, false, groups)
    }
    if (typeof item !== "object" || item === null || typeof item.address !== "string") {
      return yield* invalid(`${at}: not an address (a string or { name, address })`)
    }
    if (item.name !== undefined) yield* checkText(item.name, `${at}.name`)
    yield* checkText(item.address, `${at}.address`)
    const parsed = yield* parseMailbox(item.address, `${at}.address`, true)
    return { name: item.name, address: (parsed as Address).address }
  })

/** An address list: mailboxes, and with `groups` groups (structured or written). */
const addressList = (
  input: Message.AddressListInput | ReadonlyArray<Message.AddressListInput> | undefined,
  field: string,
  groups: boolean
): Either.Either<Array<Entry>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const list = asList(input) ?? []
    const many = Array.isArray(input)
    const out: Array<Entry> = []
    for (let i = 0; i < list.length; i++) {
      const item = list[i]!
      const at = many ? `${field}[${i}]` : field
      if (typeof item === "object" && item !== null && "group" in item) {
        if (!groups) {
          return yield* invalid(`${at}: a group (${show(String(item.group))}); this field takes mailboxes only`)
        }
        yield* checkText(item.group, `${at}.group`)
        if (item.group.trim() === "") return yield* invalid(`${at}.group: a group needs a name`)
        if (!Array.isArray(item.members)) return yield* invalid(`${at}.members: not a list of addresses`)
        const members: Array<Address> = []
        const given: ReadonlyArray<Message.AddressInput> = item.members
        for (let j = 0; j < given.length; j++) {
          members.push((yield* mailbox(given[j]!, `${at}.members[${j}]`, false)) as Address)
        }
        out.push({ group: item.group, members })
      } else {
        out.push(yield* mailbox(item as Message.AddressInput, at, groups))
      }
    }
    return out
  })

const mailboxes = (
  input: Message.AddressInput | ReadonlyArray<Message.AddressInput> | undefined,
  field: string
): Either.Either<Array<Address>, SmtpInvalidInput> =>
  addressList(input, field, false) as Either.Either<Array<Address>, SmtpInvalidInput>

const formatEntry = (entry: Entry, utf8Headers: boolean) =>
  isGroup(entry) ? formatGroup(entry, utf8Headers) : formatMailbox(entry, utf8Headers)

const RESERVED = new Set([
  "from",
  "sender",
  "reply-to",
  "to",
  "cc",
  "bcc",
  "subject",
  "date",
  "message-id",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
  "content-disposition",
  "content-id"
])

const stripAngles = (s: string) => s.trim().replace(/^<(.*)>$/, "$1")

const MSG_ID = /^[^\s<>@]+@[^\s<>@]+$/

const field = (name: string, value: string, what: string) => makeField(name, value, what)

const textLeaf = <E, R>(text: string, subtype: "plain" | "html"): Either.Either<Leaf<E, R>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const bytes = utf8(normaliseCrlfString(text))
    const encoding = chooseEncoding(bytes)
    return {
      _tag: "Leaf",
      headers: [
        yield* field("Content-Type", `text/${subtype}; charset=utf-8`, "Content-Type"),
        yield* field("Content-Transfer-Encoding", encoding, "Content-Transfer-Encoding")
      ],
      content: encodeWith(encoding, bytes)
    }
  })

/** What distinguishes an attachment from an alternative: a file name, a disposition, a Content-ID. */
interface AttachmentFields {
  readonly filename: string | undefined
  readonly cid: string | undefined
  readonly disposition: "attachment" | "inline" | undefined
}

/**
 * A leaf for an attachment (with `attachment`) or an alternative (without): Content-Type with
 * the caller's parameters (charset=utf-8 added for string text, name for a file name),
 * Content-Transfer-Encoding, and for an attachment Content-Disposition and Content-ID.
 */
const contentLeaf = <E, R>(
  content: string | Uint8Array | Stream.Stream<Uint8Array, E, R>,
  contentType: string | undefined,
  at: string,
  attachment: AttachmentFields | undefined,
  utf8Headers: boolean
): Either.Either<Leaf<E, R>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const filename = attachment?.filename
    const cid = attachment?.cid
    const disposition = attachment?.disposition
    if (filename !== undefined) yield* checkText(filename, `${at}.filename`)
    if (contentType !== undefined) yield* checkText(contentType, `${at}.contentType`)
    if (cid !== undefined) yield* checkText(cid, `${at}.cid`)
    const given = contentType ?? (filename === undefined ? "application/octet-stream" : mimeTypeOf(filename))
    const parsed = parseContentType(given)
    if (Either.isLeft(parsed)) return yield* invalid(`${at}.contentType: ${show(given)} ${parsed.left}`)
    const { params, type: mimeType } = parsed.right
    if (mimeType.startsWith("multipart/")) {
      return yield* invalid(`${at}.contentType: ${show(given)}: multipart types are built by the composer`)
    }
    const contentId = cid === undefined ? undefined : stripAngles(cid)
    if (contentId !== undefined && !/^[\x21-\x3b\x3d\x3f-\x7e]+$/.test(contentId)) {
      return yield* invalid(
        `${at}.cid: ${show(cid!)} must be printable US-ASCII without spaces or angle brackets`
      )
    }
    if (disposition !== undefined && disposition !== "attachment" && disposition !== "inline") {
      return yield* invalid(`${at}.disposition: ${show(String(disposition))} must be "attachment" or "inline"`)
    }
    const isText = mimeType.startsWith("text/")
    const isMessage = mimeType === "message/rfc822"
    let encoded: Content<E, R>
    let encoding: TransferEncoding
    if (typeof content === "string" || content instanceof Uint8Array) {
      // text/* may be 7bit or quoted-printable (its line breaks are CRLF in canonical form);
      // anything else is base64, so that its bytes, CR and LF included, arrive unchanged
      const bytes = typeof content === "string" ?
        utf8(isText || isMessage ? normaliseCrlfString(content) : content) :
        content
      // message/rfc822 may be 7bit, 8bit or binary only (RFC 2046 §5.2.1): 7bit when it is (lines
      // up to 998 octets, no `=_`: no boundary can occur in it); else base64 as any other part, which
      // most readers take (8bit would need 8BITMIME of the server, binary BINARYMIME)
      encoding = isText ? chooseEncoding(bytes) : isMessage && chooseEncoding(bytes, 998) === "7bit" ? "7bit" : "base64"
      encoded = encodeWith(encoding, bytes)
    } else if (content !== null && typeof content === "object" && Stream.StreamTypeId in content) {
      encoding = "base64"
      encoded = base64Stream(content)
    } else {
      return yield* invalid(`${at}.content: not a string, bytes or a Stream`)
    }
    const typeParams: Array<readonly [string, string]> = [...params]
    const charset = params.find(([k]) => k === "charset")
    if (isText && typeof content === "string") {
      if (charset === undefined) typeParams.push(["charset", "utf-8"])
      else if (!/^utf-?8$/i.test(charset[1])) {
        return yield* invalid(
          `${at}.contentType: ${show(given)}: a string is sent as UTF-8 (give bytes for charset ${charset[1]})`
        )
      }
    }
    if (filename !== undefined && !params.some(([k]) => k === "name")) typeParams.push(["name", filename])
    const headers: Array<Header> = [
      yield* field("Content-Type", parameterized(mimeType, typeParams, utf8Headers), `${at}.contentType`),
      yield* field("Content-Transfer-Encoding", encoding, "Content-Transfer-Encoding")
    ]
    if (attachment !== undefined) {
      headers.push(
        yield* field(
          "Content-Disposition",
          parameterized(
            disposition ?? (contentId === undefined ? "attachment" : "inline"),
            filename === undefined ? [] : [["filename", filename]],
            utf8Headers
          ),
          `${at}.filename`
        )
      )
    }
    if (contentId !== undefined) headers.push(yield* field("Content-ID", `<${contentId}>`, `${at}.cid`))
    return { _tag: "Leaf", headers, content: encoded }
  })

const attachmentLeaf = <E, R>(
  attachment: Message.Attachment<E, R>,
  at: string,
  utf8Headers: boolean
): Either.Either<Leaf<E, R>, SmtpInvalidInput> =>
  typeof attachment !== "object" || attachment === null
    ? invalid(`${at}: not an attachment ({ filename, content, ... })`)
    : contentLeaf(attachment.content, attachment.contentType, at, {
      filename: attachment.filename,
      cid: attachment.cid,
      disposition: attachment.disposition
    }, utf8Headers)

/** The iCalendar METHOD property (unfolded), if the calendar has one. */
const calendarMethod = (ics: string): string | undefined => {
  const unfolded = ics.replace(/\r?\n[ \t]/g, "")
  const m = /^METHOD(?:;[^:\r\n]*)?:([^\r\n]*)$/im.exec(unfolded)
  return m === null ? undefined : m[1]!.trim().toUpperCase()
}

/** The calendar invitation's alternative and attachment. */
const calendarLeaves = <E, R>(
  input: string | Message.CalendarEvent,
  utf8Headers: boolean
): Either.Either<{ alternative: Leaf<E, R>; attachment: Leaf<E, R> }, SmtpInvalidInput> =>
  Either.gen(function*() {
    const event = typeof input === "string" ? { content: input } as Message.CalendarEvent : input
    if (typeof event.content !== "string") return yield* invalid("icalEvent.content: not a string")
    if (!/^BEGIN:VCALENDAR\r?$/im.test(event.content)) {
      return yield* invalid("icalEvent.content is not an iCalendar object (no BEGIN:VCALENDAR line)")
    }
    const written = calendarMethod(event.content)
    let method = written ?? "PUBLISH"
    if (event.method !== undefined) {
      yield* checkText(event.method, "icalEvent.method")
      method = event.method.trim().toUpperCase()
      if (!/^[A-Z0-9-]+$/.test(method)) {
        return yield* invalid(`icalEvent.method: ${show(event.method)} is not an iCalendar method (REQUEST, ...)`)
      }
      if (written !== undefined && written !== method) {
        return yield* invalid(
          `icalEvent.method: ${show(event.method)} differs from the calendar's METHOD:${written} (RFC 6047 §2.4)`
        )
      }
    }
    if (!/^[A-Z0-9-]+$/.test(method)) {
      return yield* invalid(`icalEvent.content: METHOD:${show(method)} is not an iCalendar method`)
    }
    return {
      alternative: yield* contentLeaf<E, R>(
        event.content,
        `text/calendar; charset=utf-8; method=${method}`,
        "icalEvent",
        undefined,
        utf8Headers
      ),
      attachment: yield* contentLeaf<E, R>(event.content, "application/ics", "icalEvent", {
        filename: event.filename ?? "invite.ics",
        cid: undefined,
        disposition: "attachment"
      }, utf8Headers)
    }
  })

const messageIds = (
  input: string | ReadonlyArray<string> | undefined,
  field: string
): Either.Either<Array<string>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const list = asList(input) ?? []
    const many = Array.isArray(input)
    const out: Array<string> = []
    for (let i = 0; i < list.length; i++) {
      const at = many ? `${field}[${i}]` : field
      const value = list[i]!
      if (typeof value !== "string") return yield* invalid(`${at}: not a string`)
      yield* checkText(value, at)
      for (const word of value.trim().split(/\s+/).filter((w) => w.length > 0)) {
        const id = stripAngles(word)
        if (!MSG_ID.test(id)) return yield* invalid(`${at}: ${show(word)} is not a message ID (local@domain)`)
        out.push(`<${id}>`)
      }
    }
    return out
  })

/** A URL for a List-* field (RFC 2369), in angle brackets; a bare address is a mailto: URL. */
const listUrl = (value: string, at: string, schemes?: ReadonlyArray<string>) =>
  Either.gen(function*() {
    if (typeof value !== "string") return yield* invalid(`${at}: not a string`)
    yield* checkText(value, at)
    let text = value.trim().replace(/^<(.*)>$/, "$1")
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) && /^[^\s@<>]+@[^\s@<>]+$/.test(text)) text = `mailto:${text}`
    let url: URL
    try {
      url = new URL(text)
    } catch {
      return yield* invalid(`${at}: ${show(value)} is not a URL`)
    }
    if (schemes !== undefined && !schemes.includes(url.protocol)) {
      return yield* invalid(`${at}: ${show(value)} is not a ${schemes.map((s) => s.slice(0, -1)).join(" or ")} URL`)
    }
    if (/[\s<>]/.test(url.href)) return yield* invalid(`${at}: ${show(value)} is not a URL`)
    return `<${url.href}>`
  })

const LIST_ID = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)+$/

/** The List-* fields, and the bulk-sender and reply fields (In-Reply-To, References, priority). */
const optionHeaders = (
  options: Message.MakeOptions<any, any>,
  utf8Headers: boolean
): Either.Either<Array<Header>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const out: Array<Header> = []
    const inReplyTo = yield* messageIds(options.inReplyTo, "inReplyTo")
    if (inReplyTo.length > 0) out.push(yield* field("In-Reply-To", inReplyTo.join(" "), "inReplyTo"))
    const references = yield* messageIds(options.references, "references")
    if (references.length > 0) out.push(yield* field("References", references.join(" "), "references"))

    const list = options.list
    if (list !== undefined) {
      if (list.id !== undefined) {
        const given = typeof list.id === "string" ? list.id : list.id.id
        const at = typeof list.id === "string" ? "list.id" : "list.id.id"
        if (typeof given !== "string") return yield* invalid(`${at}: not a string`)
        yield* checkText(given, at)
        let name = typeof list.id === "string" ? undefined : list.id.name
        let id = given.trim()
        const named = typeof list.id === "string" ? /^(.*?)\s*<([^<>]*)>$/.exec(id) : null
        if (named !== null) {
          name = named[1]!.replace(/^"(.*)"$/, "$1")
          id = named[2]!.trim()
        } else id = stripAngles(id)
        if (!LIST_ID.test(id)) {
          return yield* invalid(`${at}: ${show(given)} is not a list identifier (list-label.example.com, RFC 2919)`)
        }
        if (name !== undefined) yield* checkText(name, "list.id.name")
        const phrase = name === undefined || name.length === 0 ? "" : formatPhrase(name, utf8Headers) + " "
        out.push(yield* field("List-Id", `${phrase}<${id}>`, "list.id"))
      }
      const urls = function*(name: string, value: string | ReadonlyArray<string> | undefined, key: string) {
        const all = asList(value) ?? []
        const many = Array.isArray(value)
        if (all.length === 0) return
        const written: Array<string> = []
        for (let i = 0; i < all.length; i++) {
          const at = many ? `list.${key}[${i}]` : `list.${key}`
          if (key === "post" && typeof all[i] === "string" && all[i]!.trim().toUpperCase() === "NO") {
            if (all.length > 1) return yield* invalid(`${at}: "NO" cannot be combined with URLs`)
            written.push("NO")
          } else written.push(yield* listUrl(all[i]!, at))
        }
        out.push(yield* field(name, written.join(", "), `list.${key}`))
      }
      yield* urls("List-Help", list.help, "help")
      const unsubscribe = list.unsubscribe
      if (unsubscribe !== undefined) {
        if (typeof unsubscribe !== "object" || unsubscribe === null) {
          return yield* invalid("list.unsubscribe: give { url, mailto, oneClick }")
        }
        const written: Array<string> = []
        if (unsubscribe.url !== undefined) {
          written.push(yield* listUrl(unsubscribe.url, "list.unsubscribe.url", ["https:", "http:"]))
        }
        if (unsubscribe.mailto !== undefined) {
          written.push(yield* listUrl(unsubscribe.mailto, "list.unsubscribe.mailto", ["mailto:"]))
        }
        if (written.length === 0) return yield* invalid("list.unsubscribe: give a url, a mailto, or both")
        out.push(yield* field("List-Unsubscribe", written.join(", "), "list.unsubscribe"))
        if (unsubscribe.oneClick === true) {
          if (unsubscribe.url === undefined || !written[0]!.startsWith("<https:")) {
            return yield* invalid("list.unsubscribe.oneClick: one-click unsubscribe needs an https url (RFC 8058)")
          }
          out.push(yield* field("List-Unsubscribe-Post", "List-Unsubscribe=One-Click", "list.unsubscribe"))
        }
      }
      yield* urls("List-Subscribe", list.subscribe, "subscribe")
      yield* urls("List-Post", list.post, "post")
      yield* urls("List-Owner", list.owner, "owner")
      yield* urls("List-Archive", list.archive, "archive")
    }

    const priority = options.priority
    if (priority === "high" || priority === "low") {
      const high = priority === "high"
      out.push(
        yield* field("X-Priority", high ? "1 (Highest)" : "5 (Lowest)", "priority"),
        yield* field("X-MSMail-Priority", high ? "High" : "Low", "priority"),
        yield* field("Importance", high ? "High" : "Low", "priority")
      )
    } else if (priority !== undefined && priority !== "normal") {
      return yield* invalid(`priority: ${show(String(priority))} is not "high", "normal" or "low"`)
    }
    return out
  })

const extraHeaders = (
  input: Message.MakeOptions<any, any>["headers"],
  utf8Headers: boolean,
  written: ReadonlyArray<Header>
): Either.Either<Array<Header>, SmtpInvalidInput> =>
  Either.gen(function*() {
    if (input === undefined) return []
    const entries: ReadonlyArray<readonly [string, string]> = Array.isArray(input)
      ? (input as ReadonlyArray<Header>).map((h): readonly [string, string] =>
        h !== null && typeof h === "object" ? [h.name, h.value] : [h as unknown as string, ""]
      )
      : Object.entries(input as Readonly<Record<string, string>>)
    const out: Array<Header> = []
    for (let i = 0; i < entries.length; i++) {
      const [name, value] = entries[i]!
      const at = Array.isArray(input) ? `headers[${i}]` : `headers[${JSON.stringify(name)}]`
      yield* checkText(name, `the name of ${at}`)
      if (typeof value !== "string") return yield* invalid(`${at}: the value is not a string`)
      yield* checkText(value, at)
      if (!isFieldName(name)) return yield* invalid(`${at}: ${show(name)} is not a header field name`)
      const lower = name.toLowerCase()
      if (RESERVED.has(lower)) {
        return yield* invalid(
          `${at}: ${name} is set by the composer; use its option instead` +
            (lower.startsWith("content-") ? " (contentType of an attachment or an alternative, or icalEvent)" : "")
        )
      }
      if (written.some((h) => h.name.toLowerCase() === lower)) {
        return yield* invalid(`${at}: ${name} is already written from an option (list, priority, inReplyTo, ...)`)
      }
      out.push(yield* field(name, encodeUnstructured(value, utf8Headers, true), at))
    }
    return out
  })

interface Plan<E, R> {
  readonly top: Array<Header>
  readonly extra: Array<Header>
  readonly root: Node<E, R>
  readonly date: string | undefined
  readonly messageId: string | undefined
  readonly idDomain: string
  readonly multiparts: number
}

const countMultiparts = (node: Node<any, any>): number =>
  node._tag === "Leaf" ? 0 : 1 + node.parts.reduce((n, p) => n + countMultiparts(p), 0)

const plan = <E, R>(options: Message.MakeOptions<E, R>): Either.Either<Plan<E, R>, SmtpInvalidInput> =>
  Either.gen(function*() {
    if (typeof options !== "object" || options === null) return yield* invalid("make: options are required")
    const utf8Headers = options.utf8Headers === true
    const top: Array<Header> = []
    const addressField = function*(name: string, list: ReadonlyArray<Entry>, at: string) {
      if (list.length === 0) return
      top.push(yield* field(name, list.map((m) => formatEntry(m, utf8Headers)).join(", "), at))
    }

    const from = yield* mailboxes(options.from, "from")
    if (from.length === 0) return yield* invalid("from: at least one address is required")
    const sender = options.sender === undefined ? [] : yield* mailboxes(options.sender, "sender")
    const replyTo = yield* addressList(options.replyTo, "replyTo", true)
    const to = yield* addressList(options.to, "to", true)
    const cc = yield* addressList(options.cc, "cc", true)
    const bcc = yield* addressList(options.bcc, "bcc", true)
    if (options.subject !== undefined && typeof options.subject !== "string") {
      return yield* invalid("subject: not a string")
    }
    const subject = options.subject === undefined ? undefined : yield* checkText(options.subject, "subject")

    let date: string | undefined
    if (options.date !== undefined) {
      if (typeof options.date === "string") {
        date = yield* checkText(options.date, "date")
      } else if (!(options.date instanceof Date) || Number.isNaN(options.date.getTime())) {
        return yield* invalid("date: an invalid Date")
      } else {
        date = formatDate(options.date.getTime())
      }
    }
    let messageId: string | undefined
    if (options.messageId !== undefined) {
      const id = stripAngles(yield* checkText(options.messageId, "messageId"))
      if (!MSG_ID.test(id)) {
        return yield* invalid(`messageId: ${show(options.messageId)} is not a message ID (local@domain)`)
      }
      messageId = `<${id}>`
    }

    yield* addressField("From", from, "from")
    yield* addressField("Sender", sender, "sender")
    yield* addressField("Reply-To", replyTo, "replyTo")
    yield* addressField("To", to, "to")
    yield* addressField("Cc", cc, "cc")
    yield* addressField("Bcc", bcc, "bcc")
    if (subject !== undefined) top.push(yield* field("Subject", encodeUnstructured(subject, utf8Headers), "subject"))

    const fromOptions = yield* optionHeaders(options, utf8Headers)
    const extra = [...fromOptions, ...(yield* extraHeaders(options.headers, utf8Headers, fromOptions))]

    const attachments = options.attachments ?? []
    const inline: Array<Leaf<E, R>> = []
    const regular: Array<Leaf<E, R>> = []
    for (let i = 0; i < attachments.length; i++) {
      const attachment = attachments[i]!
      const leaf = yield* attachmentLeaf(attachment, `attachments[${i}]`, utf8Headers)
      const related = options.html !== undefined && attachment.cid !== undefined &&
        attachment.disposition !== "attachment"
      ;(related ? inline : regular).push(leaf)
    }
    const calendar = options.icalEvent === undefined ? undefined : yield* calendarLeaves<E, R>(
      options.icalEvent,
      utf8Headers
    )
    if (calendar !== undefined) regular.push(calendar.attachment)

    const alternatives: Array<Node<E, R>> = []
    for (const key of ["text", "html"] as const) {
      if (options[key] !== undefined && typeof options[key] !== "string") return yield* invalid(`${key}: not a string`)
    }
    if (options.text !== undefined) alternatives.push(yield* textLeaf<E, R>(options.text, "plain"))
    const more = options.alternatives ?? []
    for (let i = 0; i < more.length; i++) {
      const alternative = more[i]!
      const at = `alternatives[${i}]`
      if (typeof alternative !== "object" || alternative === null || alternative.contentType === undefined) {
        return yield* invalid(`${at}: give { contentType, content }`)
      }
      alternatives.push(yield* contentLeaf(alternative.content, alternative.contentType, at, undefined, utf8Headers))
    }
    if (options.html !== undefined) {
      const html = yield* textLeaf<E, R>(options.html, "html")
      alternatives.push(
        inline.length === 0
          ? html
          : { _tag: "Multipart", subtype: "related", params: `; type="text/html"`, parts: [html, ...inline] }
      )
    }
    if (calendar !== undefined) alternatives.push(calendar.alternative)
    const body: Node<E, R> | undefined = alternatives.length === 0
      ? undefined
      : alternatives.length === 1
      ? alternatives[0]!
      : { _tag: "Multipart", subtype: "alternative", params: "", parts: alternatives }
    const root: Node<E, R> = regular.length > 0
      ? { _tag: "Multipart", subtype: "mixed", params: "", parts: body === undefined ? regular : [body, ...regular] }
      : body ?? (yield* textLeaf<E, R>("", "plain"))

    const fromAddress = from[0]!.address
    const domain = fromAddress.slice(fromAddress.lastIndexOf("@") + 1)
    return {
      top,
      extra,
      root,
      date,
      messageId,
      idDomain: /^[A-Za-z0-9.-]+$/.test(domain) ? domain : "effect-smtp.invalid",
      multiparts: countMultiparts(root)
    }
  })

const randomHex = (digits: number) =>
  Effect.gen(function*() {
    let out = ""
    while (out.length < digits) {
      out += (yield* Random.nextIntBetween(0, 0x10000)).toString(16).padStart(4, "0")
    }
    return out.slice(0, digits)
  })

const headerText = (headers: ReadonlyArray<Header>) => headers.map((h) => `${h.name}:${h.value}\r\n`).join("")

/**
 * Renders a node: its own header fields (Content-Type and friends) and the segments of its
 * body. Boundaries are `=_` + random hex + `.` + a one-digit index: all the same length and
 * different, so none is a prefix of another, and `=_` never occurs in base64 or
 * quoted-printable output nor (by the choice of encoding) in 7bit parts.
 */
const render = <E, R>(
  node: Node<E, R>,
  boundaries: Array<string>
): Either.Either<{ headers: Array<Header>; segments: Array<Content<E, R>> }, SmtpInvalidInput> =>
  Either.gen(function*() {
    if (node._tag === "Leaf") return { headers: [...node.headers], segments: [node.content] }
    const boundary = boundaries.shift()!
    const segments: Array<Content<E, R>> = []
    for (const part of node.parts) {
      const rendered = yield* render(part, boundaries)
      segments.push(utf8(`--${boundary}\r\n${headerText(rendered.headers)}\r\n`), ...rendered.segments, utf8("\r\n"))
    }
    segments.push(utf8(`--${boundary}--`))
    return {
      headers: [
        yield* field("Content-Type", `multipart/${node.subtype}; boundary="${boundary}"${node.params}`, "Content-Type")
      ],
      segments
    }
  })

const joinSegments = <E, R>(segments: ReadonlyArray<Content<E, R>>): Content<E, R> => {
  const merged: Array<Content<E, R>> = []
  let run: Array<Uint8Array> = []
  for (const segment of segments) {
    if (segment instanceof Uint8Array) {
      run.push(segment)
    } else {
      if (run.length > 0) merged.push(concatBytes(run))
      run = []
      merged.push(segment)
    }
  }
  if (run.length > 0) merged.push(concatBytes(run))
  if (merged.length === 1 && merged[0] instanceof Uint8Array) return merged[0]
  if (merged.length === 0) return new Uint8Array(0)
  return merged
    .map((segment) => segment instanceof Uint8Array ? Stream.succeed(segment) : segment)
    .reduce((all, next) => Streams.concat(all, next))
}

/** @internal */
export const make = <E = never, R = never>(
  options: Message.MakeOptions<E, R>
): Effect.Effect<Message.Message<E, R>, SmtpInvalidInput> =>
  Effect.gen(function*() {
    const p = yield* plan(options)
    const date = p.date ?? formatDate(yield* Clock.currentTimeMillis)
    const messageId = p.messageId ?? `<${yield* randomHex(24)}@${p.idDomain}>`
    const boundaries: Array<string> = []
    const stem = yield* randomHex(24)
    for (let i = 0; i < p.multiparts; i++) boundaries.push(`=_${stem}.${i}`)
    const rendered = yield* render(p.root, boundaries)
    const headers: Array<Header> = [
      yield* field("Date", date, "date"),
      ...p.top,
      yield* field("Message-ID", messageId, "messageId"),
      ...p.extra,
      { name: "MIME-Version", value: " 1.0" },
      ...rendered.headers
    ]
    const segments = p.root._tag === "Multipart" ? [...rendered.segments, utf8("\r\n")] : rendered.segments
    return { headers, body: joinSegments(segments) }
  }).pipe(Effect.withSpan("Message.make"))
