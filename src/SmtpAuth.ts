/**
 * Authentication: the options of `login`, `loginOAuth2` and `auth`, and the authenticator type of
 * `auth`, the hook for mechanisms this library does not ship.
 *
 * The plaintext rule (Go's net/smtp) holds for all three: over an unencrypted connection to a host
 * that is not loopback, no mechanism that may expose a secret is used unless `allowInsecure` is set.
 * Only the challenge-response mechanisms, SCRAM-* and CRAM-MD5, are known not to; every other one,
 * PLAIN, LOGIN, XOAUTH2, OAUTHBEARER and any custom mechanism given to `auth`, is refused with
 * `SmtpInvalidInput` before anything is written.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Sasl from "./internal/sasl/index.js"

/**
 * A custom SASL mechanism, smtplib's `authobject`: called with `None` for the initial response
 * (return `undefined` when the mechanism has none) and then with each server challenge, decoded
 * from base64. The response is base64-encoded for you.
 *
 * @since 0.1.0
 * @category models
 */
export type Authenticator<E = never, R = never> = (
  challenge: Option.Option<Uint8Array>
) => Effect.Effect<string | Uint8Array | undefined, E, R>

/**
 * The password mechanisms `login` knows, strongest first: the default order it tries them in.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMechanisms: ReadonlyArray<string> = Sasl.preferenceOrder

/**
 * Options of `login`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoginOptions {
  /**
   * Send the initial response with AUTH (RFC 4954) where the mechanism has one (PLAIN, SCRAM, and
   * LOGIN's user name, as smtplib). Default true, as smtplib.
   */
  readonly initialResponseOk?: boolean | undefined
  /** The mechanisms to try, in order (those the server does not advertise are skipped). */
  readonly mechanisms?: ReadonlyArray<string> | undefined
  /** An authorization identity (PLAIN and SCRAM only). */
  readonly authzid?: string | undefined
  /**
   * Allow PLAIN and LOGIN (which send the password itself) over an unencrypted connection to a
   * host that is not loopback. Off by default, as in Go's net/smtp.
   */
  readonly allowInsecure?: boolean | undefined
}

/**
 * Options of `auth`.
 *
 * @since 0.2.0
 * @category models
 */
export interface AuthOptions {
  /** Call the authenticator with `None` first and send its answer with AUTH (RFC 4954). Default true, as smtplib. */
  readonly initialResponseOk?: boolean | undefined
  /**
   * Allow the mechanism over an unencrypted connection to a host that is not loopback. Needed for
   * every mechanism but SCRAM-* and CRAM-MD5: a custom one is assumed to send its secret in clear.
   * Off by default.
   */
  readonly allowInsecure?: boolean | undefined
}

/**
 * Options of `loginOAuth2`.
 *
 * @since 0.1.0
 * @category models
 */
export interface OAuth2Options {
  /** Default: OAUTHBEARER when advertised, else XOAUTH2. */
  readonly mechanism?: "XOAUTH2" | "OAUTHBEARER" | undefined
  /** Allow sending the token over an unencrypted connection to a non-loopback host. Off by default. */
  readonly allowInsecure?: boolean | undefined
}

/**
 * Where an OAuth 2.0 access token comes from. It is run once per attempt: when the server
 * rejects a token it runs again, once, and must then give a fresh token (refresh it, bypass your
 * cache).
 *
 * @since 0.1.0
 * @category models
 */
export type TokenProvider<E = never, R = never> = Effect.Effect<Redacted.Redacted<string>, E, R>

/**
 * Why a token is asked for: `renew` is false for the first attempt (a cached token is fine) and
 * true after the server rejected the last one (fetch a fresh one).
 *
 * @since 0.2.0
 * @category models
 */
export interface TokenRequest {
  readonly user: string
  readonly renew: boolean
  /** With `renew`: the token the server rejected (a shared cache may have replaced it already). */
  readonly rejected?: Redacted.Redacted<string> | undefined
}

/**
 * Where OAuth 2.0 access tokens come from for the `auth` option of `connect`, the layers and
 * `Mailer`. Failures become `SmtpAuthenticationError` (with the provider's error as `cause`).
 *
 * @since 0.2.0
 * @category models
 */
export type OAuth2TokenProvider = (request: TokenRequest) => Effect.Effect<Redacted.Redacted<string>, unknown>

/**
 * Credentials for the `auth` option (log in while connecting, after STARTTLS):
 *
 * - a password: `{ user, password }` (`login`'s rules and options);
 * - OAuth 2.0: `{ user, oauth2 }` with a token provider (`loginOAuth2`: OAUTHBEARER or XOAUTH2,
 *   once more with `renew: true` when the server rejects the token);
 * - any mechanism: `{ mechanism, authenticator }` (`auth`).
 *
 * @since 0.2.0
 * @category models
 */
export type Credentials =
  | (LoginOptions & { readonly user: string; readonly password: Redacted.Redacted<string> })
  | (OAuth2Options & { readonly user: string; readonly oauth2: OAuth2TokenProvider })
  | (AuthOptions & { readonly mechanism: string; readonly authenticator: Authenticator<unknown> })

/**
 * A token provider that keeps the last token for every caller (the connections of a `Mailer`): a
 * first attempt takes the cached token, and a rejected token is renewed once however many
 * connections saw it rejected (one that asks to renew a token already replaced gets the new one).
 *
 * @since 0.2.0
 * @category constructors
 */
export const cachedTokenProvider = (provider: OAuth2TokenProvider): OAuth2TokenProvider => {
  let cached: Redacted.Redacted<string> | undefined
  let fetching: Deferred.Deferred<Redacted.Redacted<string>, unknown> | undefined
  const fetch = (request: TokenRequest) =>
    Effect.suspend(() => {
      // one fetch at a time: concurrent callers wait for it
      if (fetching !== undefined) return Deferred.await(fetching)
      const deferred = Deferred.unsafeMake<Redacted.Redacted<string>, unknown>(FiberId.none)
      fetching = deferred
      return provider(request).pipe(
        // however it ends (interrupted too), the waiters get the same outcome
        Effect.onExit((exit) =>
          Effect.sync(() => {
            fetching = undefined
            if (exit._tag === "Success") cached = exit.value
            Deferred.unsafeDone(deferred, exit)
          })
        )
      )
    })
  return (request) =>
    Effect.suspend(() => {
      if (!request.renew) return cached !== undefined ? Effect.succeed(cached) : fetch(request)
      // rejected, but someone renewed it meanwhile: take theirs
      if (cached !== undefined && request.rejected !== undefined && cached !== request.rejected) {
        return Effect.succeed(cached)
      }
      return fetch(request)
    })
}
