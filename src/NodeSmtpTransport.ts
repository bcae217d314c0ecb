/**
 * The Node.js transport: TCP (`node:net`) or a Unix domain socket, TLS (`node:tls`) for implicit
 * TLS and STARTTLS, each wrapped as an `@effect/platform` Socket with `NodeSocket.fromDuplex`.
 * Through a SOCKS5 or HTTP CONNECT proxy: `NodeSmtpProxy`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Dns from "node:dns/promises"
import * as Os from "node:os"
import * as NodeConnect from "./internal/nodeConnect.js"
import type { SmtpConnectError, SmtpTimeout, SmtpTlsError } from "./SmtpError.js"
import * as SmtpTransport from "./SmtpTransport.js"

/**
 * Maps a Node TLS error to a reason a caller can act on.
 *
 * @since 0.1.0
 * @category errors
 */
export const classifyTlsError: (error: unknown) => SmtpTlsError = NodeConnect.classifyTlsError

/**
 * Opens a TCP or Unix socket connection (and the TLS handshake for implicit TLS), closed with
 * the Scope. TCP_NODELAY is on.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect: (
  options: SmtpTransport.ConnectOptions
) => Effect.Effect<
  SmtpTransport.Connection,
  SmtpConnectError | SmtpTimeout | SmtpTlsError,
  Scope.Scope
> = NodeConnect.connectVia(undefined)

/** The name once the lookup has answered (read without waiting: every connection asks). */
let fqdn: string | undefined
let lookup: Promise<string> | undefined

const lookupFqdn = async (): Promise<string> => {
  const name = Os.hostname()
  let address: string | undefined
  try {
    address = (await Dns.lookup(name)).address
    const reverse = (await Dns.lookupService(address, 0)).hostname
    if (reverse.includes(".")) return reverse
  } catch {
    // no resolver answer: fall through to the literal, as smtplib does
  }
  if (name.includes(".")) return name
  const literal = address ?? "127.0.0.1"
  // (an address the resolver gave: IPv6 when it has a colon. Node's isIPv6 is a regular
  // expression that costs milliseconds to compile on its first use)
  return literal.includes(":") ? `[IPv6:${literal}]` : `[${literal}]`
}

/** The lookup, started once per process (it never fails: a failure is the literal). */
const startLookup = (): Promise<string> =>
  lookup ??= lookupFqdn().then((name) => (fqdn = name), () => (fqdn = "[127.0.0.1]"))

/** The lookup, or `fallback` when it has not answered within `millis`. */
const lookupWithin = (millis: number, fallback: string): Promise<string> => {
  const answer = startLookup()
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    answer,
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(fallback), millis)
    })
  ]).finally(() => clearTimeout(timer))
}

/**
 * smtplib's default `local_hostname`: the fully qualified domain name of this host when it has
 * one (a name with a dot, from the resolver), else an address literal such as `[127.0.0.1]`.
 * Looked up once per process, and answered without waiting once the resolver has answered; a
 * connection made while it has not answered within 5 seconds (real time, whatever Effect's clock:
 * the wait is for the system's resolver) greets with `[127.0.0.1]`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const localHostname: Effect.Effect<string> = Effect.suspend(() =>
  fqdn !== undefined ? Effect.succeed(fqdn) : Effect.promise(() => lookupWithin(5000, "[127.0.0.1]"))
)

/**
 * Starts the lookup `localHostname` waits for, once per process (a connection without a
 * `localHostname` option calls it as it dials, so that the lookup runs during the dial).
 *
 * @since 0.2.0
 * @category getters
 */
export const prefetchLocalHostname = (): void => {
  if (fqdn === undefined) startLookup()
}

/**
 * The transport as a service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: SmtpTransport.Service = { connect, localHostname, prefetchLocalHostname }

/**
 * Provides `SmtpTransport` over Node's network stack.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<SmtpTransport.SmtpTransport> = Layer.succeed(SmtpTransport.SmtpTransport, make)
