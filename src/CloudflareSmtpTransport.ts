/**
 * The Cloudflare Workers transport: TCP through `connect` of `cloudflare:sockets`, STARTTLS with
 * `socket.startTls()`, the socket's web streams wrapped as an `@effect/platform` Socket. Import it
 * from `effect-smtp/cloudflare`, and the rest from the deep paths (`effect-smtp/SmtpClient`,
 * `effect-smtp/Mailer`, ...): the `effect-smtp` barrel also holds the Node transport. The Worker
 * needs the `nodejs_compat` compatibility flag (libmime, used for messages, imports `node:buffer`
 * and `node:stream`).
 *
 * ```ts
 * import { CloudflareSmtpTransport } from "effect-smtp/cloudflare"
 * import * as Mailer from "effect-smtp/Mailer"
 *
 * const MailerLive = Mailer.layer({ host: "smtp.example.com", port: 587, security: "starttls", auth })
 *   .pipe(Layer.provide(CloudflareSmtpTransport.layer))
 * ```
 *
 * What Workers impose:
 * - Certificates are verified by the runtime, against the roots it trusts, for the host connected
 *   to. The TLS options it cannot honour fail with `SmtpTlsError` (reason `"other"`) instead of
 *   being ignored: `ca`, `cert` and `key`, `minVersion`, `rejectUnauthorized: false`, and a
 *   `servername` other than the host. (With workerd, a private CA goes in the configuration: the
 *   `tlsOptions.trustedCertificates` of the network service the Worker's `globalOutbound` names.)
 * - A failed handshake is reported without its reason ("internal error"; workerd logs it), so
 *   its `SmtpTlsError` has reason `"other"` or `"handshake-timeout"`, never `"untrusted"` and the
 *   like. The negotiated protocol, cipher and certificate are not known (`tls` says only
 *   `authorized: true`).
 * - Implicit TLS (`security: "tls"`, port 465) connects with `secureTransport: "starttls"` and
 *   upgrades before the first byte: with `secureTransport: "on"` a failed handshake would be
 *   indistinguishable from a refused connection.
 * - No Unix domain sockets and no `sourceAddress` (`SmtpConnectError`). Cloudflare blocks
 *   outbound port 25: submit on 587 or 465.
 * - Sockets belong to the request that opened them: build the layer that holds connections (a
 *   `Mailer`) in each request, not once per isolate.
 * - There is no host name to greet with: `localHostname` is `"[127.0.0.1]"` unless given here or in
 *   the `SmtpClient` options.
 *
 * @since 0.2.0
 */
import { connect } from "cloudflare:sockets"
import * as Layer from "effect/Layer"
import * as internal from "./internal/cloudflareTransport.js"
import * as SmtpTransport from "./SmtpTransport.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The name to greet with when the `SmtpClient` options give none. Default `"[127.0.0.1]"`. */
  readonly localHostname?: string | undefined
}

/**
 * The transport as a service.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): SmtpTransport.Service => internal.make(connect, options)

/**
 * Provides `SmtpTransport` over `cloudflare:sockets`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<SmtpTransport.SmtpTransport> = Layer.succeed(SmtpTransport.SmtpTransport, make())

/**
 * Provides `SmtpTransport` over `cloudflare:sockets`, with options.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWith = (options: Options): Layer.Layer<SmtpTransport.SmtpTransport> =>
  Layer.succeed(SmtpTransport.SmtpTransport, make(options))
