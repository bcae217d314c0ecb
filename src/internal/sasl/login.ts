/**
 * The non-standard LOGIN mechanism (draft-murchison-sasl-login): the user name and the password,
 * each in answer to a server prompt ("Username:", "Password:"). The user name may go with AUTH as
 * the initial response, as smtplib sends it. A prompt is answered with what it asks for; an empty or
 * unrecognised prompt by position (the user name first, then the password), as smtplib does.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { fromBase64, fromUtf8Lenient, utf8 } from "./bytes.js"
import * as Fields from "./fields.js"
import type { SaslSession } from "./types.js"

/** The mechanism name. */
export const mechanism = "LOGIN"

/** Credentials for LOGIN. */
export interface Options {
  readonly username: string
  readonly password: string
}

/**
 * Why the credentials cannot be sent with LOGIN, or undefined: no control character in the user
 * name, no NUL in the password (servers read them as C strings).
 */
export const validate = (options: Options): string | undefined =>
  Fields.first(
    Fields.check(mechanism, "user name", options.username, Fields.controls),
    Fields.check(mechanism, "password", options.password, Fields.nul)
  )

const userPrompt = /^user[ _-]?(?:name)?\s*:?$/i
const passwordPrompt = /^pass[ _-]?(?:word)?\s*:?$/i

const classify = (text: string): "user" | "password" | undefined =>
  userPrompt.test(text) ? "user" : passwordPrompt.test(text) ? "password" : undefined

/**
 * What a prompt (the decoded challenge) asks for: "Username:", "User Name", "username" and the like,
 * or "Password:" and the like, case-insensitively, with or without a trailing NUL (aiosmtpd sends
 * "User Name\0" and "Password\0"), also when base64-encoded a second time (some servers do);
 * undefined when it is empty or says something else.
 */
export const prompt = (challenge: Uint8Array): "user" | "password" | undefined => {
  const text = clean(challenge)
  const direct = classify(text)
  if (direct !== undefined || text === "") return direct
  const inner = fromBase64(text)
  return inner === undefined ? undefined : classify(clean(inner))
}

/** The prompt's text without surrounding white space and trailing NULs (aiosmtpd's default prompts end in one). */
const clean = (bytes: Uint8Array): string => fromUtf8Lenient(bytes).replace(/[\s\u0000]+$/, "").trim()

/**
 * Starts a LOGIN exchange; Left when `validate` refuses the credentials. The initial response is the
 * user name. The user name is given at most twice (a server may ignore the initial response and ask
 * again), the password once; a challenge after both were given aborts.
 */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const invalid = validate(options)
  if (invalid !== undefined) return Either.left(invalid)
  let userAnswers = 0
  let passwordSent = false
  const user = () => {
    userAnswers++
    return utf8(options.username)
  }
  return Either.right({
    initial: user,
    respond: (challenge) =>
      Effect.suspend(() => {
        if (passwordSent && userAnswers > 0) {
          return Effect.fail(
            "LOGIN: unexpected server challenge after the password (the user name and the password were both sent)"
          )
        }
        const asked = prompt(challenge) ?? (userAnswers === 0 ? "user" : "password")
        if (asked === "user") {
          if (userAnswers >= 2) return Effect.fail("LOGIN: the server asked for the user name a third time")
          return Effect.succeed(user())
        }
        if (passwordSent) return Effect.fail("LOGIN: the server asked for the password again (it is not sent twice)")
        passwordSent = true
        return Effect.succeed(utf8(options.password))
      }),
    complete: () => Either.void,
    serverError: () => undefined
  })
}
