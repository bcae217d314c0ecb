/**
 * OAUTHBEARER (RFC 7628): a GS2 header then `host`, `port` and `auth` key/value pairs separated by ^A.
 * An error challenge (JSON, §3.2.2) is recorded and answered with a single 0x01 (§3.2.3).
 *
 * @internal
 */
import * as Either from "effect/Either"
import { escapeSaslName, utf8 } from "./bytes.js"
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

/** The client initial response of RFC 7628 §3.1. */
export const initialResponse = (options: Options): string =>
  `n,a=${escapeSaslName(options.username)},\u0001` +
  (options.host !== undefined ? `host=${options.host}\u0001` : "") +
  (options.port !== undefined ? `port=${options.port}\u0001` : "") +
  `auth=Bearer ${options.token}\u0001\u0001`

/** Starts an OAUTHBEARER exchange. */
export const make = (options: Options): SaslSession => {
  let sent = false
  let error: OAuthError | undefined = undefined
  return {
    initial: () => {
      sent = true
      return utf8(initialResponse(options))
    },
    respond: (challenge) => {
      if (!sent && challenge.length === 0) {
        sent = true
        return Either.right(utf8(initialResponse(options)))
      }
      if (error !== undefined) return Either.left("OAUTHBEARER: unexpected server challenge after the error")
      error = parseOAuthError(challenge)
      return Either.right(Uint8Array.of(1))
    },
    complete: () => Either.void,
    serverError: () => error
  }
}
