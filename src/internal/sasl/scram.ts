/**
 * SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), without channel binding (GS2 header `n,,`).
 * The server is authenticated too: `complete` fails unless its signature was received and verified.
 * The proof is computed with Web Crypto (`crypto.subtle`: PBKDF2, HMAC, digest), present in every
 * runtime the library targets.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import {
  empty,
  escapeSaslName,
  fromBase64,
  fromUtf8,
  quote,
  randomNonce,
  timingSafeEqual,
  toBase64,
  utf8
} from "./bytes.js"
import * as Fields from "./fields.js"
import { saslprep } from "./saslprep.js"
import type { SaslSession } from "./types.js"

/** The hash functions SCRAM is defined for here. */
export type Hash = "SHA-1" | "SHA-256"

/** The mechanism name for each hash. */
export const mechanisms = { "SHA-1": "SCRAM-SHA-1", "SHA-256": "SCRAM-SHA-256" } as const

/** Options for a SCRAM exchange. */
export interface Options {
  readonly hash: Hash
  readonly username: string
  readonly password: string
  /** Identity to act as (GS2 `a=`); omitted: the authenticated user. */
  readonly authzid?: string | undefined
  /** The client nonce (printable ASCII without ","); random by default. For tests. */
  readonly nonce?: string | undefined
  /** The lowest iteration count accepted from the server (default 4096, RFC 5802 §5.1 / RFC 7677 §4). */
  readonly minIterations?: number | undefined
  /** The highest iteration count accepted, so a server cannot stall the client (default 1,000,000). */
  readonly maxIterations?: number | undefined
}

/** The digest length of each hash in bits (the PBKDF2 output length, RFC 5802 §2.2 `Hi`). */
const bits = { "SHA-1": 160, "SHA-256": 256 } as const
const nonceSyntax = /^[\x21-\x2b\x2d-\x7e]+$/
const iterationSyntax = /^[1-9][0-9]{0,9}$/

const prepare = (text: string, mode: "query" | "stored"): string | undefined =>
  Either.getOrUndefined(saslprep(text, mode))

/** Splits `a=v,b=w` into attribute pairs; undefined when an item is not `letter=value`. */
const attributes = (message: string): Array<readonly [string, string]> | undefined => {
  const pairs: Array<readonly [string, string]> = []
  for (const item of message.split(",")) {
    if (!/^[A-Za-z]=/.test(item)) return undefined
    pairs.push([item[0], item.slice(2)])
  }
  return pairs
}

const xor = (a: Uint8Array, b: Uint8Array): Uint8Array => a.map((byte, i) => byte ^ b[i])

/**
 * The client proof and the expected server signature (RFC 5802 §3) with Web Crypto. Rejects when
 * `crypto.subtle` is missing or refuses an operation.
 */
const computeProof = async (
  hash: Hash,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  authMessage: Uint8Array
): Promise<{ readonly clientProof: Uint8Array; readonly serverSignature: Uint8Array }> => {
  const subtle = globalThis.crypto.subtle
  const hmac = async (key: Uint8Array, data: Uint8Array) =>
    new Uint8Array(
      await subtle.sign("HMAC", await subtle.importKey("raw", key, { name: "HMAC", hash }, false, ["sign"]), data)
    )
  const passwordKey = await subtle.importKey("raw", password, "PBKDF2", false, ["deriveBits"])
  const saltedPassword = new Uint8Array(
    await subtle.deriveBits({ name: "PBKDF2", hash, salt, iterations }, passwordKey, bits[hash])
  )
  const [clientKey, serverKey] = await Promise.all([
    hmac(saltedPassword, utf8("Client Key")),
    hmac(saltedPassword, utf8("Server Key"))
  ])
  const storedKey = new Uint8Array(await subtle.digest(hash, clientKey))
  const [clientSignature, serverSignature] = await Promise.all([
    hmac(storedKey, authMessage),
    hmac(serverKey, authMessage)
  ])
  return { clientProof: xor(clientKey, clientSignature), serverSignature }
}

/**
 * Starts a SCRAM exchange. Left when the user name or password is rejected by SASLprep (RFC 4013),
 * the authzid holds a control character, or the supplied nonce is invalid. The server-first message
 * is checked (nonce extends ours, base64 salt, iteration count within bounds, no mandatory
 * extension) before the proof is computed.
 */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const name = mechanisms[options.hash]
  const minIterations = options.minIterations ?? 4096
  const maxIterations = options.maxIterations ?? 1_000_000
  const username = prepare(options.username, "query")
  if (username === undefined) return Either.left(`${name}: the user name is not valid under SASLprep (RFC 4013)`)
  const password = prepare(options.password, "stored")
  if (password === undefined) return Either.left(`${name}: the password is not valid under SASLprep (RFC 4013)`)
  // the authzid is not SASLprep'd: "," and "=" are escaped below, control characters are refused here
  const authzid = Fields.check(name, "authzid", options.authzid ?? "", Fields.controls)
  if (authzid !== undefined) return Either.left(authzid)
  const nonce = options.nonce ?? randomNonce()
  if (!nonceSyntax.test(nonce)) return Either.left(`${name}: invalid client nonce`)

  const gs2Header = options.authzid !== undefined && options.authzid !== ""
    ? `n,a=${escapeSaslName(options.authzid)},`
    : "n,,"
  const clientFirstBare = `n=${escapeSaslName(username)},r=${nonce}`
  let state: "start" | "first" | "final" | "done" | "failed" = "start"
  let serverSignature: Uint8Array | undefined = undefined

  const fail = (reason: string): Effect.Effect<never, string> => {
    state = "failed"
    return Effect.fail(`${name}: ${reason}`)
  }

  const clientFinal = (serverFirst: string): Effect.Effect<Uint8Array, string> => {
    const attrs = attributes(serverFirst)
    if (attrs === undefined) return fail("malformed server-first-message")
    if (attrs[0][0] === "m") return fail("server requires an unsupported mandatory extension")
    if (attrs[0][0] === "e") return fail(`server error: ${quote(attrs[0][1])}`)
    if (attrs.length < 3 || attrs[0][0] !== "r" || attrs[1][0] !== "s" || attrs[2][0] !== "i") {
      return fail("malformed server-first-message")
    }
    const [[, serverNonce], [, saltText], [, iterationText]] = attrs
    if (!serverNonce.startsWith(nonce) || serverNonce.length === nonce.length || !nonceSyntax.test(serverNonce)) {
      return fail("server nonce does not extend the client nonce")
    }
    const salt = fromBase64(saltText)
    if (salt === undefined || salt.length === 0) return fail("invalid salt in server-first-message")
    if (!iterationSyntax.test(iterationText)) return fail("invalid iteration count in server-first-message")
    const iterations = Number(iterationText)
    if (iterations < minIterations) return fail(`iteration count ${iterations} is below the minimum ${minIterations}`)
    if (iterations > maxIterations) return fail(`iteration count ${iterations} is above the maximum ${maxIterations}`)

    const withoutProof = `c=${toBase64(utf8(gs2Header))},r=${serverNonce}`
    const authMessage = utf8(`${clientFirstBare},${serverFirst},${withoutProof}`)
    return Effect.tryPromise({
      try: () => computeProof(options.hash, utf8(password), salt, iterations, authMessage),
      // the error's name only (NotSupportedError, OperationError, TypeError when there is no crypto.subtle)
      catch: (error) =>
        `Web Crypto could not compute the proof (${quote(error instanceof Error ? error.name : "error")})`
    }).pipe(
      Effect.matchEffect({
        onFailure: fail,
        onSuccess: (proof) => {
          serverSignature = proof.serverSignature
          state = "final"
          return Effect.succeed(utf8(`${withoutProof},p=${toBase64(proof.clientProof)}`))
        }
      })
    )
  }

  const verify = (serverFinal: string): Effect.Effect<Uint8Array, string> => {
    const attrs = attributes(serverFinal)
    if (attrs === undefined) return fail("malformed server-final-message")
    if (attrs[0][0] === "e") return fail(`server error: ${quote(attrs[0][1])}`)
    if (attrs[0][0] !== "v") return fail("malformed server-final-message")
    const signature = fromBase64(attrs[0][1])
    if (signature === undefined || serverSignature === undefined || !timingSafeEqual(signature, serverSignature)) {
      return fail("server signature mismatch")
    }
    state = "done"
    return Effect.succeed(empty())
  }

  return Either.right({
    initial: () => {
      if (state === "start") state = "first"
      return utf8(gs2Header + clientFirstBare)
    },
    respond: (challenge) =>
      Effect.suspend(() => {
        if (state === "start" && challenge.length === 0) {
          state = "first"
          return Effect.succeed(utf8(gs2Header + clientFirstBare))
        }
        if (state !== "first" && state !== "final") return fail("unexpected server challenge")
        const text = fromUtf8(challenge)
        if (text === undefined) return fail("server message is not valid UTF-8")
        return state === "first" ? clientFinal(text) : verify(text)
      }),
    complete: () =>
      state === "done" ? Either.void : Either.left(`${name}: the server signature was not received and verified`),
    serverError: () => undefined
  })
}
