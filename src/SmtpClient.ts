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
import type * as Scope from "effect/Scope"
import * as Engine from "./internal/engine.js"
import * as Session from "./internal/session.js"
import { SmtpConnection } from "./SmtpConnection.js"
import type * as SmtpConnectionNs from "./SmtpConnection.js"
import { SmtpConnectError, type SmtpError, SmtpInvalidInput } from "./SmtpError.js"
import { SmtpTransport } from "./SmtpTransport.js"

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
   * connecting may take 30 s and each wait gets its RFC 5321 §4.5.3.2 limit (5 min for the
   * greeting, MAIL and RCPT; 2 min for DATA; 3 min per data block; 10 min after the final dot).
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** The local address to bind (smtplib's `source_address`). */
  readonly sourceAddress?: { readonly host: string; readonly port?: number | undefined } | undefined
  /**
   * smtplib's `set_debuglevel`: 1 logs the `C:`/`S:` transcript at Debug level through Effect's
   * Logger, 2 adds timestamps. Credentials and message bodies are never logged.
   */
  readonly debug?: 0 | 1 | 2 | undefined
  /** How long the QUIT sent when the Scope closes may take. Default 5 s (or `timeout` if shorter). */
  readonly closeTimeout?: Duration.DurationInput | undefined
}

const rfcReplyTimeouts: Record<string, Duration.Duration> = {
  "<greeting>": Duration.minutes(5),
  MAIL: Duration.minutes(5),
  RCPT: Duration.minutes(5),
  DATA: Duration.minutes(2),
  "<end of data>": Duration.minutes(10)
}

interface Resolved {
  readonly host: string
  readonly port: number
  readonly connectTimeout: Duration.Duration
  readonly replyTimeout: (verb: string) => Duration.Duration
  readonly writeTimeout: Duration.Duration
  readonly closeTimeout: Duration.Duration
}

const invalid = (reason: string) => Effect.fail(new SmtpInvalidInput({ reason }))

const resolve = (options: Options): Effect.Effect<Resolved, SmtpInvalidInput> =>
  Effect.gen(function*() {
    let host = options.host ?? "localhost"
    let port = options.port
    if (port === undefined && host.indexOf(":") !== -1 && host.indexOf(":") === host.lastIndexOf(":")) {
      const i = host.lastIndexOf(":")
      const text = host.slice(i + 1)
      if (!/^\d+$/.test(text)) return yield* invalid(`Non-numeric port in ${JSON.stringify(host)}`)
      port = Number(text)
      host = host.slice(0, i)
    }
    port ??= 25
    if (!Number.isInteger(port) || port < 0 || port > 65535) return yield* invalid(`Invalid port ${port}`)
    let timeout: Duration.Duration | undefined
    if (options.timeout !== undefined) {
      const decoded = Duration.decodeUnknown(options.timeout)
      if (decoded._tag === "None" || !Duration.greaterThan(decoded.value, Duration.zero)) {
        return yield* invalid("The timeout must be positive (smtplib refuses a non-blocking socket)")
      }
      timeout = decoded.value
    }
    const closeTimeout = Duration.min(
      options.closeTimeout === undefined ? Duration.seconds(5) : Duration.decode(options.closeTimeout),
      timeout ?? Duration.infinity
    )
    return {
      host,
      port,
      connectTimeout: timeout ?? Duration.seconds(30),
      replyTimeout: (verb) => timeout ?? rfcReplyTimeouts[verb] ?? Duration.minutes(5),
      writeTimeout: timeout ?? Duration.minutes(3),
      closeTimeout
    }
  })

/**
 * Connects, reads the greeting (anything but 220 is `SmtpConnectError`) and returns the session.
 * Closing the Scope sends QUIT (bounded in time) and closes the socket.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (
  options: Options = {}
): Effect.Effect<SmtpConnectionNs.Service, SmtpError, Scope.Scope | SmtpTransport> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const transport = yield* SmtpTransport
    const address = `${resolved.host}:${resolved.port}`
    const connection = yield* transport.connect({
      host: resolved.host,
      port: resolved.port,
      timeout: resolved.connectTimeout,
      sourceAddress: options.sourceAddress
    })
    const engine = yield* Engine.make(connection, {
      debug: options.debug ?? 0,
      replyTimeout: resolved.replyTimeout,
      writeTimeout: resolved.writeTimeout,
      serverAddress: resolved.host,
      serverPort: resolved.port
    })
    const greeting = yield* Effect.flatten(engine.expect("<greeting>"))
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
    const session = yield* Session.make(engine, greeting, { localHostname, lmtp: false })
    yield* Effect.addFinalizer(() =>
      engine.isClosed() ? Effect.void : session.service.quit.pipe(
        Effect.timeout(resolved.closeTimeout),
        Effect.ignore,
        Effect.ensuring(engine.close)
      )
    )
    return session.service
  }).pipe(
    Effect.withSpan("smtplib.connect", {
      kind: "client",
      attributes: {
        "server.address": options.host ?? "localhost",
        ...(options.port === undefined ? {} : { "server.port": options.port })
      }
    })
  )

/**
 * A layer holding one session for its lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<SmtpConnection, SmtpError, SmtpTransport> =>
  Layer.scoped(SmtpConnection, connect(options))

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
