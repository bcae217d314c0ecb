/**
 * The seam between the protocol and the network: a transport opens a byte stream (an
 * `@effect/platform` `Socket`) to a server and can upgrade it to TLS. The Node implementation is
 * `NodeSmtpTransport`; the in-memory one, for tests, is in `effect-smtp/testing`.
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { SmtpConnectError, SmtpTimeout, SmtpTlsError } from "./SmtpError.js"

/**
 * TLS settings. Certificates and host names are verified unless `rejectUnauthorized` is `false`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  /** Trusted CA certificates (PEM); the system's store when absent. */
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
  /** Client certificate chain (PEM), for servers that authenticate clients by certificate. */
  readonly cert?: string | Uint8Array | undefined
  /** Client private key (PEM). */
  readonly key?: Redacted.Redacted<string | Uint8Array> | undefined
  /** The name to verify the certificate against and send as SNI; the connect host by default. */
  readonly servername?: string | undefined
  /** The oldest protocol accepted; TLSv1.2 by default. */
  readonly minVersion?: "TLSv1.2" | "TLSv1.3" | undefined
  /** `false` turns certificate verification off. Only for tests and servers you control. */
  readonly rejectUnauthorized?: boolean | undefined
  /** How long the handshake may take; 30 seconds by default. */
  readonly handshakeTimeout?: Duration.DurationInput | undefined
}

/**
 * Where and how to connect.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  readonly host: string
  readonly port: number
  /** A Unix domain socket path; when set, host and port are only used for names. */
  readonly path?: string | undefined
  /** Bind the local end to this address (smtplib's `source_address`). */
  readonly sourceAddress?: { readonly host: string; readonly port?: number | undefined } | undefined
  /** How long the connection may take. */
  readonly timeout: Duration.Duration
  /** Implicit TLS (smtplib's `SMTP_SSL`): the handshake runs before the greeting. */
  readonly tls?: TlsOptions | undefined
}

/**
 * An open connection: the socket to speak over, and the TLS upgrade.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly socket: Socket.Socket
  /** Whether the socket is encrypted now. */
  readonly secure: boolean
  /**
   * Upgrades to TLS (STARTTLS). The caller must have stopped reading from `socket`; the returned
   * socket replaces it. Bytes the server sent before the handshake are never delivered.
   */
  readonly upgradeTls: (options: TlsOptions) => Effect.Effect<Connection, SmtpTlsError | SmtpTimeout>
  /** Closes the connection now, without a goodbye. Must be synchronous (`Effect.sync`): it is run from socket callbacks. */
  readonly close: Effect.Effect<void>
  /**
   * A faster write than `socket.writer`, used when present. It must hand the bytes over when it is
   * called (the engine registers the replies and writes in one synchronous step, with no
   * uninterruptible region, only for such a write), return `Effect.void` when they are buffered,
   * and an Effect that waits only while the buffer is full (backpressure); a failure of the
   * connection surfaces through the socket's `run` as well. Optional: transports without it use the
   * writer, and their writes are made uninterruptible.
   */
  readonly write?: ((bytes: Uint8Array) => Effect.Effect<void, Socket.SocketError>) | undefined
  /**
   * The connection goes through a proxy: the host named in the options is reached from the proxy,
   * so a loopback name (`localhost`) is not this machine, and credentials are not sent in clear to
   * it as they may be to a loopback host.
   */
  readonly proxied?: boolean | undefined
  /** What the TLS layer negotiated, when the connection is encrypted and the transport can tell. */
  readonly tls?: (() => TlsDetails | undefined) | undefined
}

/**
 * A TLS session as negotiated: protocol, cipher and the server's certificate.
 *
 * @since 0.2.0
 * @category models
 */
export interface TlsDetails {
  /** `"TLSv1.3"`. */
  readonly protocol: string | undefined
  /** `"TLS_AES_256_GCM_SHA384"`. */
  readonly cipher: string | undefined
  readonly certificate:
    | {
      readonly subject: string
      readonly issuer: string
      readonly subjectAltNames: ReadonlyArray<string>
      readonly validFrom: Date
      readonly validTo: Date
    }
    | undefined
  /** Whether the certificate was verified for the host (false only with `rejectUnauthorized: false`). */
  readonly authorized: boolean
}

/**
 * The transport service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * The name to greet with when the caller gives none: the fully qualified domain name of this
   * host, else an address literal (`[192.0.2.1]`), as smtplib does.
   */
  readonly localHostname: Effect.Effect<string>
  /**
   * Starts finding `localHostname` without waiting for it, when finding it takes a while (a
   * resolver's answer). Optional: a connection made without a `localHostname` option calls it
   * before it dials, so that the lookup runs during the dial and the greeting, not after them;
   * never called otherwise.
   *
   * @since 0.2.0
   */
  readonly prefetchLocalHostname?: (() => void) | undefined
  readonly connect: (
    options: ConnectOptions
  ) => Effect.Effect<Connection, SmtpConnectError | SmtpTimeout | SmtpTlsError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SmtpTransport extends Context.Tag("effect-smtp/SmtpTransport")<SmtpTransport, Service>() {}
