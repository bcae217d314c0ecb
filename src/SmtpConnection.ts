/**
 * One SMTP/LMTP session: smtplib's `SMTP` methods as Effect values. Get one from
 * `SmtpClient.connect` (scoped: closing the Scope sends QUIT and closes the socket) or provide
 * it with `SmtpClient.layer`.
 *
 * Operations on one connection are serialised: concurrent callers take turns, a whole
 * `sendmail` transaction at a time.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Stream from "effect/Stream"
import type * as Message from "./Message.js"
import type * as SmtpAuth from "./SmtpAuth.js"
import type { SmtpError } from "./SmtpError.js"
import type { SmtpReply } from "./SmtpReply.js"
import type * as SmtpTransport from "./SmtpTransport.js"

/**
 * A message to send: a string (ASCII only; lone CR and LF become CRLF), bytes (sent unchanged
 * but for dot-stuffing) or a Stream of bytes (likewise, never held whole in memory).
 *
 * @since 0.1.0
 * @category models
 */
export type MessageInput<E = never, R = never> = string | Uint8Array | Stream.Stream<Uint8Array, E, R>

/**
 * Options of `sendmail`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SendmailOptions {
  /** ESMTP parameters for MAIL FROM (`"BODY=8BITMIME"`, `"SMTPUTF8"`); sent only to ESMTP servers. */
  readonly mailOptions?: ReadonlyArray<string> | undefined
  /** ESMTP parameters for every RCPT TO (`"NOTIFY=SUCCESS,FAILURE"`). */
  readonly rcptOptions?: ReadonlyArray<string> | undefined
  /**
   * The message size for `SIZE=` when the server advertises SIZE. Known for strings and bytes;
   * give it for a Stream, or no SIZE parameter is sent. A known size above the server's SIZE limit
   * is `SmtpMessageTooLarge` before anything is written (smtplib sends and lets the server refuse).
   */
  readonly size?: number | undefined
  /** Delivery status notifications (RFC 3461): MAIL's RET and ENVID, each RCPT's NOTIFY and ORCPT. */
  readonly dsn?: Dsn | undefined
  /**
   * REQUIRETLS (RFC 8689): the message must travel over TLS on every hop. Refused with
   * `SmtpNotSupportedError` before anything is written unless the session is encrypted and the
   * server advertises REQUIRETLS.
   */
  readonly requireTls?: boolean | undefined
}

/**
 * Delivery status notification options (RFC 3461), sent as MAIL and RCPT parameters (xtext-encoded).
 * A server without the DSN extension makes the send fail with `SmtpNotSupportedError`, unless
 * `ifUnsupported` is `"drop"` (then they are left out).
 *
 * @since 0.2.0
 * @category models
 */
export interface Dsn {
  /** Return the full message or only its headers in a failure report (`RET=`). */
  readonly ret?: "FULL" | "HDRS" | undefined
  /** An envelope identifier the reports will carry (`ENVID=`): printable ASCII, at most 100 characters. */
  readonly envid?: string | undefined
  /** When to report, for every recipient (`NOTIFY=`): never, or on some of success, failure and delay. */
  readonly notify?: "NEVER" | ReadonlyArray<"SUCCESS" | "FAILURE" | "DELAY"> | undefined
  /**
   * The original recipient (`ORCPT=`): `true` for each recipient's own address, or the original
   * address of some recipients (envelope address → original address). A non-ASCII address goes as
   * `utf-8;` (RFC 6533).
   */
  readonly orcpt?: boolean | Readonly<Record<string, string>> | undefined
  /** What to do when the server does not advertise DSN: fail (the default) or send without. */
  readonly ifUnsupported?: "fail" | "drop" | undefined
}

/**
 * Options of `sendMessage` (smtplib's `send_message`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SendMessageOptions {
  /** The envelope sender, instead of Sender / From (or Resent-Sender / Resent-From). */
  readonly from?: string | undefined
  /** The envelope recipients, instead of To, Bcc and Cc (or their Resent-* forms). */
  readonly to?: string | ReadonlyArray<string> | undefined
  /** ESMTP parameters for MAIL FROM; SMTPUTF8 and BODY=8BITMIME are added when the message needs them. */
  readonly mailOptions?: ReadonlyArray<string> | undefined
  /** ESMTP parameters for every RCPT TO. */
  readonly rcptOptions?: ReadonlyArray<string> | undefined
  /** Delivery status notifications, as for `sendmail`. */
  readonly dsn?: Dsn | undefined
  /** REQUIRETLS, as for `sendmail`. */
  readonly requireTls?: boolean | undefined
}

/**
 * The recipients refused at RCPT, address to reply (smtplib's `sendmail` return value).
 *
 * @since 0.1.0
 * @category models
 */
export type RefusedRecipients = Readonly<Record<string, SmtpReply>>

/**
 * What `send` takes besides a `Message`: the envelope and the message as `sendmail` takes them.
 *
 * @since 0.2.0
 * @category models
 */
export interface SendInput<E = never, R = never> {
  readonly from: string
  readonly to: string | ReadonlyArray<string>
  readonly message: MessageInput<E, R>
  readonly options?: SendmailOptions | undefined
}

/**
 * What a send did, as support staff log it: the envelope, the Message-ID, the recipients accepted
 * and refused (with the server's replies), the final reply, and the server's queue id when the
 * final reply carries one in a common form (Postfix and compatible `queued as X`, Exim `id=X`,
 * Microsoft `InternalId=X`, Gmail, Amazon SES, Sendmail, qmail).
 *
 * @since 0.2.0
 * @category models
 */
export interface SendResult {
  readonly envelope: { readonly from: string; readonly to: ReadonlyArray<string> }
  /** The Message-ID header, when the message has one (read from the headers; not for a Stream). */
  readonly messageId: string | undefined
  /** The recipients the server accepted (at RCPT), in order. */
  readonly accepted: ReadonlyArray<string>
  /** The recipients refused at RCPT, with their replies. */
  readonly refused: RefusedRecipients
  /** The reply to the end of data. */
  readonly reply: SmtpReply
  /** The server's id for the queued message, when the final reply carries one in a known form. */
  readonly queueId: string | undefined
}

/**
 * One message of a batch (`sendBatch`): the envelope and the message, in memory (a string as
 * `sendmail` takes it, or bytes).
 *
 * @since 0.2.0
 * @category models
 */
export interface BatchItem {
  readonly from: string
  readonly to: string | ReadonlyArray<string>
  readonly message: string | Uint8Array
  readonly options?: SendmailOptions | undefined
}

/**
 * The outcome of one message of a batch, by its position in the input (`index`):
 *
 * - `Sent`: the server accepted it (`reply` is its final reply; `refused` the recipients it refused);
 * - `Refused`: the server refused it (`error` holds the reply: `SmtpSenderRefused`,
 *   `SmtpRecipientsRefused`, `SmtpDataError`; a 4xx refusal is worth another attempt);
 * - `NotSent`: it was not sent (its input was invalid, or the connection failed before its end of
 *   data was written): safe to send again;
 * - `Unknown`: the connection failed after its end of data was written and before the final reply
 *   (`SmtpDeliveryUnknown`): it may have been delivered.
 *
 * @since 0.2.0
 * @category models
 */
export type BatchOutcome =
  | {
    readonly _tag: "Sent"
    readonly index: number
    readonly refused: RefusedRecipients
    readonly reply: SmtpReply
  }
  | { readonly _tag: "Refused"; readonly index: number; readonly error: SmtpError }
  | { readonly _tag: "NotSent"; readonly index: number; readonly error: SmtpError }
  | { readonly _tag: "Unknown"; readonly index: number; readonly error: SmtpError }

/**
 * The session operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The server's greeting (smtplib's `connect()` return value). */
  readonly greeting: SmtpReply
  /** HELO with `name` or the local host name; the reply is returned whatever its code. */
  readonly helo: (name?: string) => Effect.Effect<SmtpReply, SmtpError>
  /** EHLO (LHLO in LMTP); on 250 the extensions are read. The reply is returned whatever its code. */
  readonly ehlo: (name?: string) => Effect.Effect<SmtpReply, SmtpError>
  /** EHLO, falling back to HELO, unless one was done already; `SmtpHeloError` when both fail. */
  readonly ehloOrHeloIfNeeded: Effect.Effect<void, SmtpError>
  /** Whether the server advertised an extension (case-insensitive). */
  readonly hasExtn: (name: string) => Effect.Effect<boolean>
  /** The parameters of an advertised extension (`"10485760"` for SIZE). */
  readonly extnParams: (name: string) => Effect.Effect<Option.Option<string>>
  /** The extensions from the last EHLO: lower-case keyword to parameters. */
  readonly esmtpFeatures: Effect.Effect<ReadonlyMap<string, string>>
  /** Whether the last EHLO succeeded. */
  readonly doesEsmtp: Effect.Effect<boolean>
  /** The text of the last EHLO reply. */
  readonly ehloResp: Effect.Effect<Option.Option<string>>
  /** The text of the last HELO reply. */
  readonly heloResp: Effect.Effect<Option.Option<string>>
  /** Any command; the reply whatever its code. */
  readonly docmd: (command: string, args?: string) => Effect.Effect<SmtpReply, SmtpError>
  /** NOOP. */
  readonly noop: Effect.Effect<SmtpReply, SmtpError>
  /** RSET: ends the mail transaction. */
  readonly rset: Effect.Effect<SmtpReply, SmtpError>
  /** VRFY. */
  readonly verify: (address: string) => Effect.Effect<SmtpReply, SmtpError>
  /** EXPN. */
  readonly expn: (address: string) => Effect.Effect<SmtpReply, SmtpError>
  /** HELP. */
  readonly help: (args?: string) => Effect.Effect<SmtpReply, SmtpError>
  /** MAIL FROM with ESMTP parameters (sent only to ESMTP servers); the reply whatever its code. */
  readonly mail: (sender: string, options?: ReadonlyArray<string>) => Effect.Effect<SmtpReply, SmtpError>
  /** RCPT TO with ESMTP parameters; the reply whatever its code. */
  readonly rcpt: (recipient: string, options?: ReadonlyArray<string>) => Effect.Effect<SmtpReply, SmtpError>
  /**
   * DATA, then the message (dot-stuffed, ended with `CRLF.CRLF`). `SmtpDataError` if DATA is not
   * answered 354; the reply to the end of data is returned whatever its code.
   */
  readonly data: <E = never, R = never>(message: MessageInput<E, R>) => Effect.Effect<SmtpReply, SmtpError | E, R>
  /**
   * smtplib's `sendmail`: EHLO/HELO if needed, MAIL (with SIZE when advertised), RCPT for each
   * recipient, DATA and the message. With PIPELINING, MAIL, every RCPT and DATA go in one write.
   * Returns the recipients refused; fails with `SmtpSenderRefused`, `SmtpRecipientsRefused` (all
   * refused) or `SmtpDataError`, after an RSET (or closing, on 421).
   */
  readonly sendmail: <E = never, R = never>(
    from: string,
    to: string | ReadonlyArray<string>,
    message: MessageInput<E, R>,
    options?: SendmailOptions
  ) => Effect.Effect<RefusedRecipients, SmtpError | E, R>
  /** What TLS negotiated (protocol, cipher, the server's certificate), when the session is encrypted. */
  readonly tls: Effect.Effect<Option.Option<SmtpTransport.TlsDetails>>
  /**
   * Sends one message and returns what happened to it ({@link SendResult}): `sendmail` (for a
   * `SendInput`) or `sendMessage` (for a `Message`) with the result an application logs. Fails as
   * they do.
   */
  readonly send: <E = never, R = never>(
    message: Message.Message<E, R> | SendInput<E, R>,
    options?: SendMessageOptions
  ) => Effect.Effect<SendResult, SmtpError | E, R>
  /**
   * Sends a sequence of messages with cross-message pipelining (RFC 2920 §3.1): the next message's
   * envelope goes in the same write as the previous message's end of data (one round trip per
   * message with DATA), or, with CHUNKING, every message is written without waiting for the
   * previous one's replies (up to 16 messages per write, a window of 64 messages or 1 MiB). The
   * next flight is written from the reply callback, and a message's data as soon as its 354
   * comes. Returns one outcome per message, in input order, as a Stream pulled on demand (memory
   * stays bounded by the window and 64 outcomes not yet taken, not by the number of messages);
   * while replies are owed, outcomes come in chunks of up to 16. An iterable is read as messages
   * are written, and closed (its `return()`, as `for...of` left by `break`) when the consumer stops
   * before its end; a Stream is pulled chunk by chunk. An item that is not a `BatchItem` (from
   * JavaScript) is `NotSent` with `SmtpInvalidInput`, nothing of it written. One message's refusal never affects another's
   * outcome. Without PIPELINING the messages go one at a time. The session is held for the whole
   * batch: another fiber's operation on this connection waits for the batch to end; one from the
   * fiber consuming the outcomes (the one that last pulled them: the batch waits for it) fails at
   * once with `SmtpInvalidInput` (use another connection for it). One from another fiber the
   * consumer waits for (a `sendBatch` run in the consumer, a `Stream.mapEffect` with concurrency
   * over the outcomes) is not recognised, and waits for itself: run it on another connection.
   */
  readonly sendBatch: <E = never, R = never>(
    items: Iterable<BatchItem> | Stream.Stream<BatchItem, E, R>
  ) => Stream.Stream<BatchOutcome, SmtpError | E, R>
  /**
   * `sendBatch` as one Effect: the messages of an iterable, pipelined across messages as
   * `sendBatch` sends them, and every outcome, in input order, in one array. It fails (an
   * `SmtpError`) only when no message was written: the session could not be greeted (EHLO may
   * have gone out), or the input is not an iterable (a Stream: use `sendBatch`). Cheaper than
   * running `sendBatch`'s Stream (no Stream runs: a Stream costs several ms of CPU the first time a
   * process runs one, and 0.2–1 ms a batch after that), at the cost of holding every outcome until
   * the last message's: for an input of unbounded length, or to act on outcomes as they come, use
   * `sendBatch`. If the iterable throws, the Effect dies (the outcomes of the messages before are
   * lost with it, as with any defect: `sendBatch` emits them first). An item that is not a
   * `BatchItem` (from JavaScript) is `NotSent` with `SmtpInvalidInput`, as in `sendBatch`; an
   * iterable read part of the way (interrupted) is closed (its `return()`), as in `sendBatch`. Called from the fiber consuming a `sendBatch` of the same connection, it
   * fails at once with `SmtpInvalidInput`, as every operation does there.
   *
   * @since 0.2.0
   */
  readonly sendBatchAll: (items: Iterable<BatchItem>) => Effect.Effect<ReadonlyArray<BatchOutcome>, SmtpError>
  /**
   * smtplib's `starttls`: EHLO if needed; `SmtpNotSupportedError` when the server does not
   * advertise STARTTLS; `SmtpResponseException` unless it answers 220; then the TLS handshake
   * (`SmtpTlsError` on failure, and the connection is closed). Afterwards all session knowledge
   * is dropped (extensions, EHLO/HELO replies, authentication) and the next operation EHLOs again.
   * The options default to those given to `connect`.
   */
  readonly starttls: (tls?: SmtpTransport.TlsOptions) => Effect.Effect<SmtpReply, SmtpError>
  /**
   * smtplib's `login`: EHLO if needed; `SmtpNotSupportedError` without AUTH; then the advertised
   * mechanisms in preference order (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN), moving on
   * when one is refused, failing with the last `SmtpAuthenticationError`. PLAIN and LOGIN are not
   * used over an unencrypted connection to a non-loopback host unless `allowInsecure` is set.
   * Credentials that would split a mechanism's fields (a NUL in a PLAIN user name...) skip that
   * mechanism; `SmtpInvalidInput` when no mechanism can carry them, before anything is written.
   */
  readonly login: (
    user: string,
    password: Redacted.Redacted<string>,
    options?: SmtpAuth.LoginOptions
  ) => Effect.Effect<SmtpReply, SmtpError>
  /**
   * OAuth 2.0 (OAUTHBEARER, RFC 7628, or XOAUTH2) with a token from `token`; when the server
   * rejects it, `token` runs once more for a fresh one and the exchange is retried. Not over an
   * unencrypted connection to a non-loopback host unless `allowInsecure`; a user name or token with a
   * control character (^A separates the fields) is `SmtpInvalidInput`.
   */
  readonly loginOAuth2: <E = never, R = never>(
    user: string,
    token: SmtpAuth.TokenProvider<E, R>,
    options?: SmtpAuth.OAuth2Options
  ) => Effect.Effect<SmtpReply, SmtpError | E, R>
  /**
   * smtplib's `auth`: AUTH with any mechanism through an authenticator (challenge in, response
   * out). At most 5 challenges; 235 (or 503, already authenticated) is success. Over an unencrypted
   * connection to a non-loopback host only SCRAM-* and CRAM-MD5 are used without `allowInsecure`;
   * any other mechanism, custom ones included, is `SmtpInvalidInput` before anything is written.
   */
  readonly auth: <E = never, R = never>(
    mechanism: string,
    authenticator: SmtpAuth.Authenticator<E, R>,
    options?: SmtpAuth.AuthOptions
  ) => Effect.Effect<SmtpReply, SmtpError | E, R>
  /** Whether AUTH succeeded on this session (reset by STARTTLS). */
  readonly isAuthenticated: Effect.Effect<boolean>
  /**
   * smtplib's `send_message`: the envelope comes from Sender (else From) and To, Bcc, Cc, or from
   * the one block of Resent-* fields (two blocks: `SmtpInvalidInput`); Bcc and Resent-Bcc are never
   * transmitted; the message goes out with CRLF line endings. When an envelope address is not ASCII,
   * SMTPUTF8 and BODY=8BITMIME are added if the server supports SMTPUTF8, else
   * `SmtpNotSupportedError` before anything is sent. Returns the refused recipients, as `sendmail`.
   */
  readonly sendMessage: <E = never, R = never>(
    message: Message.Message<E, R>,
    options?: SendMessageOptions
  ) => Effect.Effect<RefusedRecipients, SmtpError | E, R>
  /** QUIT, then close. The Scope does this too when it closes. */
  readonly quit: Effect.Effect<SmtpReply, SmtpError>
  /** Closes the socket without QUIT. */
  readonly close: Effect.Effect<void>
  /** Whether the connection is closed. */
  readonly isClosed: Effect.Effect<boolean>
  /** Whether the connection is encrypted (implicit TLS or after STARTTLS). */
  readonly isSecure: Effect.Effect<boolean>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SmtpConnection extends Context.Tag("effect-smtp/SmtpConnection")<SmtpConnection, Service>() {}
