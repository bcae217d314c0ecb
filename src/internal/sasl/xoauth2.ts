/**
 * Google's XOAUTH2: `user=<user>^Aauth=Bearer <token>^A^A` as the initial response. A challenge is the
 * server's error JSON; it is recorded and answered with an empty response so the server ends with 535.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { empty, utf8 } from "./bytes.js"
import * as Fields from "./fields.js"
import { parseOAuthError } from "./oauthError.js"
import type { OAuthError, SaslSession } from "./types.js"

/** The mechanism name. */
export const mechanism = "XOAUTH2"

/** Credentials for XOAUTH2: the user and an OAuth 2.0 access token. */
export interface Options {
  readonly username: string
  readonly token: string
}

/**
 * Why the user name cannot be sent, or undefined: ^A separates XOAUTH2's fields, and no control
 * character belongs in a user name. Checkable before a token is fetched.
 */
export const validateIdentity = (options: Pick<Options, "username">): string | undefined =>
  Fields.check(mechanism, "user name", options.username, Fields.controls, "\u0001")

/** Why the credentials cannot be sent, or undefined: `validateIdentity`, and no control character in the token. */
export const validate = (options: Options): string | undefined =>
  Fields.first(
    validateIdentity(options),
    Fields.check(mechanism, "token", options.token, Fields.controls, "\u0001")
  )

/** Starts an XOAUTH2 exchange; Left when `validate` refuses the credentials. */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const invalid = validate(options)
  if (invalid !== undefined) return Either.left(invalid)
  const message = () => utf8(`user=${options.username}\u0001auth=Bearer ${options.token}\u0001\u0001`)
  let sent = false
  let error: OAuthError | undefined = undefined
  return Either.right({
    initial: () => {
      sent = true
      return message()
    },
    respond: (challenge) =>
      Effect.suspend(() => {
        if (!sent && challenge.length === 0) {
          sent = true
          return Effect.succeed(message())
        }
        if (error !== undefined) return Effect.fail("XOAUTH2: unexpected server challenge after the error")
        error = parseOAuthError(challenge)
        return Effect.succeed(empty())
      }),
    complete: () => Either.void,
    serverError: () => error
  })
}
