/**
 * SASL client mechanisms for SMTP AUTH (RFC 4954): pure byte exchanges, base64 is the caller's job.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as CramMd5 from "./cramMd5.js"
import * as Login from "./login.js"
import * as Plain from "./plain.js"
import * as Scram from "./scram.js"
import type { SaslSession } from "./types.js"

export * as CramMd5 from "./cramMd5.js"
export * as Fields from "./fields.js"
export * as Login from "./login.js"
export * as OAuthBearer from "./oauthBearer.js"
export * as Plain from "./plain.js"
export * as Scram from "./scram.js"
export type { OAuthError, SaslSession } from "./types.js"
export * as XOAuth2 from "./xoauth2.js"

/** The password mechanisms in the order `login` tries them when several are advertised, strongest first. */
export const preferenceOrder: ReadonlyArray<string> = ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"]

/**
 * The advertised mechanisms that appear in `order`, in that order, without duplicates. Matching is
 * case-insensitive; names are returned as spelled in `order`.
 */
export const choose = (
  advertised: ReadonlyArray<string>,
  order: ReadonlyArray<string> = preferenceOrder
): ReadonlyArray<string> => {
  const offered = new Set(advertised.map((name) => name.toUpperCase()))
  const chosen: Array<string> = []
  for (const name of order) {
    const upper = name.toUpperCase()
    if (offered.has(upper) && !chosen.some((c) => c.toUpperCase() === upper)) chosen.push(name)
  }
  return chosen
}

/** Password credentials for `forPassword`. */
export interface PasswordOptions {
  readonly username: string
  readonly password: string
  /** Identity to act as; only PLAIN and SCRAM can carry it. */
  readonly authzid?: string | undefined
}

/** Whether `forPassword` knows the mechanism (case-insensitive). */
export const isPasswordMechanism = (mechanism: string): boolean => preferenceOrder.includes(mechanism.toUpperCase())

/**
 * Whether a mechanism is known not to send a reusable secret in clear: the challenge-response ones,
 * SCRAM-* and CRAM-MD5. Every other name, known (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER) or not (a custom
 * mechanism), is treated as sending its credentials in clear.
 */
export const isSafeInClear = (mechanism: string): boolean => {
  const name = mechanism.toUpperCase()
  return name === CramMd5.mechanism || name.startsWith("SCRAM-")
}

/**
 * Starts a password exchange for a mechanism name (case-insensitive). Left for a mechanism that is
 * not a password mechanism, for an authzid with LOGIN or CRAM-MD5 (they cannot carry one), and for
 * credentials the mechanism cannot carry (a value that would split its fields, or that SCRAM's
 * SASLprep rejects): the reason names the field, never its value.
 */
export const forPassword = (mechanism: string, options: PasswordOptions): Either.Either<SaslSession, string> => {
  const name = mechanism.toUpperCase()
  const hasAuthzid = options.authzid !== undefined && options.authzid !== ""
  switch (name) {
    case Scram.mechanisms["SHA-256"]:
      return Scram.make({ hash: "SHA-256", ...options })
    case Scram.mechanisms["SHA-1"]:
      return Scram.make({ hash: "SHA-1", ...options })
    case Plain.mechanism:
      return Plain.make(options)
    case CramMd5.mechanism:
    case Login.mechanism:
      return hasAuthzid
        ? Either.left(`${name} cannot carry an authorization identity (authzid)`)
        : name === Login.mechanism
        ? Login.make(options)
        : CramMd5.make(options)
    default:
      return Either.left(`unsupported SASL mechanism for password authentication: ${name}`)
  }
}
