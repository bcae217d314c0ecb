/**
 * SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`, sent as the initial response.
 *
 * @internal
 */
import * as Either from "effect/Either"
import { utf8 } from "./bytes.js"
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
 * Starts a PLAIN exchange. When the caller did not send the initial response with AUTH, the server's
 * empty challenge is answered with it (RFC 4954 §4); any other challenge aborts.
 */
export const make = (options: Options): SaslSession => {
  const message = () => utf8(`${options.authzid ?? ""}\u0000${options.username}\u0000${options.password}`)
  let sent = false
  return {
    initial: () => {
      sent = true
      return message()
    },
    respond: (challenge) => {
      if (sent || challenge.length > 0) return Either.left("PLAIN: unexpected server challenge")
      sent = true
      return Either.right(message())
    },
    complete: () => Either.void,
    serverError: () => undefined
  }
}
