/**
 * Exit codes and the one-line failure every command ends with: a `CliFailure` carries the code
 * and the line; `fromSmtpError` maps the library's errors to the code of their kind.
 *
 * @internal
 */
import * as Data from "effect/Data"
import type { SmtpError } from "../SmtpError.js"

/** The exit codes, documented in `effect-smtp --help`. */
export const ExitCode = {
  ok: 0,
  /** Some recipients or items were refused or failed; the rest went through. */
  partial: 1,
  /** Bad input: an unknown flag, a bad address, a missing file, a malformed CSV line. */
  usage: 2,
  /** The server could not be reached (refused, timed out, closed before the greeting). */
  unreachable: 3,
  /** TLS failed: no STARTTLS where required, handshake, certificate or host name. */
  tls: 4,
  /** The login was refused. */
  auth: 5,
  /** The server refused the message (sender, every recipient, the data) or broke the protocol. */
  refused: 6,
  /** The end of the data was sent and no final reply came: the message may have been delivered. */
  unknown: 7,
  /** Interrupted (Ctrl-C). */
  interrupted: 130
} as const

/** The exit codes as `--help` shows them. */
export const exitCodesHelp = [
  "Exit codes: 0 ok; 1 partly refused/failed; 2 bad input; 3 unreachable; 4 TLS failure",
  "(handshake, certificate, host name, no STARTTLS); 5 login refused; 6 refused by the server or",
  "protocol error; 7 delivery unknown (may have been delivered); 130 interrupted."
].join(" ")

/** A command's end: a one-line message and the exit code. */
export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly code: number
  readonly message: string
}> {}

/** Bad input: exit code 2. */
export const usage = (message: string): CliFailure => new CliFailure({ code: ExitCode.usage, message })

/** The exit code of a library error's kind. */
export const codeOf = (error: SmtpError): number => {
  switch (error._tag) {
    case "SmtpConnectError":
      // a connection made and a greeting that refuses is the server refusing, not unreachable
      return error.code === undefined ? ExitCode.unreachable : ExitCode.refused
    case "SmtpTimeout":
      return /connect|greeting/i.test(error.phase) ? ExitCode.unreachable : ExitCode.refused
    case "SmtpTlsError":
      return ExitCode.tls
    case "SmtpAuthenticationError":
      return ExitCode.auth
    case "SmtpInvalidInput":
      return ExitCode.usage
    case "SmtpDeliveryUnknown":
      return ExitCode.unknown
    default:
      return ExitCode.refused
  }
}

/** One line, whatever the error: its message with line breaks folded. */
export const oneLine = (text: string): string => text.trim().replace(/\s*[\r\n]+\s*/g, " / ")

const hint = (error: SmtpError): string => {
  if (error._tag !== "SmtpTlsError") return ""
  if (error.reason === "untrusted") return " (--ca FILE trusts its CA; --insecure skips the check)"
  if (error.reason === "hostname-mismatch") {
    return " (--servername NAME checks another name; --insecure skips the check)"
  }
  return ""
}

/** A library error as a `CliFailure`, with a hint for the TLS failures a flag can address. */
export const fromSmtpError = (error: SmtpError, prefix?: string): CliFailure =>
  new CliFailure({
    code: codeOf(error),
    message: oneLine(`${prefix === undefined ? "" : `${prefix}: `}${error.message}${hint(error)}`)
  })
