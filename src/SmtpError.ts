/**
 * The typed errors: one tag for each smtplib exception, plus timeouts, TLS failures, invalid
 * input and malformed replies. Every error is a `Schema.TaggedError`, so it can be caught by tag,
 * serialised and compared; none of them ever carries a credential or a message body.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { SmtpReply } from "./SmtpReply.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-smtp/SmtpError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Whether a value is any of the errors of this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSmtpError = (u: unknown): u is SmtpError => Predicate.hasProperty(u, TypeId)

const responseFields = {
  /** The reply code (smtplib's `smtp_code`). */
  code: Schema.Int,
  /** The reply text, lines joined with `"\n"` (smtplib's `smtp_error`). */
  text: Schema.String,
  /** The RFC 3463 enhanced status code, when the reply had one. */
  enhancedCode: Schema.optional(Schema.String),
  /** The command that drew the reply (verb only: never arguments that could hold secrets). */
  command: Schema.optional(Schema.String)
}

const replyText = (self: { readonly code: number; readonly text: string; readonly command?: string | undefined }) =>
  `${self.command === undefined ? "" : `${self.command}: `}${self.code} ${self.text.replace(/\n/g, " / ")}`

/**
 * The fields of a response error taken from a reply.
 *
 * @since 0.1.0
 * @category constructors
 */
export const replyFields = (reply: SmtpReply, command?: string | undefined): {
  readonly code: number
  readonly text: string
  readonly enhancedCode?: string
  readonly command?: string
} => {
  const enhancedCode = reply.enhancedCode
  return {
    code: reply.code,
    text: reply.text,
    ...(enhancedCode === undefined ? {} : { enhancedCode }),
    ...(command === undefined ? {} : { command })
  }
}

/**
 * The server closed the connection, or the session was used after it was closed
 * (smtplib's `SMTPServerDisconnected`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpServerDisconnected
  extends Schema.TaggedError<SmtpServerDisconnected>("effect-smtp/SmtpServerDisconnected")("SmtpServerDisconnected", {
    /** What the session was doing: `"waiting for the reply to RCPT"`. */
    during: Schema.String,
    cause: Schema.optional(Schema.Defect)
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Connection closed while ${this.during}`
  }
}

/**
 * A reply that smtplib would raise as `SMTPResponseException`: an unexpected code from the server.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpResponseException
  extends Schema.TaggedError<SmtpResponseException>("effect-smtp/SmtpResponseException")(
    "SmtpResponseException",
    responseFields
  )
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return replyText(this)
  }
}

/**
 * The server refused the envelope sender (smtplib's `SMTPSenderRefused`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpSenderRefused
  extends Schema.TaggedError<SmtpSenderRefused>("effect-smtp/SmtpSenderRefused")("SmtpSenderRefused", {
    ...responseFields,
    sender: Schema.String
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Sender <${this.sender}> refused: ${replyText(this)}`
  }
}

/**
 * Every recipient was refused (smtplib's `SMTPRecipientsRefused`). `recipients` maps each address
 * to the reply that refused it.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpRecipientsRefused
  extends Schema.TaggedError<SmtpRecipientsRefused>("effect-smtp/SmtpRecipientsRefused")("SmtpRecipientsRefused", {
    recipients: Schema.Record({ key: Schema.String, value: SmtpReply })
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const entries = Object.entries(this.recipients)
    if (entries.length === 0) return "All recipients refused"
    return `All recipients refused: ${entries.map(([rcpt, r]) => `<${rcpt}> ${r.code} ${r.lines[0] ?? ""}`).join("; ")}`
  }
}

/**
 * The server refused the message data: DATA itself, or the end of data (smtplib's `SMTPDataError`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpDataError
  extends Schema.TaggedError<SmtpDataError>("effect-smtp/SmtpDataError")("SmtpDataError", responseFields)
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Message data refused: ${replyText(this)}`
  }
}

/**
 * The connection could not be made: the server's greeting was not 220 (then `code` and `text`
 * hold it, as smtplib's `SMTPConnectError`), or the TCP/Unix connection itself failed (then
 * `cause` holds the system error; smtplib raises `OSError` there).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpConnectError
  extends Schema.TaggedError<SmtpConnectError>("effect-smtp/SmtpConnectError")("SmtpConnectError", {
    /** Where the connection went: `host:port` or a Unix socket path. */
    address: Schema.String,
    code: Schema.optional(Schema.Int),
    text: Schema.optional(Schema.String),
    enhancedCode: Schema.optional(Schema.String),
    cause: Schema.optional(Schema.Defect)
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    if (this.code !== undefined) {
      return `${this.address} greeted with ${this.code} ${(this.text ?? "").replace(/\n/g, " / ")}`
    }
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    return `Could not connect to ${this.address}${cause}`
  }
}

/**
 * Neither EHLO nor HELO was accepted (smtplib's `SMTPHeloError`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpHeloError
  extends Schema.TaggedError<SmtpHeloError>("effect-smtp/SmtpHeloError")("SmtpHeloError", responseFields)
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Server refused HELO/EHLO: ${replyText(this)}`
  }
}

/**
 * The server does not support what was asked: an extension (SMTPUTF8, STARTTLS, AUTH) or an
 * option (smtplib's `SMTPNotSupportedError`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpNotSupportedError
  extends Schema.TaggedError<SmtpNotSupportedError>("effect-smtp/SmtpNotSupportedError")("SmtpNotSupportedError", {
    /** The extension or option: `"SMTPUTF8"`. */
    feature: Schema.String,
    /** Why it was needed, when that helps. */
    detail: Schema.optional(Schema.String)
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.feature} is not supported by the server${this.detail === undefined ? "" : `: ${this.detail}`}`
  }
}

/**
 * The message is larger than the server's advertised SIZE limit (RFC 1870 §6), known before
 * anything was written, so nothing was: `size` and `limit` in octets. smtplib sends anyway and lets
 * the server refuse. Permanent for this server.
 *
 * @since 0.2.0
 * @category errors
 */
export class SmtpMessageTooLarge
  extends Schema.TaggedError<SmtpMessageTooLarge>("effect-smtp/SmtpMessageTooLarge")("SmtpMessageTooLarge", {
    /** The message's size. */
    size: Schema.Number,
    /** The largest message the server takes (its SIZE). */
    limit: Schema.Number
  })
{
  /**
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `The message is ${this.size} octets, more than the server's limit of ${this.limit} (SIZE): nothing was sent`
  }
}

/**
 * Authentication failed (smtplib's `SMTPAuthenticationError`): the last server reply and every
 * mechanism tried.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpAuthenticationError
  extends Schema.TaggedError<SmtpAuthenticationError>("effect-smtp/SmtpAuthenticationError")(
    "SmtpAuthenticationError",
    {
      ...responseFields,
      mechanisms: Schema.Array(Schema.String),
      /**
       * Set when the client itself rejected the exchange (a wrong SCRAM server signature) or could
       * not take part (a token provider failed: then `code` is 0 and `cause` is its error).
       */
      detail: Schema.optional(Schema.String),
      cause: Schema.optional(Schema.Defect)
    }
  )
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const tried = this.mechanisms.length === 0 ? "" : ` (tried ${this.mechanisms.join(", ")})`
    return `Authentication failed${tried}: ${this.detail ?? `${this.code} ${this.text.replace(/\n/g, " / ")}`}`
  }
}

/**
 * A wait for the server, or for the network, took longer than its timeout (smtplib raises
 * `socket.timeout`). The connection is closed: its state is unknown.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpTimeout extends Schema.TaggedError<SmtpTimeout>("effect-smtp/SmtpTimeout")("SmtpTimeout", {
  /** What timed out: `"connect"`, `"greeting"`, `"reply to RCPT"`, `"writing message data"`, ... */
  phase: Schema.String,
  /** The limit, in milliseconds. */
  timeoutMillis: Schema.Number
}) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Timed out after ${this.timeoutMillis} ms: ${this.phase}`
  }
}

/**
 * Why a TLS handshake failed.
 *
 * @since 0.1.0
 * @category models
 */
export const TlsFailureReason = Schema.Literal(
  "untrusted",
  "expired",
  "hostname-mismatch",
  "protocol",
  "handshake-timeout",
  "downgrade",
  "injection",
  "other"
)

/**
 * @since 0.1.0
 * @category models
 */
export type TlsFailureReason = typeof TlsFailureReason.Type

/**
 * TLS failed: handshake, certificate or policy (smtplib raises `ssl.SSLError`). `reason` says
 * which without digging into `cause`.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpTlsError extends Schema.TaggedError<SmtpTlsError>("effect-smtp/SmtpTlsError")("SmtpTlsError", {
  reason: TlsFailureReason,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `TLS failed (${this.reason}): ${this.detail}`
  }
}

/**
 * The caller asked for something invalid (CR or LF in a command, a zero timeout, two Resent-*
 * blocks, a non-ASCII string message). Nothing was sent (smtplib raises `ValueError`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpInvalidInput
  extends Schema.TaggedError<SmtpInvalidInput>("effect-smtp/SmtpInvalidInput")("SmtpInvalidInput", {
    reason: Schema.String
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.reason
  }
}

/**
 * The server broke the protocol: a malformed reply line, an over-long line, too many lines, or
 * bytes where none may be. smtplib returns code -1 for a malformed reply instead; here the session
 * is closed, since the stream can no longer be trusted. `line` holds the offending line, truncated.
 *
 * @since 0.1.0
 * @category errors
 */
export class SmtpProtocolError
  extends Schema.TaggedError<SmtpProtocolError>("effect-smtp/SmtpProtocolError")("SmtpProtocolError", {
    reason: Schema.String,
    line: Schema.optional(Schema.String)
  })
{
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.line === undefined ? this.reason : `${this.reason}: ${JSON.stringify(this.line)}`
  }
}

/**
 * The outcome of a send is unknown: the end of the message data (the final `.` or `BDAT ... LAST`)
 * was handed to the network, and then the connection was lost, timed out or broke the protocol
 * before the final reply came. The server may have accepted the message: retrying it may deliver
 * it twice, so `Mailer` never does. `cause` is the failure that ended the wait
 * (`SmtpServerDisconnected`, `SmtpTimeout`, `SmtpProtocolError`, ...).
 *
 * Every other error of a send means the message was not accepted: see {@link classify}.
 *
 * @since 0.2.0
 * @category errors
 */
export class SmtpDeliveryUnknown
  extends Schema.TaggedError<SmtpDeliveryUnknown>("effect-smtp/SmtpDeliveryUnknown")("SmtpDeliveryUnknown", {
    /** What the session was waiting for: `"waiting for the reply to BDAT"`. */
    during: Schema.String,
    cause: Schema.optional(Schema.Defect),
    /**
     * Whether the end of the data is known to have been handed to the network: `"sent"` (the
     * default when absent), or `"unknown"` when the send stopped where that could not be told
     * (`Mailer.sendAll` after a defect in a batch). Either way the message may have been delivered.
     */
    endOfData: Schema.optional(Schema.Literal("sent", "unknown"))
  })
{
  /**
   * @since 0.2.0
   */
  readonly [TypeId]: TypeId = TypeId
  /**
   * @since 0.2.0
   */
  override get message(): string {
    const why = isSmtpError(this.cause) ? `: ${this.cause.message}` : ""
    const what = this.endOfData === "unknown" ?
      `the session stopped ${this.during}${why}, perhaps after the end of the data was sent` :
      `the end of the data was sent, then the session failed ${this.during}${why}`
    return `Delivery unknown: ${what}; the server may have accepted the message (a retry could deliver it twice)`
  }
}

/**
 * Every error that carries a server reply (smtplib's `SMTPResponseException` and its subclasses).
 *
 * @since 0.1.0
 * @category models
 */
export type SmtpResponseError =
  | SmtpResponseException
  | SmtpSenderRefused
  | SmtpDataError
  | SmtpHeloError
  | SmtpAuthenticationError

/**
 * @since 0.1.0
 * @category schemas
 */
export const SmtpResponseError: Schema.Union<[
  typeof SmtpResponseException,
  typeof SmtpSenderRefused,
  typeof SmtpDataError,
  typeof SmtpHeloError,
  typeof SmtpAuthenticationError
]> = Schema.Union(SmtpResponseException, SmtpSenderRefused, SmtpDataError, SmtpHeloError, SmtpAuthenticationError)

/**
 * Every error of this library (smtplib's `SMTPException`, plus what Python raises outside it).
 *
 * @since 0.1.0
 * @category models
 */
export type SmtpError =
  | SmtpResponseError
  | SmtpServerDisconnected
  | SmtpRecipientsRefused
  | SmtpConnectError
  | SmtpNotSupportedError
  | SmtpMessageTooLarge
  | SmtpTimeout
  | SmtpTlsError
  | SmtpInvalidInput
  | SmtpProtocolError
  | SmtpDeliveryUnknown

/**
 * @since 0.1.0
 * @category schemas
 */
export const SmtpError: Schema.Union<[
  typeof SmtpResponseException,
  typeof SmtpSenderRefused,
  typeof SmtpDataError,
  typeof SmtpHeloError,
  typeof SmtpAuthenticationError,
  typeof SmtpServerDisconnected,
  typeof SmtpRecipientsRefused,
  typeof SmtpConnectError,
  typeof SmtpNotSupportedError,
  typeof SmtpMessageTooLarge,
  typeof SmtpTimeout,
  typeof SmtpTlsError,
  typeof SmtpInvalidInput,
  typeof SmtpProtocolError,
  typeof SmtpDeliveryUnknown
]> = Schema.Union(
  SmtpResponseException,
  SmtpSenderRefused,
  SmtpDataError,
  SmtpHeloError,
  SmtpAuthenticationError,
  SmtpServerDisconnected,
  SmtpRecipientsRefused,
  SmtpConnectError,
  SmtpNotSupportedError,
  SmtpMessageTooLarge,
  SmtpTimeout,
  SmtpTlsError,
  SmtpInvalidInput,
  SmtpProtocolError,
  SmtpDeliveryUnknown
)

/**
 * Whether an error carries a server reply.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSmtpResponseError = (u: unknown): u is SmtpResponseError =>
  isSmtpError(u) && "code" in u && typeof u.code === "number" && u._tag !== "SmtpConnectError"

/**
 * What an error means for the message it interrupted:
 *
 * - `"transient"`: not accepted, and another attempt may succeed (a 4xx reply, a connection lost
 *   or timed out before the end of the data, a malformed reply before it);
 * - `"permanent"`: not accepted, and the same attempt would fail again (a 5xx reply, invalid
 *   input, a missing extension, a TLS or authentication failure);
 * - `"unknown"`: the end of the data was sent and no final reply came (`SmtpDeliveryUnknown`):
 *   the message may have been delivered, so it must not be retried blindly.
 *
 * @since 0.2.0
 * @category classification
 */
export type Disposition = "transient" | "permanent" | "unknown"

const transientCode = (code: number | undefined): Disposition =>
  code !== undefined && code >= 400 && code < 500 ? "transient" : "permanent"

/**
 * Classifies an error: see {@link Disposition}. `Mailer` retries `"transient"` failures only.
 *
 * @since 0.2.0
 * @category classification
 */
const isHopelessProxyFailure = (cause: unknown): boolean =>
  Predicate.hasProperty(cause, "_tag") && cause._tag === "ProxyError" && Predicate.hasProperty(cause, "reason") &&
  (cause.reason === "auth" || cause.reason === "invalid")

export const classify = (error: SmtpError): Disposition => {
  switch (error._tag) {
    case "SmtpDeliveryUnknown":
      return "unknown"
    case "SmtpServerDisconnected":
    case "SmtpTimeout":
    case "SmtpProtocolError":
      return "transient"
    case "SmtpConnectError":
      // a proxy that refused the credentials, or a proxy URL that is not one, will do it again
      if (isHopelessProxyFailure(error.cause)) return "permanent"
      return error.code === undefined ? "transient" : transientCode(error.code)
    case "SmtpRecipientsRefused": {
      const replies = Object.values(error.recipients)
      return replies.length > 0 && replies.every((r) => transientCode(r.code) === "transient") ?
        "transient" :
        "permanent"
    }
    case "SmtpTlsError":
      return error.reason === "handshake-timeout" ? "transient" : "permanent"
    case "SmtpInvalidInput":
    case "SmtpNotSupportedError":
    case "SmtpMessageTooLarge":
      return "permanent"
    default:
      return transientCode(error.code)
  }
}
