/**
 * The MAIL and RCPT parameters built from typed options: DSN (RFC 3461, with RFC 6533's UTF-8
 * ORCPT), REQUIRETLS (RFC 8689), and the SIZE check of RFC 1870 §6. Pure: the session asks it
 * for the parameters, with what the server advertised and whether the session is encrypted.
 *
 * @internal
 */
import * as Either from "effect/Either"
import type * as SmtpConnection from "../SmtpConnection.js"
import { SmtpInvalidInput, SmtpMessageTooLarge, SmtpNotSupportedError } from "../SmtpError.js"

/** What the server said and the session is, as far as the parameters care. */
export interface ServerState {
  readonly has: (extension: string) => boolean
  /** The SIZE limit the server advertised; undefined or 0 when none. */
  readonly sizeLimit: number | undefined
  readonly secure: boolean
}

/**
 * RFC 3461 §4 xtext: printable ASCII but "+" and "=" as it is, everything else as "+HH". Only
 * ASCII input is meaningful (the callers check).
 */
export const xtext = (text: string): string => {
  let out = ""
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    out += c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d ?
      text[i] :
      `+${c.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out
}

/**
 * RFC 6533 §3 utf-8-addr-xtext, for an ORCPT of an address that is not ASCII: printable ASCII but
 * "+", "=" and "\" as it is, every other character as `\x{HEX}` of its code point.
 */
export const utf8AddrXtext = (text: string): string => {
  let out = ""
  for (const ch of text) {
    const c = ch.codePointAt(0)!
    out += c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d && c !== 0x5c ?
      ch :
      `\\x{${c.toString(16).toUpperCase()}}`
  }
  return out
}

const printableAscii = /^[\x20-\x7e]*$/
const isAscii = (text: string) => /^[\x00-\x7f]*$/.test(text)

const invalid = (reason: string) => Either.left(new SmtpInvalidInput({ reason }))

/** The ORCPT value of a recipient: `rfc822;` + xtext, or `utf-8;` + utf-8-addr-xtext when not ASCII. */
export const orcpt = (address: string): string =>
  isAscii(address) ? `rfc822;${xtext(address)}` : `utf-8;${utf8AddrXtext(address)}`

/** What the options add to MAIL and to each RCPT, in order; checked before anything is written. */
export interface Params {
  readonly mail: ReadonlyArray<string>
  readonly rcpt: (recipient: string) => ReadonlyArray<string>
}

const noRcptParams = (): ReadonlyArray<string> => none
const none: ReadonlyArray<string> = []
/** No REQUIRETLS and no DSN: nothing to add (the common case, made once). */
const noneChecked: Either.Either<Params, never> = Either.right({ mail: none, rcpt: noRcptParams })

/**
 * The DSN and REQUIRETLS parameters of a transaction, and the SIZE check: a failure (nothing
 * written) when an option needs an extension the server lacks, when the session is not
 * encrypted for REQUIRETLS, or when the message is known to be larger than the server takes.
 */
export const params = (
  options: SmtpConnection.SendmailOptions | undefined,
  size: number | undefined,
  server: ServerState
): Either.Either<Params, SmtpInvalidInput | SmtpNotSupportedError | SmtpMessageTooLarge> => {
  if (size !== undefined && server.sizeLimit !== undefined && server.sizeLimit > 0 && size > server.sizeLimit) {
    return Either.left(new SmtpMessageTooLarge({ size, limit: server.sizeLimit }))
  }
  const dsn = options?.dsn
  if (dsn === undefined && options?.requireTls !== true) return noneChecked
  const mail: Array<string> = []
  if (options?.requireTls === true) {
    if (!server.secure) {
      return Either.left(
        new SmtpNotSupportedError({ feature: "REQUIRETLS", detail: "REQUIRETLS needs a session encrypted with TLS" })
      )
    }
    if (!server.has("requiretls")) {
      return Either.left(
        new SmtpNotSupportedError({ feature: "REQUIRETLS", detail: "the server does not advertise REQUIRETLS" })
      )
    }
    mail.push("REQUIRETLS")
  }
  if (dsn === undefined) return Either.right({ mail, rcpt: noRcptParams })
  if (!server.has("dsn")) {
    if (dsn.ifUnsupported === "drop") return Either.right({ mail, rcpt: noRcptParams })
    return Either.left(
      new SmtpNotSupportedError({
        feature: "DSN",
        detail: "the server does not advertise DSN (set dsn.ifUnsupported: \"drop\" to send without it)"
      })
    )
  }
  if (dsn.ret !== undefined) mail.push(`RET=${dsn.ret}`)
  if (dsn.envid !== undefined) {
    if (dsn.envid.length === 0 || dsn.envid.length > 100 || !printableAscii.test(dsn.envid)) {
      return invalid("dsn.envid must be 1 to 100 printable ASCII characters (RFC 3461 §4.4)")
    }
    mail.push(`ENVID=${xtext(dsn.envid)}`)
  }
  let notify: string | undefined
  if (dsn.notify !== undefined) {
    if (dsn.notify === "NEVER") {
      notify = "NEVER"
    } else {
      const events = [...new Set(dsn.notify)]
      if (events.length === 0) return invalid("dsn.notify must be \"NEVER\" or at least one of SUCCESS, FAILURE, DELAY")
      notify = events.join(",")
    }
  }
  const original = dsn.orcpt
  const rcpt = (recipient: string): ReadonlyArray<string> => {
    const out: Array<string> = []
    if (notify !== undefined) out.push(`NOTIFY=${notify}`)
    if (original === true) out.push(`ORCPT=${orcpt(recipient)}`)
    else if (original !== undefined && original !== false) {
      const given = original[recipient]
      if (given !== undefined) out.push(`ORCPT=${orcpt(given)}`)
    }
    return out
  }
  return Either.right({ mail, rcpt })
}
