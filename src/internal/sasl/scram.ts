/**
 * SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), without channel binding (GS2 header `n,,`).
 * The server is authenticated too: `complete` fails unless its signature was received and verified.
 *
 * @internal
 */
import { hmac } from "@noble/hashes/hmac.js"
import { sha1 } from "@noble/hashes/legacy.js"
import { pbkdf2 } from "@noble/hashes/pbkdf2.js"
import { sha256 } from "@noble/hashes/sha2.js"
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

const hashes = { "SHA-1": sha1, "SHA-256": sha256 } as const
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
 * Starts a SCRAM exchange. Left when the user name or password is rejected by SASLprep (RFC 4013),
 * the authzid holds a control character, or the supplied nonce is invalid. The server-first message
 * is checked (nonce extends ours, base64 salt, iteration count within bounds, no mandatory
 * extension) before the proof is computed.
 */
export const make = (options: Options): Either.Either<SaslSession, string> => {
  const name = mechanisms[options.hash]
  const hash = hashes[options.hash]
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

  const fail = (reason: string): Either.Either<never, string> => {
    state = "failed"
    return Either.left(`${name}: ${reason}`)
  }

  const clientFinal = (serverFirst: string): Either.Either<Uint8Array, string> => {
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
    const saltedPassword = pbkdf2(hash, utf8(password), salt, { c: iterations, dkLen: hash.outputLen })
    const clientKey = hmac(hash, saltedPassword, utf8("Client Key"))
    const clientSignature = hmac(hash, hash(clientKey), authMessage)
    const serverKey = hmac(hash, saltedPassword, utf8("Server Key"))
    serverSignature = hmac(hash, serverKey, authMessage)
    state = "final"
    return Either.right(utf8(`${withoutProof},p=${toBase64(xor(clientKey, clientSignature))}`))
  }

  const verify = (serverFinal: string): Either.Either<Uint8Array, string> => {
    const attrs = attributes(serverFinal)
    if (attrs === undefined) return fail("malformed server-final-message")
    if (attrs[0][0] === "e") return fail(`server error: ${quote(attrs[0][1])}`)
    if (attrs[0][0] !== "v") return fail("malformed server-final-message")
    const signature = fromBase64(attrs[0][1])
    if (signature === undefined || serverSignature === undefined || !timingSafeEqual(signature, serverSignature)) {
      return fail("server signature mismatch")
    }
    state = "done"
    return Either.right(empty())
  }

  return Either.right({
    initial: () => {
      if (state === "start") state = "first"
      return utf8(gs2Header + clientFirstBare)
    },
    respond: (challenge) => {
      if (state === "start" && challenge.length === 0) {
        state = "first"
        return Either.right(utf8(gs2Header + clientFirstBare))
      }
      if (state !== "first" && state !== "final") return fail("unexpected server challenge")
      const text = fromUtf8(challenge)
      if (text === undefined) return fail("server message is not valid UTF-8")
      return state === "first" ? clientFinal(text) : verify(text)
    },
    complete: () =>
      state === "done" ? Either.void : Either.left(`${name}: the server signature was not received and verified`),
    serverError: () => undefined
  })
}
