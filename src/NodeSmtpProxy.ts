/**
 * The Node.js transport through a SOCKS5 (RFC 1928, RFC 1929) or HTTP CONNECT proxy: the
 * connection is dialled to the proxy, the tunnel opened, then SMTP (and TLS, implicit or STARTTLS,
 * verifying the SMTP server's name) runs inside it. A module of its own, so that a program
 * without a proxy does not bundle the proxy code.
 *
 * ```ts
 * NodeSmtpProxy.layer({ proxy: { url: Redacted.make("socks5://user:password@127.0.0.1:1080") } })
 * ```
 *
 * @since 0.2.0
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Net from "node:net"
import { connectVia, type Tunnel } from "./internal/nodeConnect.js"
import * as NodeProxy from "./internal/nodeProxy.js"
import * as Proxy from "./internal/proxy.js"
import { localHostname, prefetchLocalHostname } from "./NodeSmtpTransport.js"
import { SmtpConnectError, type SmtpTimeout, type SmtpTlsError } from "./SmtpError.js"
import * as SmtpTransport from "./SmtpTransport.js"

/**
 * A proxy to reach the SMTP server through: SOCKS5 (RFC 1928, with RFC 1929 username/password) or
 * HTTP CONNECT (with Basic `Proxy-Authorization`). Either a URL (`socks5://user:password@host:1080`,
 * `http://user:password@host:3128`; user and password percent-encoded; `Redacted` when it holds a
 * password) or its parts. SOCKS5 sends host names as names: the proxy resolves them.
 *
 * @since 0.2.0
 * @category models
 */
export type ProxyOptions =
  | { readonly url: string | Redacted.Redacted<string> }
  | {
    readonly type: "socks5" | "http"
    readonly host: string
    readonly port: number
    readonly auth?: { readonly user: string; readonly password: Redacted.Redacted<string> } | undefined
  }

/**
 * Options of the proxied transport (`layer`, `layerConfig`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * Tunnel every TCP connection through this proxy. The connect timeout covers the proxy's
   * handshake; TLS (implicit or STARTTLS) runs inside the tunnel and verifies the SMTP server's
   * name, not the proxy's. `sourceAddress` binds the connection to the proxy. Unix socket paths
   * cannot go through a proxy.
   */
  readonly proxy?: ProxyOptions | undefined
}

/**
 * Why a proxy did not open the tunnel: the `cause` of the `SmtpConnectError`. Its message names
 * the proxy (`SOCKS5 proxy 127.0.0.1:1080 refused: connection refused by destination (5)`), never
 * its credentials. `reason`: `unreachable`, `refused` (a SOCKS5 reply code or an HTTP status in
 * `code`), `auth` (credentials wanted or rejected), `protocol`, `closed` or `invalid` (options).
 *
 * @since 0.2.0
 * @category errors
 */
export const ProxyError: typeof Proxy.ProxyError = Proxy.ProxyError

/**
 * @since 0.2.0
 * @category errors
 */
export type ProxyError = Proxy.ProxyError

interface ResolvedProxy {
  readonly type: Proxy.ProxyType
  readonly host: string
  readonly port: number
  readonly auth?: { readonly user: string; readonly password: Redacted.Redacted<string> } | undefined
}

const resolveProxy = (proxy: ProxyOptions): Either.Either<ResolvedProxy, Proxy.ProxyError> => {
  if ("url" in proxy) {
    const url = typeof proxy.url === "string" ? proxy.url : Redacted.value(proxy.url)
    return Either.map(
      Either.mapLeft(
        Proxy.parseProxyUrl(url),
        (failure) => new Proxy.ProxyError({ proxy: "the proxy URL", ...failure })
      ),
      ({ auth, ...rest }) => ({
        ...rest,
        ...(auth === undefined ? {} : { auth: { user: auth.user, password: Redacted.make(auth.password) } })
      })
    )
  }
  return Either.right(proxy)
}

const proxyFailure = (
  proxy: ResolvedProxy,
  failure: Proxy.ProxyFailure
): Proxy.ProxyError => new Proxy.ProxyError({ proxy: Proxy.describeProxy(proxy), ...failure })

const proxyTunnel = (proxyOption: Either.Either<ResolvedProxy, Proxy.ProxyError>): Tunnel => ({
  target: (options) =>
    Either.flatMap(proxyOption, (proxy) =>
      options.path !== undefined ?
        Either.left(proxyFailure(proxy, { reason: "invalid", detail: "cannot reach a Unix socket path" })) :
        Either.right({ host: proxy.host, port: proxy.port, name: Proxy.describeProxy(proxy) })),
  unreachable: (cause) =>
    Either.match(proxyOption, {
      onLeft: (error) => error,
      onRight: (proxy) => proxyFailure(proxy, { reason: "unreachable", detail: `is unreachable: ${cause.message}` })
    }),
  open: (socket, options) =>
    Either.match(proxyOption, {
      onLeft: (error) =>
        Effect.fail(new SmtpConnectError({ address: `${options.host}:${options.port}`, cause: error })),
      onRight: (proxy) => openTunnel(socket, proxy, options)
    })
})

const openTunnel = (
  socket: Net.Socket,
  proxy: ResolvedProxy,
  options: SmtpTransport.ConnectOptions
): Effect.Effect<void, SmtpConnectError> => {
  const address = `${options.host}:${options.port}`
  return Effect.suspend(() => {
    const made = Proxy.makeHandshake({
      type: proxy.type,
      host: proxy.host,
      port: proxy.port,
      ...(proxy.auth === undefined ?
        {} :
        { auth: { user: proxy.auth.user, password: Redacted.value(proxy.auth.password) } })
    }, { host: options.host, port: options.port })
    return Either.isLeft(made) ?
      Effect.fail(proxyFailure(proxy, made.left)) :
      NodeProxy.tunnel(socket, made.right, Proxy.describeProxy(proxy))
  }).pipe(
    Effect.mapError((cause) => new SmtpConnectError({ address, cause })),
    Effect.withSpan("NodeSmtpTransport.proxy", {
      kind: "client",
      attributes: {
        "network.protocol.name": proxy.type,
        "server.address": proxy.host,
        "server.port": proxy.port
      }
    })
  )
}

/**
 * Opens a connection through the proxy (see `NodeSmtpTransport.connect`). An invalid proxy URL
 * fails every connect with `SmtpConnectError` whose cause is a `ProxyError`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const connect = (options: Options): (
  connectOptions: SmtpTransport.ConnectOptions
) => Effect.Effect<
  SmtpTransport.Connection,
  SmtpConnectError | SmtpTimeout | SmtpTlsError,
  Scope.Scope
> => connectVia(options.proxy === undefined ? undefined : proxyTunnel(resolveProxy(options.proxy)))

/**
 * The transport through a proxy, as a service.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): SmtpTransport.Service => ({
  connect: connect(options),
  localHostname,
  prefetchLocalHostname
})

/**
 * Provides `SmtpTransport` over Node's network stack through a proxy:
 *
 * ```ts
 * NodeSmtpProxy.layer({ proxy: { url: Redacted.make("socks5://user:password@127.0.0.1:1080") } })
 * ```
 *
 * An invalid proxy URL fails every connect with `SmtpConnectError` (`layerConfig` fails at once instead).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SmtpTransport.SmtpTransport> =>
  Layer.succeed(SmtpTransport.SmtpTransport, make(options))

/**
 * The same from Config; an invalid proxy URL is a `ConfigError`:
 *
 * ```ts
 * NodeSmtpProxy.layerConfig({
 *   proxy: Config.redacted("SMTP_PROXY").pipe(Config.map((url) => ({ url })), Config.option, Config.map(Option.getOrUndefined))
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<SmtpTransport.SmtpTransport, ConfigError.ConfigError> =>
  Layer.effect(
    SmtpTransport.SmtpTransport,
    Effect.flatMap(Config.unwrap(config), (options) => {
      const resolved = options.proxy === undefined ? undefined : resolveProxy(options.proxy)
      return resolved !== undefined && Either.isLeft(resolved) ?
        Effect.fail(ConfigError.InvalidData(["proxy"], resolved.left.message)) :
        Effect.succeed(make(options))
    })
  )
