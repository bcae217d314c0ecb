/**
 * The shape shared by every SASL client mechanism used for SMTP AUTH (RFC 4954).
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"

/**
 * One authentication exchange: challenge bytes in, response bytes out. `respond` is an Effect because
 * SCRAM computes its proof with Web Crypto (`crypto.subtle`, asynchronous); the other mechanisms are
 * synchronous. Each step changes the session's state when its Effect runs, not when it is built.
 */
export interface SaslSession {
  /** The initial response sent with AUTH (RFC 4954), or undefined when the mechanism waits for a first challenge (CRAM-MD5). */
  readonly initial: () => Uint8Array | undefined
  /** The response to a server challenge (already base64-decoded). Fails with a reason when the challenge is invalid and the exchange must be aborted (a challenge PLAIN or LOGIN did not expect, malformed SCRAM server-first, wrong server signature, nonce mismatch, iteration count too low...). */
  readonly respond: (challenge: Uint8Array) => Effect.Effect<Uint8Array, string>
  /** Called after the server's 235. Left(reason) when the mechanism had something left to verify (SCRAM: the server signature was never received/verified). */
  readonly complete: () => Either.Either<void, string>
  /** Set when the server reported an error inside a challenge (XOAUTH2 / OAUTHBEARER error JSON): the parsed JSON (status, schemes, scope) for the caller, so it can tell "token rejected" from other failures. */
  readonly serverError: () => OAuthError | undefined
}

/** The error JSON an OAuth server sends as a challenge (RFC 7628 §3.2.2, Google's XOAUTH2). `raw` is the decoded text. */
export interface OAuthError {
  readonly status?: string
  readonly schemes?: string
  readonly scope?: string
  readonly raw: string
}
