/**
 * SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`, sent as the initial response.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { utf8 } from "./bytes.js"
import * as Fields from "./fields.js"
import type { SaslSession } from "./types.js"

/** The mechanism name. */
export const mechanism = "PLAIN"

/** Credentials for PLAIN. `authzid` is the identity to act as (empty: the authenticated user). */
export interface Options {
  readonly username: string
  readonly password: string
  readonly authzid?: string | undefined
}

/**
 * Why the credentials cannot be sent with PLAIN, or undefined: NUL separates PLAIN's fields (RFC 4616
 * UTF8SAFE excludes it), and the user name and authzid may hold no control character at all.
 */
export const validate = (options: Options): string | undefined =>
  Fields.first(
    Fields.check(mechanism, "user name", options.username, Fields.controls, "\u0000"),
    Fields.check(mechanism, "authzid", options.authzid ?? "", Fields.controls, "\u0000"),
    Fields.check(mechanism, "password", options.password, Fields.nul, "\u0000")
  )

/**
 * Starts a PLAIN exchange; Left when `validate` refuses the credentials. When the caller did not send
 * the initial response with AUTH, the server's empty challenge is answered with it (RFC 4954 §4); any
 * other challenge aborts (the caller cancels the exchange with `*`).
 */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const invalid = validate(options)
  if (invalid !== undefined) return Either.left(invalid)
  const message = () => utf8(`${options.authzid ?? ""}\u0000${options.username}\u0000${options.password}`)
  let sent = false
  return Either.right({
    initial: () => {
      sent = true
      return message()
    },
    respond: (challenge) =>
      Effect.suspend(() => {
        if (sent) {
          return Effect.fail("PLAIN: the server sent a challenge after the initial response (expected 235 or an error)")
        }
        if (challenge.length > 0) return Effect.fail("PLAIN: the server's first challenge is not empty")
        sent = true
        return Effect.succeed(message())
      }),
    complete: () => Either.void,
    serverError: () => undefined
  })
}
