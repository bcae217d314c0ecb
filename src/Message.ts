/**
 * RFC 5322 messages: an ordered list of header fields and a body that is bytes or a Stream of
 * bytes. Parse one (only the header section is held; the body streams through untouched),
 * read and change its headers (`get` raw, `getDecoded` with RFC 2047 encoded words decoded),
 * derive its SMTP envelope exactly as smtplib's `send_message` does, serialise it for the wire,
 * or compose a MIME message with `make`.
 *
 * The composer writes what applications send: text and HTML with inline images, other
 * alternatives (`text/x-amp-html`, ...), attachments from memory, a Stream or a file
 * (`attachmentFromPath`, any platform's `FileSystem`), Content-Type parameters, calendar
 * invitations (`icalEvent`: the `text/calendar; method=…` alternative and `invite.ics`, as
 * Outlook and Gmail expect), groups (`undisclosed-recipients:;`), the bulk-sender fields
 * (List-Id, List-Unsubscribe with RFC 8058 one-click, the other RFC 2369 List-* fields,
 * priority) and replies (`reply`, `inReplyTo`, `references`). It is platform-neutral (Web APIs
 * only) and every refusal is `SmtpInvalidInput` naming the option, its position and the value:
 * `to[2]: "bob@@x" is not an address or a group`.
 *
 * @since 0.1.0
 */
import type * as PlatformError from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as addressesInternal from "./internal/message/addresses.js"
import * as compose from "./internal/message/compose.js"
import * as decoded from "./internal/message/decoded.js"
import * as envelopeInternal from "./internal/message/envelope.js"
import * as fromPath from "./internal/message/fromPath.js"
import * as headers from "./internal/message/headers.js"
import * as parser from "./internal/message/parse.js"
import * as serialize from "./internal/message/serialize.js"
import type { SmtpInvalidInput, SmtpNotSupportedError } from "./SmtpError.js"

/**
 * A header field as written: `name` without the colon, `value` raw (everything after the colon,
 * leading white space included, folds kept as CRLF followed by white space).
 *
 * @since 0.1.0
 * @category models
 */
export interface Header {
  readonly name: string
  readonly value: string
}

/**
 * A message: its header fields in order, and its body (the bytes after the blank line), held as
 * bytes or streamed. A Stream body from `parseStream` is valid within its Scope; run again, it
 * reads its source again.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message<E = never, R = never> {
  readonly headers: ReadonlyArray<Header>
  readonly body: Uint8Array | Stream.Stream<Uint8Array, E, R>
}

/**
 * A mailbox read from an address header: the decoded display name, if any, and the address.
 *
 * @since 0.1.0
 * @category models
 */
export interface Address {
  readonly name: string | undefined
  readonly address: string
}

/**
 * The SMTP envelope of a message. `international` is true when an address is not ASCII (the
 * message needs SMTPUTF8); `resent` when the addresses came from a Resent-* block.
 *
 * @since 0.1.0
 * @category models
 */
export interface Envelope {
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly international: boolean
  readonly resent: boolean
}

/**
 * Explicit envelope addresses: each one given replaces what the headers say (smtplib's
 * `from_addr` and `to_addrs`). `from: ""` is the null reverse-path.
 *
 * @since 0.1.0
 * @category models
 */
export interface EnvelopeOptions {
  readonly from?: string | undefined
  readonly to?: string | ReadonlyArray<string> | undefined
}

/**
 * Options of `parse` and `parseStream`. `maxHeaderBytes` bounds the header section (default
 * 1 MiB): a longer one, or a stream that never ends it, is `SmtpInvalidInput`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParseOptions {
  readonly maxHeaderBytes?: number | undefined
}

/**
 * Options of `prepareSend`: the explicit envelope, the caller's MAIL parameters, and whether
 * the server advertised SMTPUTF8.
 *
 * @since 0.1.0
 * @category models
 */
export interface PrepareSendOptions extends EnvelopeOptions {
  readonly mailOptions?: ReadonlyArray<string> | undefined
  readonly smtpUtf8: boolean
}

/**
 * What `sendmail` needs to send a message as smtplib's `send_message` would: the envelope, the
 * serialised message (bytes when the body is bytes, so that SIZE is known), and the MAIL
 * parameters with SMTPUTF8 and BODY=8BITMIME added when needed.
 *
 * @since 0.1.0
 * @category models
 */
export interface PreparedSend<E = never, R = never> {
  readonly envelope: Envelope
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly data: Uint8Array | Stream.Stream<Uint8Array, E, R>
  readonly mailOptions: ReadonlyArray<string>
}

/**
 * A mailbox for the composer: `"a@example.com"`, `"Ann <a@example.com>"`, or
 * `{ name, address }` (then `address` must be a bare address).
 *
 * @since 0.1.0
 * @category models
 */
export type AddressInput = string | { readonly name?: string | undefined; readonly address: string }

/**
 * A group (RFC 5322 §3.4) for the composer: a display name and its members, written
 * `Team: a@example.com, b@example.com;`. A group may be empty (`undisclosed-recipients:;`);
 * the members are recipients like any other (the envelope holds them). The string forms
 * `"Team: a@example.com, b@example.com;"` and `"undisclosed-recipients:;"` are read too.
 *
 * @since 0.2.0
 * @category models
 */
export interface GroupInput {
  readonly group: string
  readonly members: ReadonlyArray<AddressInput>
}

/**
 * An entry of an address list (To, Cc, Bcc, Reply-To): a mailbox or a group.
 *
 * @since 0.2.0
 * @category models
 */
export type AddressListInput = AddressInput | GroupInput

/**
 * An attachment for the composer.
 *
 * - `content`: a string (UTF-8; for `text/*` types its line breaks become CRLF and
 *   `charset=utf-8` is declared), bytes (sent exactly), or a Stream of bytes (base64-encoded
 *   as it flows, never held whole; see `attachmentFromPath` for a file).
 * - `contentType`: `type/subtype`, with parameters if needed (`text/calendar; method=REQUEST`;
 *   values are quoted or RFC 2231-encoded as the composer does for file names). By default
 *   guessed from the extension of `filename` for the file types commonly mailed (documents,
 *   images, audio, video, archives, text), else `application/octet-stream`. A `charset` other
 *   than UTF-8 is refused for string content (strings are sent as UTF-8: give bytes).
 * - `cid`: a Content-ID; with `html`, the part goes in multipart/related beside the HTML
 *   (`<img src="cid:...">`) and defaults to `disposition: "inline"`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Attachment<E = never, R = never> {
  readonly filename?: string | undefined
  readonly contentType?: string | undefined
  readonly content: string | Uint8Array | Stream.Stream<Uint8Array, E, R>
  readonly cid?: string | undefined
  readonly disposition?: "attachment" | "inline" | undefined
}

/**
 * Options of `attachmentFromPath`: those of an `Attachment` but its content, and the size of
 * the chunks read (`fs.stream`'s `chunkSize`, 64 KiB by default).
 *
 * @since 0.2.0
 * @category models
 */
export interface AttachmentFromPathOptions {
  readonly filename?: string | undefined
  readonly contentType?: string | undefined
  readonly cid?: string | undefined
  readonly disposition?: "attachment" | "inline" | undefined
  readonly chunkSize?: FileSystem.SizeInput | undefined
}

/**
 * Another representation of the body in multipart/alternative (RFC 2046 §5.1.4), beside
 * `text` and `html`: `contentType` is required (with parameters if needed, as for an
 * attachment), `content` is encoded as an attachment's is.
 *
 * @since 0.2.0
 * @category models
 */
export interface Alternative<E = never, R = never> {
  readonly contentType: string
  readonly content: string | Uint8Array | Stream.Stream<Uint8Array, E, R>
}

/**
 * A calendar invitation (iMIP, RFC 6047) as mail clients expect one: the iCalendar object
 * goes in multipart/alternative as `text/calendar; charset=utf-8; method=…` (after the HTML,
 * as Google Calendar and nodemailer place it) and again as an `application/ics` attachment
 * (`invite.ics` unless `filename` is given). The method is `method`, else the calendar's own
 * `METHOD:` property, else `PUBLISH`; when both are given they must agree (RFC 6047 §2.4).
 *
 * @since 0.2.0
 * @category models
 */
export interface CalendarEvent {
  readonly content: string
  readonly method?: string | undefined
  readonly filename?: string | undefined
}

/**
 * The unsubscribe links of a bulk message: `List-Unsubscribe: <url>, <mailto:…>` (RFC 2369).
 * `url` is an http(s) URL, `mailto` an address or a `mailto:` URL (with `?subject=` if
 * wanted). `oneClick` adds `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058),
 * which Gmail and Yahoo require of bulk senders; it needs an `https:` `url`, and the message
 * must be DKIM-signed over both fields for receivers to honour it.
 *
 * @since 0.2.0
 * @category models
 */
export interface ListUnsubscribe {
  readonly url?: string | undefined
  readonly mailto?: string | undefined
  readonly oneClick?: boolean | undefined
}

/**
 * The List-* header fields of a mailing-list or bulk message. `id` is the list identifier
 * (RFC 2919: `list-label.namespace`, e.g. `news.example.com`), with an optional description;
 * the others (RFC 2369) are URLs (`https:`, `mailto:`, ...; a bare address is taken as
 * `mailto:`), most preferred first; `post` may be `"NO"` (posting not allowed).
 *
 * @since 0.2.0
 * @category models
 */
export interface ListOptions {
  readonly unsubscribe?: ListUnsubscribe | undefined
  readonly id?: string | { readonly id: string; readonly name?: string | undefined } | undefined
  readonly help?: string | ReadonlyArray<string> | undefined
  readonly subscribe?: string | ReadonlyArray<string> | undefined
  readonly post?: string | ReadonlyArray<string> | undefined
  readonly owner?: string | ReadonlyArray<string> | undefined
  readonly archive?: string | ReadonlyArray<string> | undefined
}

/**
 * Options of the composer `make`.
 *
 * - `from` (required), `sender`, `replyTo`, `to`, `cc`, `bcc`: addresses; To, Cc, Bcc and
 *   Reply-To take groups too (`GroupInput`). Bcc is kept in the message for the envelope and
 *   never transmitted.
 * - `subject`, `text`, `html`, `attachments`.
 * - `alternatives`: more representations of the body, placed in multipart/alternative between
 *   `text` and `html` in the order given (RFC 2046: in increasing preference, so the HTML stays
 *   the preferred one; AMP's `text/x-amp-html` belongs before it too).
 * - `icalEvent`: a calendar invitation (`CalendarEvent`, or the iCalendar text).
 * - `list`: List-Id, List-Unsubscribe (with one-click), and the other List-* fields.
 * - `priority`: `"high"` or `"low"` write X-Priority, X-MSMail-Priority and Importance (as
 *   nodemailer); `"normal"` writes nothing.
 * - `inReplyTo`, `references`: message IDs (`local@domain`, angle brackets optional; a string
 *   may hold several separated by white space); see `reply`.
 * - `headers`: extra fields, unstructured text (non-ASCII becomes encoded words). The fields
 *   the composer writes (From, To, Subject, Date, Message-ID, MIME-Version, Content-*, ...)
 *   cannot be given here, nor a field that an option above writes.
 * - `date`: a Date, or a string used as it is; by default the Clock's time.
 * - `messageId`: `local@domain`, with or without angle brackets; by default random at the
 *   domain of the first From address.
 * - `utf8Headers`: write non-ASCII header text as raw UTF-8 (RFC 6532) instead of RFC 2047
 *   encoded words and RFC 2231 parameters; only for messages sent with SMTPUTF8.
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions<E = never, R = never> {
  readonly from: AddressInput | ReadonlyArray<AddressInput>
  readonly sender?: AddressInput | undefined
  readonly replyTo?: AddressListInput | ReadonlyArray<AddressListInput> | undefined
  readonly to?: AddressListInput | ReadonlyArray<AddressListInput> | undefined
  readonly cc?: AddressListInput | ReadonlyArray<AddressListInput> | undefined
  readonly bcc?: AddressListInput | ReadonlyArray<AddressListInput> | undefined
  readonly subject?: string | undefined
  readonly text?: string | undefined
  readonly html?: string | undefined
  readonly alternatives?: ReadonlyArray<Alternative<E, R>> | undefined
  readonly icalEvent?: string | CalendarEvent | undefined
  readonly attachments?: ReadonlyArray<Attachment<E, R>> | undefined
  readonly list?: ListOptions | undefined
  readonly priority?: "high" | "normal" | "low" | undefined
  readonly inReplyTo?: string | ReadonlyArray<string> | undefined
  readonly references?: string | ReadonlyArray<string> | undefined
  readonly headers?: Readonly<Record<string, string>> | ReadonlyArray<Header> | undefined
  readonly date?: Date | string | undefined
  readonly messageId?: string | undefined
  readonly utf8Headers?: boolean | undefined
}

/**
 * Parses a message held in memory. Only the header section (up to the first empty line, CRLF
 * or LF line endings) is parsed; the body is a view of the input bytes after the blank line. A
 * string is encoded as UTF-8 first. A header section that is not valid UTF-8 is read as
 * Latin-1; a line that is neither a field nor a fold is `SmtpInvalidInput`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse: (
  input: string | Uint8Array,
  options?: ParseOptions
) => Either.Either<Message, SmtpInvalidInput> = parser.parse

/**
 * Parses a message from a Stream, pulling the source only until the end of the header section
 * (bounded by `maxHeaderBytes`). The body is a Stream of the rest of the chunk that held the
 * blank line and then of the rest of the source, untouched and never buffered, valid within the
 * Scope. Run again (a `Mailer` retry), the body reads the source again from its start and skips
 * the header section, which must come back byte for byte: a source that cannot be read twice
 * (or reads differently) fails that run with `SmtpInvalidInput` before the end of the data, so
 * nothing shorter or other is ever delivered. (Until 0.2 a second run gave a truncated body.)
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseStream: <E = never, R = never>(
  stream: Stream.Stream<Uint8Array, E, R>,
  options?: ParseOptions
) => Effect.Effect<Message<E | SmtpInvalidInput, R>, SmtpInvalidInput | E, R | Scope.Scope> = parser.parseStream

/**
 * Composes a MIME message: text/plain, text/html, multipart/alternative for both (with the
 * `alternatives` between them and a calendar invitation after them), multipart/related for
 * inline (Content-ID) parts of the HTML, multipart/mixed for attachments (a calendar
 * invitation's `invite.ics` last). Groups in To, Cc, Bcc and Reply-To are written as groups;
 * their members are recipients of the envelope (`envelope`, `sendMessage`), an empty group
 * has none. Transfer encodings are chosen by content (7bit, quoted-printable or base64;
 * Stream attachments are base64-encoded as they flow); non-ASCII header text becomes RFC 2047
 * encoded words and RFC 2231 parameters (or raw UTF-8 with `utf8Headers`); no line passes 998
 * octets. Date and Message-ID come from the Clock and Random services unless given. A CR or LF
 * in any header text, address, name, file name or Content-ID is `SmtpInvalidInput` (header
 * injection); so is any invalid option, with the field, its position and the value in the
 * reason (never a body).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <E = never, R = never>(
  options: MakeOptions<E, R>
) => Effect.Effect<Message<E, R>, SmtpInvalidInput> = compose.make

/**
 * An attachment whose content is a file, read through `@effect/platform`'s `FileSystem` (any
 * platform's: `NodeFileSystem.layer`, Bun's, a test double). The file is checked now (a missing
 * file, or one that is not a regular file, is a `PlatformError` before anything is sent), then
 * streamed with `fs.stream` each time the message is serialised (a retried send reads it again),
 * base64-encoded as it flows and never held whole. `filename` defaults to the last segment of
 * the path, and the content type to the one guessed from its extension.
 *
 * `make` keeps its signature: the attachment is an ordinary `Attachment` whose Stream fails
 * with `PlatformError`, so only the code that reads files needs `FileSystem`.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Message } from "effect-smtp"
 *
 * const message = Effect.gen(function*() {
 *   const report = yield* Message.attachmentFromPath("/srv/reports/2026-05.pdf")
 *   return yield* Message.make({ from: "a@example.com", to: "b@example.com", attachments: [report] })
 * }).pipe(Effect.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const attachmentFromPath: (
  path: string,
  options?: AttachmentFromPathOptions
) => Effect.Effect<Attachment<PlatformError.PlatformError>, PlatformError.PlatformError, FileSystem.FileSystem> =
  fromPath.attachmentFromPath

/**
 * The first value of a header field, unfolded and trimmed, as written: RFC 2047 encoded words
 * stay encoded (`=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=`); see `getDecoded` for the text a reader sees.
 * Names are case-insensitive.
 *
 * @since 0.1.0
 * @category getters
 */
export const get: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => Option.Option<string>
  <E = never, R = never>(self: Message<E, R>, name: string): Option.Option<string>
} = dual(2, <E = never, R = never>(self: Message<E, R>, name: string) => headers.get(self.headers, name))

/**
 * Every value of a header field, in order, unfolded and trimmed.
 *
 * @since 0.1.0
 * @category getters
 */
export const getAll: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => ReadonlyArray<string>
  <E = never, R = never>(self: Message<E, R>, name: string): ReadonlyArray<string>
} = dual(2, <E = never, R = never>(self: Message<E, R>, name: string) => headers.getAll(self.headers, name))

/**
 * The first value of a header field as a reader sees it: unfolded, with RFC 2047 encoded words
 * decoded (any charset the runtime's `TextDecoder` knows). Unstructured fields (Subject, X-*,
 * List-*, any unknown field) are decoded whole; address fields (From, To, Cc, Reply-To, Sender,
 * Bcc and their Resent- forms) have their display names decoded and are written back as
 * Python's `str(msg[name])` writes them (`"Doe, John" <j@example.com>, Team: a@example.com;`);
 * the structured fields without encoded words (Date, Message-ID, References, Content-*,
 * Received, DKIM-Signature, ...) are returned as `get` returns them. `get` gives the raw value.
 *
 * @since 0.2.0
 * @category getters
 */
export const getDecoded: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => Option.Option<string>
  <E = never, R = never>(self: Message<E, R>, name: string): Option.Option<string>
} = dual(2, <E = never, R = never>(self: Message<E, R>, name: string) => decoded.getDecoded(self.headers, name))

/**
 * Every value of a header field, decoded as `getDecoded` decodes the first.
 *
 * @since 0.2.0
 * @category getters
 */
export const getAllDecoded: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => ReadonlyArray<string>
  <E = never, R = never>(self: Message<E, R>, name: string): ReadonlyArray<string>
} = dual(2, <E = never, R = never>(self: Message<E, R>, name: string) => decoded.getAllDecoded(self.headers, name))

/**
 * The decoded Subject (`getDecoded(self, "Subject")`).
 *
 * @since 0.2.0
 * @category getters
 */
export const subject = <E = never, R = never>(self: Message<E, R>): Option.Option<string> =>
  decoded.getDecoded(self.headers, "Subject")

/**
 * The fields of a reply to a message, to spread into `make`: `to` (the original's Reply-To,
 * else its From), `subject` (`Re: ` and the decoded subject, unless it already starts with
 * `Re:`), `inReplyTo` (the original's Message-ID) and `references` (its References, or its
 * single In-Reply-To, then its Message-ID), as RFC 5322 §3.6.4 describes.
 *
 * @since 0.2.0
 * @category models
 */
export interface ReplyFields {
  readonly to: ReadonlyArray<{ readonly name?: string | undefined; readonly address: string }>
  readonly subject: string
  readonly inReplyTo: string | undefined
  readonly references: ReadonlyArray<string> | undefined
}

/**
 * The fields of a reply to `original` (see `ReplyFields`):
 * `Message.make({ ...fields, from: "me@example.com", text: "Thanks!" })`. A Reply-To or From
 * that is not an address list, or neither holding an address, is `SmtpInvalidInput`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const reply: <E = never, R = never>(original: Message<E, R>) => Either.Either<ReplyFields, SmtpInvalidInput> =
  decoded.reply

/**
 * Whether the message has a header field of that name.
 *
 * @since 0.1.0
 * @category getters
 */
export const has: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => boolean
  <E = never, R = never>(self: Message<E, R>, name: string): boolean
} = dual(2, <E = never, R = never>(self: Message<E, R>, name: string) => headers.has(self.headers, name))

/**
 * The mailboxes of every field of that name (From, To, Cc, ...), parsed per RFC 5322 with
 * `email-addresses`: display names (decoded from RFC 2047 encoded words, in any charset the
 * runtime's `TextDecoder` knows; words in an unknown charset are read as UTF-8 when they are
 * valid UTF-8, else left as written), quoted strings, comments, groups (flattened to their
 * mailboxes). No field, or an empty one, gives an empty list; a field that is not an address
 * list is `SmtpInvalidInput` rather than a silently shorter list.
 *
 * @since 0.1.0
 * @category getters
 */
export const addresses: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => Either.Either<ReadonlyArray<Address>, SmtpInvalidInput>
  <E = never, R = never>(self: Message<E, R>, name: string): Either.Either<ReadonlyArray<Address>, SmtpInvalidInput>
} = dual(
  2,
  <E = never, R = never>(self: Message<E, R>, name: string): Either.Either<ReadonlyArray<Address>, SmtpInvalidInput> =>
    Either.map(
      Either.all(headers.getAll(self.headers, name).map((value) => addressesInternal.parseAddressList(value, name))),
      (lists) => lists.flat()
    )
)

/**
 * Sets a header field: the first field of that name gets the value, the others are removed;
 * with none, the field is appended. The value is unfolded text: a CR or LF in it is
 * `SmtpInvalidInput` (header injection); long values are folded. It is written as given (raw
 * UTF-8 when not ASCII: see `needsSmtpUtf8`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const setHeader: {
  (
    name: string,
    value: string
  ): <E = never, R = never>(self: Message<E, R>) => Either.Either<Message<E, R>, SmtpInvalidInput>
  <E = never, R = never>(
    self: Message<E, R>,
    name: string,
    value: string
  ): Either.Either<Message<E, R>, SmtpInvalidInput>
} = dual(
  3,
  <E = never, R = never>(
    self: Message<E, R>,
    name: string,
    value: string
  ): Either.Either<Message<E, R>, SmtpInvalidInput> =>
    Either.map(headers.makeField(name, value), (field) => {
      const index = self.headers.findIndex((h) => h.name.toLowerCase() === name.toLowerCase())
      if (index === -1) return { headers: [...self.headers, field], body: self.body }
      const before = self.headers.slice(0, index)
      const after = headers.remove(self.headers.slice(index + 1), name)
      return { headers: [...before, field, ...after], body: self.body }
    })
)

/**
 * Appends a header field (Received, Resent-*, ...), with the checks of `setHeader`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const appendHeader: {
  (
    name: string,
    value: string
  ): <E = never, R = never>(self: Message<E, R>) => Either.Either<Message<E, R>, SmtpInvalidInput>
  <E = never, R = never>(
    self: Message<E, R>,
    name: string,
    value: string
  ): Either.Either<Message<E, R>, SmtpInvalidInput>
} = dual(
  3,
  <E = never, R = never>(
    self: Message<E, R>,
    name: string,
    value: string
  ): Either.Either<Message<E, R>, SmtpInvalidInput> =>
    Either.map(headers.makeField(name, value), (field) => ({ headers: [...self.headers, field], body: self.body }))
)

/**
 * Removes every header field of that name.
 *
 * @since 0.1.0
 * @category combinators
 */
export const removeHeader: {
  (name: string): <E = never, R = never>(self: Message<E, R>) => Message<E, R>
  <E = never, R = never>(self: Message<E, R>, name: string): Message<E, R>
} = dual(2, <E = never, R = never>(self: Message<E, R>, name: string): Message<E, R> => ({
  headers: headers.remove(self.headers, name),
  body: self.body
}))

/**
 * The envelope, by smtplib's `send_message` rules: with no Resent-Date field, the sender is the
 * first address of Sender, else of From, and the recipients those of To, Bcc and Cc (the first
 * field of each, in that order, as CPython); with exactly one Resent-Date field, the same from
 * Resent-Sender / Resent-From and Resent-To / Resent-Bcc / Resent-Cc; with more than one,
 * `SmtpInvalidInput` (even when `from` and `to` are given). Explicit `from` / `to` replace the
 * headers. A missing or unparsable sender field is `SmtpInvalidInput` (smtplib would send the
 * null sender).
 *
 * Addresses are read as smtplib's `email.utils.getaddresses` reads them, which is laxer than
 * {@link addresses}: an address without a domain (`To: root`, `Cron Daemon <root>`) is one, as
 * are groups, comments and quoted local parts. What cannot be an address (`To: Foo Bar`, `<>`,
 * an unterminated quoted string, `a@b c`) is `SmtpInvalidInput` naming the header and the
 * position, where getaddresses would guess.
 *
 * @since 0.1.0
 * @category envelope
 */
export const envelope: <E = never, R = never>(
  message: Message<E, R>,
  options?: EnvelopeOptions
) => Either.Either<Envelope, SmtpInvalidInput> = envelopeInternal.envelope

/**
 * Everything `sendmail` needs to send the message as smtplib's `send_message` does: the
 * envelope; the message without Bcc and Resent-Bcc, with CRLF line endings; and the MAIL
 * parameters. When an envelope address is not ASCII, SMTPUTF8 and BODY=8BITMIME are added if
 * the server supports SMTPUTF8, else `SmtpNotSupportedError`. Beyond smtplib: they are added
 * too when the addresses are ASCII but a header holds raw UTF-8 and the server supports
 * SMTPUTF8. Every header field is checked first, so nothing invalid reaches the wire.
 *
 * @since 0.1.0
 * @category envelope
 */
export const prepareSend: <E = never, R = never>(
  message: Message<E, R>,
  options: PrepareSendOptions
) => Either.Either<PreparedSend<E, R>, SmtpInvalidInput | SmtpNotSupportedError> = envelopeInternal.prepareSend

/**
 * The message as it goes on the wire: header fields in order with CRLF line endings, without
 * Bcc and Resent-Bcc, the blank line, then the body with lone CR and LF turned into CRLF (as a
 * Stream transform for a Stream body). Fails with `SmtpInvalidInput` before emitting anything
 * when a field has an invalid name or a line break that is not a fold.
 *
 * @since 0.1.0
 * @category serialization
 */
export const toStream: <E = never, R = never>(
  message: Message<E, R>
) => Stream.Stream<Uint8Array, E | SmtpInvalidInput, R> = serialize.toStream

/**
 * The serialised message of `toStream` in one array (a Stream body is collected in memory).
 *
 * @since 0.1.0
 * @category serialization
 */
export const toBytes: <E = never, R = never>(
  message: Message<E, R>
) => Effect.Effect<Uint8Array, E | SmtpInvalidInput, R> = serialize.toBytes

/**
 * Whether a transmitted header field holds raw non-ASCII text, so that the message should go
 * out with SMTPUTF8 (and BODY=8BITMIME).
 *
 * @since 0.1.0
 * @category serialization
 */
export const needsSmtpUtf8: <E = never, R = never>(message: Message<E, R>) => boolean = serialize.needsSmtpUtf8
