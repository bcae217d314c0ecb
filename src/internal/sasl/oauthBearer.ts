/**
 * OAUTHBEARER (RFC 7628): a GS2 header then `host`, `port` and `auth` key/value pairs separated by ^A.
 * An error challenge (JSON, §3.2.2) is recorded and answered with a single 0x01 (§3.2.3).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { escapeSaslName, utf8 } from "./bytes.js"
import * as Fields from "./fields.js"
import { parseOAuthError } from "./oauthError.js"
import type { OAuthError, SaslSession } from "./types.js"

/** The mechanism name. */
export const mechanism = "OAUTHBEARER"

/** Credentials for OAUTHBEARER: the user (sent as the GS2 authzid), the bearer token, and optionally the server. */
export interface Options {
  readonly username: string
  readonly token: string
  readonly host?: string | undefined
  readonly port?: number | undefined
}

/**
 * Why the user name or host cannot be sent, or undefined: ^A separates the key/value pairs and no
 * control character belongs in either (`,` and `=` in the user name are escaped as =2C and =3D, RFC
 * 5801's saslname). Checkable before a token is fetched.
 */
export const validateIdentity = (options: Omit<Options, "token">): string | undefined =>
  Fields.first(
    Fields.check(mechanism, "user name", options.username, Fields.controls, "\u0001"),
    Fields.check(mechanism, "host", options.host ?? "", Fields.controls, "\u0001")
  )

/** Why the credentials cannot be sent, or undefined: `validateIdentity`, and no control character in the token. */
export const validate = (options: Options): string | undefined =>
  Fields.first(
    validateIdentity(options),
    Fields.check(mechanism, "token", options.token, Fields.controls, "\u0001")
  )

/** The client initial response of RFC 7628 §3.1 (for credentials `validate` accepts). */
export const initialResponse = (options: Options): string =>
  `n,a=${escapeSaslName(options.username)},\u0001` +
  (options.host !== undefined ? `host=${options.host}\u0001` : "") +
  (options.port !== undefined ? `port=${options.port}\u0001` : "") +
  `auth=Bearer ${options.token}\u0001\u0001`

/** Starts an OAUTHBEARER exchange; Left when `validate` refuses the credentials. */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const invalid = validate(options)
  if (invalid !== undefined) return Either.left(invalid)
  let sent = false
  let error: OAuthError | undefined = undefined
  return Either.right({
    initial: () => {
      sent = true
      return utf8(initialResponse(options))
    },
    respond: (challenge) =>
      Effect.suspend(() => {
        if (!sent && challenge.length === 0) {
          sent = true
          return Effect.succeed(utf8(initialResponse(options)))
        }
        if (error !== undefined) return Effect.fail("OAUTHBEARER: unexpected server challenge after the error")
        error = parseOAuthError(challenge)
        return Effect.succeed(Uint8Array.of(1))
      }),
    complete: () => Either.void,
    serverError: () => error
  })
}
