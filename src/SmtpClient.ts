/**
 * Opening sessions: `connect` (scoped), `layer` and `layerConfig`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Engine from "./internal/engine.js"
import * as Operation from "./internal/operation.js"
import * as Session from "./internal/session.js"
import * as LmtpConnection from "./LmtpConnection.js"
import type * as SmtpAuth from "./SmtpAuth.js"
import { SmtpConnection } from "./SmtpConnection.js"
import type * as SmtpConnectionNs from "./SmtpConnection.js"
import {
  SmtpAuthenticationError,
  SmtpConnectError,
  type SmtpError,
  SmtpInvalidInput,
  SmtpTlsError
} from "./SmtpError.js"
import type { SmtpReply } from "./SmtpReply.js"
import { SmtpTransport, type TlsDetails, type TlsOptions } from "./SmtpTransport.js"

/**
 * Connection options (smtplib's `SMTP(host, port, local_hostname, timeout, source_address)`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The server; `"host:port"` is split as smtplib does when `port` is not given. Default `"localhost"`. */
  readonly host?: string | undefined
  /** Default 25. */
  readonly port?: number | undefined
  /** The name sent with EHLO/HELO; the host's FQDN (or an address literal) by default. */
  readonly localHostname?: string | undefined
  /**
   * One limit for connecting and for every wait on the server (smtplib's `timeout`). When absent,
   * connecting may take 30 s, the greeting 30 s, and each other wait gets its RFC 5321 §4.5.3.2
   * limit (5 min for MAIL and RCPT; 2 min for DATA; 3 min per data block; 10 min after the final
   * dot).
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** The local address to bind (smtplib's `source_address`). */
  readonly sourceAddress?: { readonly host: string; readonly port?: number | undefined } | undefined
  /**
   * smtplib's `set_debuglevel`: 1 logs the `C:`/`S:` transcript at Debug level through Effect's
   * Logger, 2 adds timestamps. The transcript is shown whatever the minimum log level (asking for
   * it is the point). Credentials and message bodies are never logged.
   */
  readonly debug?: 0 | 1 | 2 | undefined
  /** How long the QUIT sent when the Scope closes may take. Default 5 s (or `timeout` if shorter). */
  readonly closeTimeout?: Duration.DurationInput | undefined
  /**
   * How the connection is protected:
   * - `"tls"`: implicit TLS from the first byte (smtplib's `SMTP_SSL`); port 465 by default.
   * - `"starttls"`: STARTTLS is required. `connect` fails with `SmtpTlsError` (reason
   *   `"downgrade"`) when the server does not offer it or refuses it, before any MAIL or AUTH.
   * - `"opportunistic"`: STARTTLS when the server offers it; plaintext when it does not or answers
   *   454. A failed handshake still fails (it is not silently retried in plaintext).
   * - `"none"`: plaintext, as smtplib's `SMTP` (call `starttls()` yourself).
   *
   * Default: `"tls"` on port 465, `"none"` on a Unix socket, else `"opportunistic"` (what
   * nodemailer and aiosmtplib do: encrypt whenever the server can).
   */
  readonly security?: "tls" | "starttls" | "opportunistic" | "none" | undefined
  /** TLS settings for implicit TLS and STARTTLS. Certificates and host names are verified by default. */
  readonly tls?: TlsOptions | undefined
  /** `"smtp"` (the default). For LMTP see {@link LmtpOptions}. */
  readonly protocol?: "smtp" | undefined
  /** A Unix domain socket to connect to instead of host and port (an absolute path as `host` does the same). */
  readonly path?: string | undefined
  /**
   * Send messages with BDAT (RFC 3030) when the server offers CHUNKING and PIPELINING: MAIL,
   * RCPT and a message up to 1 MiB go in one write, one round trip per message, and nothing is
   * dot-stuffed. Default true; false always uses DATA, as smtplib does.
   */
  readonly chunking?: boolean | undefined
  /**
   * Log in as part of connecting (after STARTTLS): with a password (`login`'s rules), an OAuth 2.0
   * token provider (`loginOAuth2`) or any mechanism (`auth`); see `SmtpAuth.Credentials`. Secrets
   * are `Redacted`: with `layerConfig`, read a password with `Config.redacted`.
   */
  readonly auth?: SmtpAuth.Credentials | undefined
}

/**
 * LMTP (RFC 2033; smtplib's `LMTP`): LHLO instead of EHLO (no HELO fallback), port 2003 by
 * default, and one reply per accepted recipient after the data, so `sendmail` reports every
 * recipient. An absolute path as `host` (or `path`) connects over a Unix domain socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface LmtpOptions extends Omit<Options, "protocol"> {
  readonly protocol: "lmtp"
}

const rfcReplyTimeouts: Record<string, Duration.Duration> = {
  // RFC 5321 allows 5 minutes; a server that has not greeted in 30 s is not going to (nodemailer waits 30 s)
  "<greeting>": Duration.seconds(30),
  MAIL: Duration.minutes(5),
  RCPT: Duration.minutes(5),
  DATA: Duration.minutes(2),
  "<end of data>": Duration.minutes(10),
  // the reply to BDAT LAST is the end-of-data reply; earlier chunks get the same generous limit
  BDAT: Duration.minutes(10)
}

interface Resolved {
  readonly host: string
  readonly port: number
  readonly path: string | undefined
  readonly security: "tls" | "starttls" | "opportunistic" | "none"
  readonly connectTimeout: Duration.Duration
  readonly replyTimeout: (verb: string) => Duration.Duration
  readonly writeTimeout: Duration.Duration
  readonly closeTimeout: Duration.Duration
  readonly timeoutGiven: Duration.Duration | undefined
}

/** localhost, 127.0.0.0/8 and ::1. */
const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h.endsWith(".localhost") || /^127(\.\d{1,3}){3}$/.test(h) || h === "::1" ||
    h === "0:0:0:0:0:0:0:1"
}

const invalid = (reason: string) => Effect.fail(new SmtpInvalidInput({ reason }))

const resolve = (options: Options | LmtpOptions): Effect.Effect<Resolved, SmtpInvalidInput> =>
  Effect.gen(function*() {
    let host = options.host ?? "localhost"
    let port = options.port
    const lmtp = options.protocol === "lmtp"
    const path = options.path ?? (host.startsWith("/") ? host : undefined)
    if (path !== undefined && options.path === undefined) host = "localhost"
    if (
      path === undefined && port === undefined && host.indexOf(":") !== -1 &&
      host.indexOf(":") === host.lastIndexOf(":")
    ) {
      const i = host.lastIndexOf(":")
      const text = host.slice(i + 1)
      if (!/^\d+$/.test(text)) return yield* invalid(`Non-numeric port in ${JSON.stringify(host)}`)
      port = Number(text)
      host = host.slice(0, i)
    }
    const security = options.security ??
      (path !== undefined ? "none" : (port ?? 0) === 465 ? "tls" : "opportunistic")
    port ??= lmtp ? 2003 : security === "tls" ? 465 : 25
    if (!Number.isInteger(port) || port < 0 || port > 65535) return yield* invalid(`Invalid port ${port}`)
    let timeout: Duration.Duration | undefined
    if (options.timeout !== undefined) {
      const decoded = Duration.decodeUnknown(options.timeout)
      if (decoded._tag === "None" || !Duration.greaterThan(decoded.value, Duration.zero)) {
        return yield* invalid("The timeout must be positive (smtplib refuses a non-blocking socket)")
      }
      timeout = decoded.value
    }
    const positive = (what: string, input: Duration.DurationInput | undefined) => {
      if (input === undefined) return Effect.succeed(undefined)
      const decoded = Duration.decodeUnknown(input)
      return decoded._tag === "Some" && Duration.greaterThan(decoded.value, Duration.zero) ?
        Effect.succeed(decoded.value) :
        invalid(`${what} must be a positive duration (got ${JSON.stringify(String(input))})`)
    }
    const closeTimeout = Duration.min(
      (yield* positive("closeTimeout", options.closeTimeout)) ?? Duration.seconds(5),
      timeout ?? Duration.infinity
    )
    yield* positive("tls.handshakeTimeout", options.tls?.handshakeTimeout)
    return {
      host,
      port,
      path,
      security,
      connectTimeout: timeout ?? Duration.seconds(30),
      replyTimeout: (verb) => timeout ?? rfcReplyTimeouts[verb] ?? Duration.minutes(5),
      writeTimeout: timeout ?? Duration.minutes(3),
      closeTimeout,
      timeoutGiven: timeout
    }
  })

/**
 * Connects, reads the greeting (anything but 220 is `SmtpConnectError`) and returns the session.
 * Closing the Scope sends QUIT (bounded in time) and closes the socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect: {
  (options: LmtpOptions): Effect.Effect<LmtpConnection.Service, SmtpError, Scope.Scope | SmtpTransport>
  (options?: Options): Effect.Effect<SmtpConnectionNs.Service, SmtpError, Scope.Scope | SmtpTransport>
} = ((options: Options | LmtpOptions = {}) =>
  Effect.map(
    open(options),
    (session) => (options.protocol === "lmtp" ? session.lmtpService : session.service)
  )) as any

const open = (options: Options | LmtpOptions) =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const transport = yield* SmtpTransport
    const address = resolved.path ?? `${resolved.host}:${resolved.port}`
    const tls: TlsOptions = {
      ...(resolved.timeoutGiven === undefined ? {} : { handshakeTimeout: resolved.timeoutGiven }),
      ...options.tls
    }
    // the greeting's name, when the caller gives none, is looked up during the dial
    if (options.localHostname == null) transport.prefetchLocalHostname?.()
    const connection = yield* transport.connect({
      host: resolved.host,
      port: resolved.port,
      path: resolved.path,
      timeout: resolved.connectTimeout,
      sourceAddress: options.sourceAddress,
      tls: resolved.security === "tls" ? tls : undefined
    }).pipe(
      (dial) =>
        Operation.withSpan(dial, "SmtpClient.connect", {
          kind: "client",
          attributes: { "server.address": resolved.path ?? resolved.host, "server.port": resolved.port }
        })
    )
    const engine = yield* Engine.make(connection, {
      debug: options.debug ?? 0,
      replyTimeout: resolved.replyTimeout,
      writeTimeout: resolved.writeTimeout
    })
    yield* Effect.addFinalizer(() => engine.close)
    const greeting = yield* engine.greeting
    if (greeting.code !== 220) {
      yield* engine.close
      return yield* Effect.fail(
        new SmtpConnectError({
          address,
          code: greeting.code,
          text: greeting.text,
          ...(greeting.enhancedCode === undefined ? {} : { enhancedCode: greeting.enhancedCode })
        })
      )
    }
    const localHostname = options.localHostname ?? (yield* transport.localHostname)
    const session = yield* Session.make(engine, greeting, {
      localHostname,
      lmtp: options.protocol === "lmtp",
      chunking: options.chunking ?? true,
      tls,
      host: resolved.host,
      port: resolved.port,
      // through a proxy, "localhost" is the proxy's machine: the network lies between
      loopback: resolved.path !== undefined || (isLoopback(resolved.host) && connection.proxied !== true),
      serverAddress: resolved.path ?? resolved.host
    })
    yield* Effect.addFinalizer(() =>
      engine.isClosed() ? Effect.void : session.service.quit.pipe(
        // finalizers run uninterruptibly: the QUIT must be interruptible for its timeout to work
        Effect.interruptible,
        Effect.timeout(resolved.closeTimeout),
        Effect.ignore,
        Effect.ensuring(engine.close)
      )
    )
    if (resolved.security === "starttls" || resolved.security === "opportunistic") {
      yield* negotiateStartTls(session, resolved.security === "starttls")
    }
    if (options.auth !== undefined) yield* authenticate(session.service, options.auth)
    return session
  })

/** An authentication that failed on this side (no server reply: code 0), with what failed as `cause`. */
const failedHere = (detail: string, mechanisms: ReadonlyArray<string>, cause: unknown) =>
  new SmtpAuthenticationError({ code: 0, text: "", mechanisms, detail, cause })

/** Connect-time login with any kind of credentials. */
const authenticate = (
  smtp: SmtpConnectionNs.Service,
  credentials: SmtpAuth.Credentials
): Effect.Effect<void, SmtpError> => {
  if ("password" in credentials) {
    const { password, user, ...loginOptions } = credentials
    return Effect.asVoid(smtp.login(user, password, loginOptions))
  }
  if ("oauth2" in credentials) {
    const { oauth2, user, ...oauthOptions } = credentials
    // the first attempt may take a cached token; the one after a rejection asks for a fresh one
    let last: Redacted.Redacted<string> | undefined
    const token = Effect.suspend(() =>
      oauth2(last === undefined ? { user, renew: false } : { user, renew: true, rejected: last })
    ).pipe(
      Effect.tap((t) =>
        Effect.sync(() => {
          last = t
        })
      ),
      Effect.mapError((cause) => failedHere("the OAuth 2.0 token provider failed", [], cause))
    )
    return Effect.asVoid(smtp.loginOAuth2(user, token, oauthOptions))
  }
  const { authenticator, mechanism, ...authOptions } = credentials
  return Effect.asVoid(
    smtp.auth(
      mechanism,
      (challenge) =>
        Effect.mapError(
          authenticator(challenge),
          (cause) => failedHere("the authenticator failed", [mechanism], cause)
        ),
      authOptions
    )
  )
}

/** The STARTTLS policy at connect time: upgrade when offered; when required, never go on without. */
const negotiateStartTls = (
  session: Effect.Effect.Success<ReturnType<typeof Session.make>>,
  required: boolean
): Effect.Effect<void, SmtpError> =>
  Effect.gen(function*() {
    yield* session.ehloOrHeloIfNeeded
    if (!session.hasExtn("starttls")) {
      if (!required) return
      return yield* Effect.fail(
        new SmtpTlsError({
          reason: "downgrade",
          detail: "STARTTLS is required (security: \"starttls\") but the server does not offer it; nothing was sent"
        })
      )
    }
    yield* session.starttls().pipe(
      Effect.catchTag("SmtpResponseException", (e) =>
        required ?
          Effect.fail(
            new SmtpTlsError({
              reason: "downgrade",
              detail: `STARTTLS is required but the server refused it: ${e.code} ${e.text}`
            })
          ) :
          Effect.void)
    )
  })

/**
 * A layer holding one session for its lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<SmtpConnection, SmtpError, SmtpTransport> =>
  Layer.scoped(SmtpConnection, connect(options))

/**
 * A layer holding one LMTP session for its lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLmtp = (options: LmtpOptions): Layer.Layer<LmtpConnection.LmtpConnection, SmtpError, SmtpTransport> =>
  Layer.scoped(LmtpConnection.LmtpConnection, connect(options))

/**
 * The same from Config.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<SmtpConnection, SmtpError | ConfigError.ConfigError, SmtpTransport> =>
  Layer.scoped(SmtpConnection, Effect.flatMap(Config.unwrap(config), connect))

/**
 * What a server said about itself to `verify`.
 *
 * @since 0.2.0
 * @category models
 */
export interface VerifyReport {
  readonly greeting: SmtpReply
  /** The EHLO keywords (lower-case) and their parameters. */
  readonly extensions: ReadonlyMap<string, string>
  /** The SIZE limit the server advertised, in bytes (0: no limit given), if any. */
  readonly sizeLimit: number | undefined
  /** The AUTH mechanisms offered. */
  readonly authMechanisms: ReadonlyArray<string>
  /** Whether `auth` was given and the login succeeded. */
  readonly authenticated: boolean
  /** What TLS negotiated, when the session was encrypted. */
  readonly tls: TlsDetails | undefined
}

/**
 * Checks a server and these options at start-up (nodemailer's `transporter.verify()`): connects,
 * greets, upgrades with STARTTLS as configured, logs in when `auth` is given, reads what the server
 * offers, and QUITs. A wrong password, an unreachable server or a TLS failure is the usual typed
 * error.
 *
 * @since 0.2.0
 * @category constructors
 */
export const verify = (options: Options = {}): Effect.Effect<VerifyReport, SmtpError, SmtpTransport> =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* connect(options)
    yield* smtp.ehloOrHeloIfNeeded
    const extensions = yield* smtp.esmtpFeatures
    const size = extensions.get("size")
    const sizeLimit = size === undefined ? undefined : Number.parseInt(size || "0", 10)
    return {
      greeting: smtp.greeting,
      extensions,
      sizeLimit: sizeLimit === undefined || Number.isNaN(sizeLimit) ? undefined : sizeLimit,
      authMechanisms: (extensions.get("auth") ?? "").split(/\s+/).filter((m) => m !== "").map((m) => m.toUpperCase()),
      authenticated: yield* smtp.isAuthenticated,
      tls: Option.getOrUndefined(yield* smtp.tls)
    }
  })).pipe(Effect.withSpan("SmtpClient.verify", { kind: "client", captureStackTrace: false }))
