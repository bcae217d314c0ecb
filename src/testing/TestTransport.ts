/**
 * A capturing transport: an in-memory, permissive SMTP server (`TestServer`) behind
 * `SmtpTransport`. Any code that sends with `SmtpClient`, `SmtpConnection` or `Mailer` runs
 * against it unchanged, with no network: every message accepted is captured (envelope, bytes,
 * decoded), and the server can be told to refuse recipients or answer any stage otherwise.
 *
 * It offers STARTTLS and pretends the handshake (no cryptography: the session is marked secure,
 * certificates are not checked), and AUTH PLAIN and LOGIN (any credentials, or the `users` given).
 *
 * ```ts
 * const transport = yield* TestTransport.make({ refuse: { "gone@example.com": "550 5.1.1 No such user" } })
 * const result = yield* Effect.scoped(
 *   Effect.flatMap(SmtpClient.connect({ host: "mx.test" }), (smtp) => smtp.send(message))
 * ).pipe(Effect.provide(transport.layer))
 * const [captured] = yield* transport.messages
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as MemorySocket from "../internal/memorySocket.js"
import { inspect } from "../internal/testCapture.js"
import * as Protocol from "../internal/testServer.js"
import { SmtpTlsError } from "../SmtpError.js"
import * as SmtpTransport from "../SmtpTransport.js"
import type * as TestServer from "./TestServer.js"

/**
 * The transport and what its server saw.
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /** The transport, to provide to the code under test. */
  readonly transport: SmtpTransport.Service
  /** The messages accepted so far, as received. */
  readonly received: Effect.Effect<ReadonlyArray<TestServer.Received>>
  /** The messages accepted so far, decoded (`TestServer.decode`). */
  readonly messages: Effect.Effect<ReadonlyArray<TestServer.Captured>>
  /** Waits until at least `n` messages have been accepted, then returns them decoded. */
  readonly awaitMessages: (n: number) => Effect.Effect<ReadonlyArray<TestServer.Captured>>
  /**
   * The server's side of connection `i` (default the last): `C:` and `S:` lines, credentials
   * and message data summarised.
   */
  readonly transcript: (i?: number) => ReadonlyArray<string>
  /** How many connections were opened. */
  readonly connections: () => number
  /** Forgets the messages captured so far. */
  readonly clear: Effect.Effect<void>
}

/**
 * The service, for code that reaches the capturing transport through the context.
 *
 * @since 0.2.0
 * @category tags
 */
export class TestTransport extends Context.Tag("effect-smtp/testing/TestTransport")<TestTransport, Service>() {}

/**
 * The transport and its layer, as `make` returns them.
 *
 * @since 0.2.0
 * @category models
 */
export interface Made extends Service {
  /** Provides `SmtpTransport` (and `TestTransport`). */
  readonly layer: Layer.Layer<SmtpTransport.SmtpTransport | TestTransport>
}

const connectTo = (server: Protocol.Server): SmtpTransport.Service["connect"] => (options) =>
  Effect.gen(function*() {
    const outbox = yield* Queue.unbounded<MemorySocket.Event>()
    let awaitingTls = false
    let clientClosed = false
    const connection = server.open({
      write: (bytes) => Queue.unsafeOffer(outbox, bytes),
      close: () => Queue.unsafeOffer(outbox, "close"),
      startTls: () => {
        awaitingTls = true
      }
    }, options.tls !== undefined)
    const clientEnd = () => {
      if (clientClosed) return
      clientClosed = true
      connection.end()
      Queue.unsafeOffer(outbox, "close")
    }
    const socket = MemorySocket.make(outbox, {
      isClosed: () => connection.closed,
      receive: (chunk) => connection.push(chunk),
      clientEnd
    })
    yield* Effect.addFinalizer(() => Effect.sync(clientEnd))
    const make = (): SmtpTransport.Connection => ({
      socket,
      secure: connection.secure,
      close: Effect.sync(clientEnd),
      upgradeTls: () =>
        Effect.suspend(() => {
          if (!awaitingTls) {
            return Effect.fail(
              new SmtpTlsError({ reason: "protocol", detail: "the test server did not expect a TLS handshake" })
            )
          }
          awaitingTls = false
          connection.tlsStarted()
          return Effect.succeed(make())
        })
    })
    connection.start()
    return make()
  })

/**
 * Builds a capturing transport with a fresh server.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: TestServer.Options = {}): Effect.Effect<Made> =>
  Effect.sync(() => {
    const server = new Protocol.Server(options, true)
    const transport: SmtpTransport.Service = {
      localHostname: Effect.succeed("client.test"),
      connect: connectTo(server)
    }
    const service: Service = { transport, ...inspect(server) }
    return {
      ...service,
      layer: Layer.succeedContext(
        Context.make(SmtpTransport.SmtpTransport, transport).pipe(Context.add(TestTransport, service))
      )
    }
  })

/**
 * A capturing transport as a Layer: `SmtpTransport` for the code under test, `TestTransport` for
 * the test to read what it sent.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: TestServer.Options = {}): Layer.Layer<SmtpTransport.SmtpTransport | TestTransport> =>
  Layer.unwrapEffect(Effect.map(make(options), (made) => made.layer))
