/**
 * The composer: options in, a MIME message out. Structure: a text/plain or text/html leaf;
 * multipart/alternative for text and HTML; multipart/related around the HTML and its inline
 * (Content-ID) parts; multipart/mixed when there are attachments. Every caller string that ends
 * up in a header is checked for CR and LF first (header injection), before anything is built.
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
import { formatMailbox, parseMailbox } from "./addresses.js"
import { concatBytes, hasLineBreak, utf8 } from "./bytes.js"
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

const injection = (field: string) => invalid(`CR or LF in ${field} (header injection)`)

const checkText = (value: string, field: string): Either.Either<string, SmtpInvalidInput> =>
  hasLineBreak(value) ? injection(field) : Either.right(value)

const asList = <A>(value: A | ReadonlyArray<A> | undefined): ReadonlyArray<A> | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value as A]

const mailboxes = (
  input: Message.AddressInput | ReadonlyArray<Message.AddressInput> | undefined,
  field: string
): Either.Either<Array<Address>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const list = asList(input) ?? []
    const many = Array.isArray(input)
    const out: Array<Address> = []
    for (let i = 0; i < list.length; i++) {
      const item = list[i]!
      const at = many ? `${field}[${i}]` : field
      if (typeof item === "string") {
        yield* checkText(item, at)
        out.push(yield* parseMailbox(item, at, false))
      } else {
        if (item.name !== undefined) yield* checkText(item.name, `${at}.name`)
        yield* checkText(item.address, `${at}.address`)
        const parsed = yield* parseMailbox(item.address, `${at}.address`, true)
        out.push({ name: item.name, address: parsed.address })
      }
    }
    return out
  })

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

const MIME_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

const stripAngles = (s: string) => s.trim().replace(/^<(.*)>$/, "$1")

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

const attachmentLeaf = <E, R>(
  attachment: Message.Attachment<E, R>,
  at: string,
  utf8Headers: boolean
): Either.Either<Leaf<E, R>, SmtpInvalidInput> =>
  Either.gen(function*() {
    const { cid, content, contentType, disposition, filename } = attachment
    if (filename !== undefined) yield* checkText(filename, `${at}.filename`)
    if (contentType !== undefined) yield* checkText(contentType, `${at}.contentType`)
    if (cid !== undefined) yield* checkText(cid, `${at}.cid`)
    const mimeType = (contentType ?? (filename === undefined ? "application/octet-stream" : mimeTypeOf(filename)))
      .trim()
      .toLowerCase()
    if (!MIME_TYPE.test(mimeType)) {
      return yield* invalid(`${at}.contentType is not a MIME type (type/subtype)`)
    }
    const contentId = cid === undefined ? undefined : stripAngles(cid)
    if (contentId !== undefined && !/^[\x21-\x3b\x3d\x3f-\x7e]+$/.test(contentId)) {
      return yield* invalid(`${at}.cid must be printable US-ASCII without spaces or angle brackets`)
    }
    if (disposition !== undefined && disposition !== "attachment" && disposition !== "inline") {
      return yield* invalid(`${at}.disposition must be "attachment" or "inline"`)
    }
    const isText = mimeType.startsWith("text/")
    let encoded: Content<E, R>
    let encoding: TransferEncoding
    if (typeof content === "string" || content instanceof Uint8Array) {
      // text/* may be 7bit or quoted-printable (its line breaks are CRLF in canonical form);
      // anything else is base64, so that its bytes, CR and LF included, arrive unchanged
      const bytes = typeof content === "string" ? utf8(isText ? normaliseCrlfString(content) : content) : content
      encoding = isText ? chooseEncoding(bytes) : "base64"
      encoded = encodeWith(encoding, bytes)
    } else {
      encoding = "base64"
      encoded = base64Stream(content)
    }
    const typeParams: Array<readonly [string, string]> = []
    if (isText && typeof content === "string") typeParams.push(["charset", "utf-8"])
    if (filename !== undefined) typeParams.push(["name", filename])
    const headers: Array<Header> = [
      yield* field("Content-Type", parameterized(mimeType, typeParams, utf8Headers), `${at}.filename`),
      yield* field("Content-Transfer-Encoding", encoding, "Content-Transfer-Encoding"),
      yield* field(
        "Content-Disposition",
        parameterized(
          disposition ?? (contentId === undefined ? "attachment" : "inline"),
          filename === undefined ? [] : [["filename", filename]],
          utf8Headers
        ),
        `${at}.filename`
      )
    ]
    if (contentId !== undefined) headers.push(yield* field("Content-ID", `<${contentId}>`, `${at}.cid`))
    return { _tag: "Leaf", headers, content: encoded }
  })

const extraHeaders = (
  input: Message.MakeOptions<any, any>["headers"],
  utf8Headers: boolean
): Either.Either<Array<Header>, SmtpInvalidInput> =>
  Either.gen(function*() {
    if (input === undefined) return []
    const entries: ReadonlyArray<readonly [string, string]> = Array.isArray(input)
      ? (input as ReadonlyArray<Header>).map((h) => [h.name, h.value] as const)
      : Object.entries(input as Readonly<Record<string, string>>)
    const out: Array<Header> = []
    for (const [name, value] of entries) {
      const at = `headers[${JSON.stringify(name)}]`
      yield* checkText(name, `the name of ${at}`)
      yield* checkText(value, at)
      if (!isFieldName(name)) return yield* invalid(`${at}: invalid header field name`)
      if (RESERVED.has(name.toLowerCase())) {
        return yield* invalid(`${at}: ${name} is set by the composer; use its option instead`)
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
    const utf8Headers = options.utf8Headers === true
    const top: Array<Header> = []
    const addressField = function*(name: string, list: ReadonlyArray<Address>, at: string) {
      if (list.length === 0) return
      top.push(yield* field(name, list.map((m) => formatMailbox(m, utf8Headers)).join(", "), at))
    }

    const from = yield* mailboxes(options.from, "from")
    if (from.length === 0) return yield* invalid("from: at least one address is required")
    const sender = options.sender === undefined ? [] : yield* mailboxes(options.sender, "sender")
    const replyTo = yield* mailboxes(options.replyTo, "replyTo")
    const to = yield* mailboxes(options.to, "to")
    const cc = yield* mailboxes(options.cc, "cc")
    const bcc = yield* mailboxes(options.bcc, "bcc")
    const subject = options.subject === undefined ? undefined : yield* checkText(options.subject, "subject")

    let date: string | undefined
    if (options.date !== undefined) {
      if (typeof options.date === "string") {
        date = yield* checkText(options.date, "date")
      } else if (Number.isNaN(options.date.getTime())) {
        return yield* invalid("date is an invalid Date")
      } else {
        date = formatDate(options.date.getTime())
      }
    }
    let messageId: string | undefined
    if (options.messageId !== undefined) {
      const id = stripAngles(yield* checkText(options.messageId, "messageId"))
      if (!/^[^\s<>@]+@[^\s<>@]+$/.test(id)) return yield* invalid("messageId must look like local@domain")
      messageId = `<${id}>`
    }

    yield* addressField("From", from, "from")
    yield* addressField("Sender", sender, "sender")
    yield* addressField("Reply-To", replyTo, "replyTo")
    yield* addressField("To", to, "to")
    yield* addressField("Cc", cc, "cc")
    yield* addressField("Bcc", bcc, "bcc")
    if (subject !== undefined) top.push(yield* field("Subject", encodeUnstructured(subject, utf8Headers), "subject"))

    const extra = yield* extraHeaders(options.headers, utf8Headers)

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

    const alternatives: Array<Node<E, R>> = []
    if (options.text !== undefined) alternatives.push(yield* textLeaf<E, R>(options.text, "plain"))
    if (options.html !== undefined) {
      const html = yield* textLeaf<E, R>(options.html, "html")
      alternatives.push(
        inline.length === 0
          ? html
          : { _tag: "Multipart", subtype: "related", params: `; type="text/html"`, parts: [html, ...inline] }
      )
    }
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
