/**
 * CRAM-MD5 (RFC 2195): the response to the server's challenge is `username SP hex(HMAC-MD5(password, challenge))`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { toHex, utf8 } from "./bytes.js"
import * as Fields from "./fields.js"
import { hmacMd5 } from "./md5.js"
import type { SaslSession } from "./types.js"

/** The mechanism name. */
export const mechanism = "CRAM-MD5"

/** Credentials for CRAM-MD5. */
export interface Options {
  readonly username: string
  readonly password: string
}

/**
 * Why the credentials cannot be used with CRAM-MD5, or undefined: the user name may hold no space (it
 * separates the user name from the digest) and no control character; the password no NUL.
 */
export const validate = (options: Options): string | undefined =>
  Fields.first(
    Fields.check(mechanism, "user name", options.username, /[\u0000-\u0020\u007f]/, " "),
    Fields.check(mechanism, "password", options.password, Fields.nul)
  )

/**
 * Starts a CRAM-MD5 exchange (no initial response); Left when `validate` refuses the credentials. An
 * empty or a second challenge aborts.
 */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const invalid = validate(options)
  if (invalid !== undefined) return Either.left(invalid)
  let answered = false
  return Either.right({
    initial: () => undefined,
    respond: (challenge) =>
      Effect.suspend(() => {
        if (answered) return Effect.fail("CRAM-MD5: unexpected second server challenge")
        if (challenge.length === 0) return Effect.fail("CRAM-MD5: empty server challenge")
        answered = true
        const digest = toHex(hmacMd5(utf8(options.password), challenge))
        return Effect.succeed(utf8(`${options.username} ${digest}`))
      }),
    complete: () => Either.void,
    serverError: () => undefined
  })
}
