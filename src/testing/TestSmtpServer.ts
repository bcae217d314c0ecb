/**
 * A real SMTP server in this process for integration tests: it listens on `127.0.0.1` with an
 * ephemeral port (`node:net`), optionally with STARTTLS (or implicit TLS) under a certificate
 * generated at start-up that the client can trust (`ca`), and AUTH PLAIN and LOGIN. It is the
 * protocol of `TestServer` (the one `TestTransport` runs in memory) over a socket, so it takes
 * the same options (refusals per recipient, replies at any stage, required AUTH) and captures the
 * same way.
 *
 * ```ts
 * const server = yield* TestSmtpServer.make({ tls: true, users: { app: "secret" } })
 * yield* Effect.scoped(Effect.flatMap(
 *   SmtpClient.connect({ ...server.clientOptions, auth: { user: "app", password: Redacted.make("secret") } }),
 *   (smtp) => smtp.send(message)
 * )).pipe(Effect.provide(NodeSmtpTransport.layer))
 * const [received] = yield* server.messages
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { inspect } from "../internal/testCapture.js"
import * as Certificate from "../internal/testCertificate.js"
import * as Protocol from "../internal/testServer.js"
import type * as SmtpClient from "../SmtpClient.js"
import type * as TestServer from "./TestServer.js"
import type * as TestTransport from "./TestTransport.js"

/**
 * Options: the protocol's (`TestServer.Options`) and the listener's.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends TestServer.Options {
  /**
   * TLS with a certificate generated at start-up (an ECDSA P-256 CA and a certificate it signs
   * for localhost, 127.0.0.1 and ::1): `true` offers STARTTLS; `{ implicit: true }` speaks TLS
   * from the first byte instead. Default: plaintext only.
   */
  readonly tls?: boolean | { readonly implicit?: boolean | undefined } | undefined
  /** The address to listen on. Default `"127.0.0.1"`. */
  readonly host?: string | undefined
  /** Default 0: a free port. */
  readonly port?: number | undefined
}

/**
 * A running server and what it received.
 *
 * @since 0.2.0
 * @category models
 */
export interface Service extends Omit<TestTransport.Service, "transport"> {
  readonly host: string
  readonly port: number
  /** The CA certificate (PEM) to trust (`tls: { ca }`), when TLS is on. */
  readonly ca: string | undefined
  /** The server's certificate (PEM), when TLS is on. */
  readonly cert: string | undefined
  /**
   * `SmtpClient` options that reach this server: host, port, the security it offers (`"starttls"`,
   * `"tls"` or `"none"`) and the CA to trust. Spread them into yours (or the `Mailer`'s).
   */
  readonly clientOptions: {
    readonly host: string
    readonly port: number
    readonly security: "starttls" | "tls" | "none"
    readonly tls?: { readonly ca: string } | undefined
  } & SmtpClient.Options
}

/**
 * @since 0.2.0
 * @category tags
 */
export class TestSmtpServer extends Context.Tag("effect-smtp/testing/TestSmtpServer")<TestSmtpServer, Service>() {}

const serve = (
  server: Protocol.Server,
  raw: Net.Socket,
  context: Tls.SecureContext | undefined,
  implicit: boolean
) => {
  raw.setNoDelay(true)
  let current: Net.Socket = raw
  let connection: Protocol.Connection | undefined
  const onData = (chunk: Buffer) => connection?.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length))
  const secure = (socket: Net.Socket, started: () => void) => {
    socket.removeListener("data", onData)
    const tls = new Tls.TLSSocket(socket, { isServer: true, secureContext: context!, requestCert: false })
    tls.once("secure", () => {
      current = tls
      started()
    })
    tls.on("data", onData)
    tls.on("error", () => tls.destroy())
    tls.on("close", () => connection?.end())
  }
  const io: Protocol.Io = {
    write: (bytes) => {
      if (!current.destroyed) current.write(bytes)
    },
    close: () => current.end(),
    startTls: () => secure(raw, () => connection?.tlsStarted())
  }
  raw.on("error", () => raw.destroy())
  raw.on("close", () => connection?.end())
  if (implicit) {
    connection = server.open(io, true)
    secure(raw, () => connection!.start())
  } else {
    raw.on("data", onData)
    connection = server.open(io, false)
    connection.start()
  }
}

/**
 * Starts a server; it stops (and drops its connections) when the Scope closes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { host = "127.0.0.1", port = 0, tls, ...serverOptions } = options
    const implicit = typeof tls === "object" && tls.implicit === true
    const pki = tls === undefined || tls === false ? undefined : yield* Effect.promise(() => Certificate.generate())
    const context = pki === undefined ? undefined : Tls.createSecureContext({ key: pki.key, cert: pki.cert })
    const server = new Protocol.Server(serverOptions, context !== undefined && !implicit)
    const sockets = new Set<Net.Socket>()
    const listener = yield* Effect.acquireRelease(
      Effect.async<Net.Server>((resume) => {
        const net = Net.createServer((socket) => {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          serve(server, socket, context, implicit)
        })
        net.on("error", (error) => resume(Effect.die(error)))
        net.listen(port, host, () => resume(Effect.succeed(net)))
      }),
      (net) =>
        Effect.async<void>((resume) => {
          for (const socket of sockets) socket.destroy()
          net.close(() => resume(Effect.void))
        })
    )
    const address = listener.address() as Net.AddressInfo
    const security = pki === undefined ? "none" : implicit ? "tls" : "starttls"
    return {
      ...inspect(server),
      host,
      port: address.port,
      ca: pki?.ca,
      cert: pki?.cert,
      clientOptions: {
        host,
        port: address.port,
        security,
        ...(pki === undefined ? {} : { tls: { ca: pki.ca } })
      }
    }
  })

/**
 * A server as a Layer: `TestSmtpServer` (its address, CA and captures) for the test, which then
 * connects with `NodeSmtpTransport` and `clientOptions`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TestSmtpServer> => Layer.scoped(TestSmtpServer, make(options))
