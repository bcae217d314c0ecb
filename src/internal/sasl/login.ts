/**
 * The non-standard LOGIN mechanism: the first challenge ("Username:") gets the username, the second
 * ("Password:") the password. Prompts vary between servers, so only their order counts.
 *
 * @internal
 */
import * as Either from "effect/Either"
import { utf8 } from "./bytes.js"
import type { SaslSession } from "./types.js"

/** The mechanism name. */
export const mechanism = "LOGIN"

/** Credentials for LOGIN. */
export interface Options {
  readonly username: string
  readonly password: string
}

/** Starts a LOGIN exchange (no initial response). A third challenge aborts. */
export const make = (options: Options): SaslSession => {
  let challenges = 0
  return {
    initial: () => undefined,
    respond: (_challenge) => {
      challenges++
      if (challenges === 1) return Either.right(utf8(options.username))
      if (challenges === 2) return Either.right(utf8(options.password))
      return Either.left("LOGIN: unexpected third server challenge")
    },
    complete: () => Either.void,
    serverError: () => undefined
  }
}
