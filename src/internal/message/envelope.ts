/**
 * The envelope of a message, exactly as smtplib's `send_message` derives it, and the arguments
 * of `sendmail` built from a message.
 *
 * CPython (Lib/smtplib.py, `send_message`):
 * - the Resent-* block is chosen by counting `Resent-Date` fields: none, the regular fields;
 *   one, the `Resent-` fields; more, `ValueError` (here `SmtpInvalidInput`), even when `from`
 *   and `to` are given;
 * - the sender is the first address of the (first) `Sender` field when there is one, else of
 *   the (first) `From` field;
 * - the recipients are the addresses of the first `To`, the first `Bcc` and the first `Cc`
 *   field, in that order (CPython reads `msg[name]`, the first field of each name);
 * - explicit `from` / `to` replace what the headers say;
 * - the addresses are getaddresses' (see `envelopeAddresses.ts`): `To: root` is `RCPT TO:<root>`;
 * - the message is sent without Bcc and Resent-Bcc; when an envelope address is not ASCII,
 *   SMTPUTF8 and BODY=8BITMIME are added if the server supports SMTPUTF8, else it is an error.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput, SmtpNotSupportedError } from "../../SmtpError.js"
import { hasLineBreak, isAscii } from "./bytes.js"
import { parseEnvelopeAddresses } from "./envelopeAddresses.js"
import { get, getAll, has } from "./headers.js"
import { headerBytes, needsSmtpUtf8, serializeWith } from "./serialize.js"

/** @internal */
export const envelope = (
  message: Message.Message<any, any>,
  options?: Message.EnvelopeOptions
): Either.Either<Message.Envelope, SmtpInvalidInput> =>
  Either.gen(function*() {
    const headers = message.headers
    const resentCount = getAll(headers, "Resent-Date").length
    if (resentCount > 1) {
      return yield* Either.left(
        new SmtpInvalidInput({
          reason: `The message has ${resentCount} Resent- header blocks (Resent-Date fields); ` +
            "there is no way to tell which is the most recent"
        })
      )
    }
    const prefix = resentCount === 1 ? "Resent-" : ""

    let from: string
    if (options?.from !== undefined) {
      if (typeof options.from !== "string") {
        return yield* Either.left(new SmtpInvalidInput({ reason: "The envelope sender is not a string" }))
      }
      if (hasLineBreak(options.from)) {
        return yield* Either.left(new SmtpInvalidInput({ reason: "CR or LF in the envelope sender" }))
      }
      from = options.from
    } else {
      const field = has(headers, `${prefix}Sender`) ? `${prefix}Sender` : `${prefix}From`
      const value = get(headers, field)
      if (Option.isNone(value)) {
        return yield* Either.left(
          new SmtpInvalidInput({
            reason: `No ${prefix}Sender or ${prefix}From header to take the envelope sender from`
          })
        )
      }
      const first = (yield* parseEnvelopeAddresses(value.value, field))[0]
      if (first === undefined) {
        return yield* Either.left(new SmtpInvalidInput({ reason: `The ${field} header holds no address` }))
      }
      from = first
    }

    let to: Array<string>
    if (options?.to !== undefined) {
      to = typeof options.to === "string" ? [options.to] : [...options.to]
      if (to.some((t) => typeof t !== "string")) {
        return yield* Either.left(new SmtpInvalidInput({ reason: "An envelope recipient is not a string" }))
      }
      if (to.some(hasLineBreak)) {
        return yield* Either.left(new SmtpInvalidInput({ reason: "CR or LF in an envelope recipient" }))
      }
    } else {
      to = []
      for (const name of ["To", "Bcc", "Cc"]) {
        const field = `${prefix}${name}`
        const value = get(headers, field)
        if (Option.isSome(value)) {
          for (const address of yield* parseEnvelopeAddresses(value.value, field)) to.push(address)
        }
      }
    }

    const international = !isAscii(from) || to.some((a) => !isAscii(a))
    return { from, to, international, resent: prefix !== "" }
  })

/** @internal */
export const prepareSend = <E = never, R = never>(
  message: Message.Message<E, R>,
  options: Message.PrepareSendOptions
): Either.Either<Message.PreparedSend<E, R>, SmtpInvalidInput | SmtpNotSupportedError> =>
  Either.gen(function*() {
    const env = yield* envelope(message, options)
    if (env.international && !options.smtpUtf8) {
      return yield* Either.left(
        new SmtpNotSupportedError({
          feature: "SMTPUTF8",
          detail: "One or more source or delivery addresses require internationalized email support, " +
            "but the server does not advertise the required SMTPUTF8 capability"
        })
      )
    }
    const head = yield* headerBytes(message.headers)
    const mailOptions = [...(options.mailOptions ?? [])]
    if (env.international || (options.smtpUtf8 && needsSmtpUtf8(message))) {
      for (const option of ["SMTPUTF8", "BODY=8BITMIME"]) {
        const key = option.split("=")[0]!.toUpperCase()
        if (!mailOptions.some((o) => o.split("=")[0]!.toUpperCase() === key)) mailOptions.push(option)
      }
    }
    return {
      envelope: env,
      from: env.from,
      to: env.to,
      data: serializeWith(head, message.body),
      mailOptions
    }
  })
