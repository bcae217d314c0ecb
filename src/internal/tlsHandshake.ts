/**
 * What every transport does with its TLS handshake's time limit: `SmtpTlsError` with reason
 * `"handshake-timeout"` (transient for `classify`), naming the limit.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { SmtpTlsError } from "../SmtpError.js"

/** The handshake's timeout as an error. */
export const handshakeTimedOut = (timeout: Duration.Duration): SmtpTlsError =>
  new SmtpTlsError({
    reason: "handshake-timeout",
    detail: `the TLS handshake took longer than ${Duration.toMillis(timeout)} ms`
  })

/** Fails `self` with the handshake timeout when it takes longer than `timeout`. */
export const withHandshakeTimeout =
  (timeout: Duration.Duration) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | SmtpTlsError, R> =>
    Effect.timeoutFail(self, { duration: timeout, onTimeout: () => handshakeTimedOut(timeout) })
