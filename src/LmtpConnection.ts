/**
 * An LMTP session (RFC 2033): the operations of an SMTP session, but `sendmail` and
 * `sendMessage` report a result for every recipient, because an LMTP server answers the end of
 * data once per accepted recipient (smtplib's `LMTP` reads only the first of those replies).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Message from "./Message.js"
import type * as SmtpConnection from "./SmtpConnection.js"
import type { SmtpError } from "./SmtpError.js"
import type { SmtpReply } from "./SmtpReply.js"

/**
 * What happened to one recipient.
 *
 * - `delivered`: the server accepted the message for it (`reply` is its reply after the data);
 * - `refused`: refused at RCPT (`stage: "rcpt"`) or after the data (`stage: "data"`);
 * - `unknown`: the connection closed or timed out before its reply after the data came. The
 *   message may or may not have been delivered: never assume it was.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecipientResult {
  readonly recipient: string
  readonly status: "delivered" | "refused" | "unknown"
  readonly stage: "rcpt" | "data"
  readonly reply: SmtpReply | undefined
}

/**
 * The outcome of an LMTP transaction, recipient by recipient in the order given.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivery {
  readonly recipients: ReadonlyArray<RecipientResult>
  /** Recipients delivered, with the reply after the data. */
  readonly delivered: Readonly<Record<string, SmtpReply>>
  /** Recipients refused at RCPT or after the data (smtplib's `sendmail` record, made complete). */
  readonly refused: SmtpConnection.RefusedRecipients
  /** Recipients whose reply after the data never came. */
  readonly unknown: ReadonlyArray<string>
  /** Why some replies never came. */
  readonly interruption: SmtpError | undefined
}

/**
 * The LMTP session operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service
  extends Omit<SmtpConnection.Service, "sendmail" | "sendMessage" | "sendBatch" | "sendBatchAll" | "send">
{
  /**
   * MAIL, RCPT for each recipient, DATA (or BDAT) and the message, then one reply per accepted
   * recipient. Fails with `SmtpSenderRefused`, `SmtpDataError` (DATA refused), or
   * `SmtpRecipientsRefused` when every recipient was refused (at RCPT or after the data);
   * otherwise returns the per-recipient `Delivery`.
   */
  readonly sendmail: <E = never, R = never>(
    from: string,
    to: string | ReadonlyArray<string>,
    message: SmtpConnection.MessageInput<E, R>,
    options?: SmtpConnection.SendmailOptions
  ) => Effect.Effect<Delivery, SmtpError | E, R>
  /** `sendMessage` with the envelope rules of smtplib's `send_message`, per-recipient results. */
  readonly sendMessage: <E = never, R = never>(
    message: Message.Message<E, R>,
    options?: SmtpConnection.SendMessageOptions
  ) => Effect.Effect<Delivery, SmtpError | E, R>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class LmtpConnection extends Context.Tag("effect-smtp/LmtpConnection")<LmtpConnection, Service>() {}
