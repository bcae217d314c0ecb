/**
 * The part of the Workers runtime module `cloudflare:sockets` that `CloudflareSmtpTransport` uses,
 * declared here so that the project type-checks without `@cloudflare/workers-types`, whose global
 * declarations would clash with Node's. Only the compiler reads this file; it is not shipped, and
 * no public declaration refers to it.
 *
 * https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/
 */
declare module "cloudflare:sockets" {
  export interface SocketAddress {
    readonly hostname: string
    readonly port: number
  }

  export interface SocketOptions {
    readonly secureTransport?: "off" | "on" | "starttls"
    readonly allowHalfOpen?: boolean
  }

  export interface SocketInfo {
    readonly remoteAddress?: string
    readonly localAddress?: string
  }

  export interface TlsOptions {
    /** Being withdrawn by the runtime (it may throw): the certificate is checked for the connect host. */
    readonly expectedServerHostname?: string
  }

  export interface Socket {
    readonly readable: ReadableStream<Uint8Array>
    readonly writable: WritableStream<Uint8Array>
    /** Resolves once connected (and, for a TLS socket, once the handshake is done). */
    readonly opened: Promise<SocketInfo>
    readonly closed: Promise<void>
    close(): Promise<void>
    /** Needs `secureTransport: "starttls"`, and neither stream locked. */
    startTls(options?: TlsOptions): Socket
  }

  export function connect(address: SocketAddress | string, options?: SocketOptions): Socket
}
