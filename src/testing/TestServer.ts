/**
 * The permissive SMTP server behind the test layers: what it can be told (refuse recipients,
 * answer any stage with any reply, hang up, stall, require AUTH) and what it captures. One
 * protocol implementation over bytes serves both `TestTransport` (in memory, no network) and
 * `TestSmtpServer` (`effect-smtp/testing/node`, a real socket on loopback), so both behave alike.
 *
 * It speaks ESMTP with PIPELINING, CHUNKING (BDAT), 8BITMIME, SMTPUTF8, SIZE,
 * ENHANCEDSTATUSCODES, STARTTLS and AUTH PLAIN and LOGIN; every message it accepts is captured
 * with its envelope and bytes, and {@link decode} reads it back (headers with RFC 2047 decoded,
 * subject, addresses, text, html, attachments) with `postal-mime`.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import PostalMime, { type Address, decodeWords } from "postal-mime"

/**
 * A reply of the server: `"550 5.1.1 No such user"` (a code, then the text; `\n` separates the
 * lines of a multi-line reply) or a code and a text.
 *
 * @since 0.2.0
 * @category models
 */
export type Reply = string | { readonly code: number; readonly text: string }

/**
 * What the server does instead of its usual answer: a {@link Reply}, `"disconnect"` (it closes
 * the connection without a reply: after the end of data the client cannot know whether the
 * message was delivered) or `"stall"` (it stops answering: the client's timeout decides).
 *
 * @since 0.2.0
 * @category models
 */
export type Response = Reply | "disconnect" | "stall"

/**
 * A point of the conversation where the server can be told to answer otherwise:
 *
 * - `"connect"`: the greeting (`"421 4.3.2 Too busy"` refuses the connection);
 * - `"ehlo"`: EHLO or HELO;
 * - `"auth"`: AUTH, once the credentials are read (`user` is set);
 * - `"mail"`: MAIL FROM (`from` is set);
 * - `"rcpt"`: RCPT TO (`recipient` is set);
 * - `"data"`: DATA, or the first BDAT of a message;
 * - `"message"`: the end of the data (`message` holds it): the final reply (with LMTP, asked once
 *   per accepted recipient, `recipient` set).
 *
 * @since 0.2.0
 * @category models
 */
export type Stage = "connect" | "ehlo" | "auth" | "mail" | "rcpt" | "data" | "message"

/**
 * What the `respond` option is asked about.
 *
 * @since 0.2.0
 * @category models
 */
export interface Event {
  readonly stage: Stage
  /** The connection, from 0 in the order they were opened. */
  readonly connection: number
  /** The command line as received (`"<end of data>"` for the stage `"message"`). */
  readonly command: string
  /** The user authenticated on this connection (or, at the stage `"auth"`, the one logging in). */
  readonly user?: string | undefined
  /** The envelope sender of the transaction. */
  readonly from?: string | undefined
  /** The recipient of this RCPT. */
  readonly recipient?: string | undefined
  /** The recipients accepted so far in the transaction. */
  readonly recipients?: ReadonlyArray<string> | undefined
  /** The message, as received (dot-stuffing removed), at the stage `"message"`. */
  readonly message?: Uint8Array | undefined
}

/**
 * An extension the server can leave out of its EHLO reply.
 *
 * @since 0.2.0
 * @category models
 */
export type Extension =
  | "PIPELINING"
  | "CHUNKING"
  | "8BITMIME"
  | "SMTPUTF8"
  | "SIZE"
  | "ENHANCEDSTATUSCODES"
  | "STARTTLS"
  | "AUTH"

/**
 * How the server behaves. Everything is accepted unless said otherwise.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Speak LMTP (RFC 2033) instead of SMTP: LHLO instead of EHLO and HELO, and after the data one
   * reply per accepted recipient (each can be set with `respond` at the stage `"message"`).
   */
  readonly lmtp?: boolean | undefined
  /** The name in the greeting and the EHLO reply. Default `"mx.test"`. */
  readonly hostname?: string | undefined
  /** The SIZE limit, advertised and enforced (552). Default 25 MiB. */
  readonly size?: number | undefined
  /** Extensions left out of the EHLO reply (and refused when used). */
  readonly disable?: ReadonlyArray<Extension> | undefined
  /**
   * Accounts for AUTH PLAIN and LOGIN, user name to password; without it any credentials are
   * accepted.
   */
  readonly users?: Readonly<Record<string, string>> | undefined
  /** MAIL before a successful AUTH is refused with `530 5.7.0`. Default false. */
  readonly requireAuth?: boolean | undefined
  /**
   * Recipients to refuse at RCPT: address (compared case-insensitively) to the response, or a
   * function that returns one (`undefined` accepts the address).
   */
  readonly refuse?:
    | Readonly<Record<string, Response>>
    | ((address: string) => Response | undefined)
    | undefined
  /**
   * Answers any stage otherwise: return a {@link Response}, or `undefined` for the usual answer.
   * Runs after `refuse` for RCPT.
   */
  readonly respond?: ((event: Event) => Response | undefined) | undefined
}

/**
 * A message the server accepted, as it arrived: the envelope, the bytes and the session they
 * came in.
 *
 * @since 0.2.0
 * @category models
 */
export interface Received {
  /** The envelope: MAIL FROM and the recipients accepted at RCPT (with LMTP, those it was delivered to). */
  readonly envelope: { readonly from: string; readonly to: ReadonlyArray<string> }
  /** The MAIL FROM parameters (`"SIZE=1234"`, `"BODY=8BITMIME"`, `"SMTPUTF8"`). */
  readonly mailParams: ReadonlyArray<string>
  /** The message as received (dot-stuffing removed, line ends as sent). */
  readonly raw: Uint8Array
  /** The id the server gave in its final reply (`250 2.0.0 Ok: queued as <id>`). */
  readonly queueId: string
  /** How the data came: `"DATA"` or `"BDAT"`. */
  readonly via: "DATA" | "BDAT"
  /** The connection, from 0 in the order they were opened. */
  readonly connection: number
  /** The name the client gave with EHLO or HELO. */
  readonly helo: string
  /** Whether the session was encrypted (STARTTLS or implicit TLS). */
  readonly secure: boolean
  /** The user that authenticated, if any. */
  readonly user: string | undefined
}

/**
 * A mailbox of an address header, its display name decoded.
 *
 * @since 0.2.0
 * @category models
 */
export interface Mailbox {
  readonly name: string
  readonly address: string
}

/**
 * An attachment (or inline part) of a captured message.
 *
 * @since 0.2.0
 * @category models
 */
export interface Attachment {
  /** The file name, decoded; undefined when the part has none. */
  readonly filename: string | undefined
  /** The MIME type, lower case (`"application/pdf"`). */
  readonly contentType: string
  /** `"attachment"`, `"inline"`, or undefined without Content-Disposition. */
  readonly disposition: string | undefined
  /** The Content-ID, angle brackets included. */
  readonly contentId: string | undefined
  /** The decoded content. */
  readonly content: Uint8Array
}

/**
 * A captured message, decoded: the {@link Received} fields, and the message as a reader sees it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Captured extends Received {
  /** Every header in order, its value unfolded and RFC 2047 encoded words decoded. */
  readonly headers: ReadonlyArray<{ readonly name: string; readonly value: string }>
  /** The first header of that name (case-insensitive), decoded; undefined when absent. */
  readonly header: (name: string) => string | undefined
  readonly subject: string | undefined
  readonly messageId: string | undefined
  /** The From mailbox. */
  readonly from: Mailbox | undefined
  /** The To, Cc and Reply-To mailboxes (groups flattened). */
  readonly to: ReadonlyArray<Mailbox>
  readonly cc: ReadonlyArray<Mailbox>
  readonly replyTo: ReadonlyArray<Mailbox>
  /**
   * The plain text body, when there is one: decoded, line ends as `\n`, without the line break
   * that ends the part (SMTP needs one, so a composer adds it).
   */
  readonly text: string | undefined
  /** The HTML body, when there is one, read as `text` is. */
  readonly html: string | undefined
  readonly attachments: ReadonlyArray<Attachment>
}

const mailboxes = (addresses: ReadonlyArray<Address> | Address | undefined) => {
  if (addresses === undefined) return []
  const list: ReadonlyArray<Address> = Array.isArray(addresses) ? addresses : [addresses]
  return list.flatMap((a): ReadonlyArray<Mailbox> =>
    a.group !== undefined ?
      a.group.map((m) => ({ name: m.name, address: m.address })) :
      [{ name: a.name, address: a.address }]
  )
}

const withoutFinalBreak = (body: string | undefined) => body?.replace(/\r?\n$/, "")

const decodeHeader = (value: string): string => {
  try {
    return decodeWords(value)
  } catch {
    return value
  }
}

/**
 * Reads a received message back with `postal-mime`. A message it cannot parse is a defect (the
 * client under test sent something no reader would take).
 *
 * @since 0.2.0
 * @category decoding
 */
export const decode = (received: Received): Effect.Effect<Captured> =>
  Effect.map(
    Effect.promise(() => PostalMime.parse(received.raw, { attachmentEncoding: "arraybuffer" })),
    (email): Captured => {
      const headers = email.headers.map((h) => ({ name: h.originalKey, value: decodeHeader(h.value) }))
      const from = mailboxes(email.from)[0]
      return {
        ...received,
        headers,
        header: (name) => {
          const key = name.toLowerCase()
          return headers.find((h) => h.name.toLowerCase() === key)?.value
        },
        subject: email.subject,
        messageId: email.messageId,
        from,
        to: mailboxes(email.to),
        cc: mailboxes(email.cc),
        replyTo: mailboxes(email.replyTo),
        text: withoutFinalBreak(email.text),
        html: withoutFinalBreak(email.html),
        attachments: email.attachments.map((a) => ({
          filename: a.filename ?? undefined,
          contentType: a.mimeType,
          disposition: a.disposition ?? undefined,
          contentId: a.contentId,
          content: typeof a.content === "string" ?
            new TextEncoder().encode(a.content) :
            a.content instanceof Uint8Array ?
            a.content :
            new Uint8Array(a.content)
        }))
      }
    }
  )
