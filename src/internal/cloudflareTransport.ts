/**
 * The transport over the Workers socket API (`connect` of `cloudflare:sockets`), given that
 * `connect` as a parameter so that it can be exercised with a stand-in outside the runtime.
 *
 * What the runtime imposes, as observed with workerd:
 * - `startTls()` refuses a socket whose `readable` or `writable` is locked, and a reader cannot be
 *   released while a read is pending: stopping the reader cancels the readable, after which the
 *   lock can go (the connection stays open and `startTls` works; bytes not yet read are dropped,
 *   as the transport contract wants).
 * - Failures say little: a refused connection and a failed `secureTransport: "on"` handshake both
 *   reject `opened` with "proxy request failed, cannot connect to the specified address", and a
 *   failed `startTls` handshake rejects the new socket's `opened` with "internal error". Implicit
 *   TLS is therefore a plaintext connection upgraded at once (`"starttls"`, then `startTls()`
 *   before any byte), so that a TLS failure is an `SmtpTlsError`, not a connect error.
 * - The writer's `desiredSize` says nothing about the network (always 1), so the fast `write`
 *   counts the bytes handed over and not yet written.
 *
 * @internal
 */
import * as Socket from "@effect/platform/Socket"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Scope from "effect/Scope"
import { SmtpConnectError, SmtpTimeout, SmtpTlsError } from "../SmtpError.js"
import type * as SmtpTransport from "../SmtpTransport.js"
import { withHandshakeTimeout } from "./tlsHandshake.js"

/** What the transport needs of a `cloudflare:sockets` Socket. */
export interface CloudflareSocket {
  readonly readable: ReadableStream<Uint8Array>
  readonly writable: WritableStream<Uint8Array>
  readonly opened: Promise<unknown>
  readonly closed: Promise<unknown>
  close(): Promise<unknown>
  startTls(): CloudflareSocket
}

/** `connect` of `cloudflare:sockets`, as the transport calls it. */
export type Connect = (
  address: { readonly hostname: string; readonly port: number },
  options: { readonly secureTransport: "starttls"; readonly allowHalfOpen: boolean }
) => CloudflareSocket

export interface Options {
  readonly localHostname?: string | undefined
}

/** Bytes handed to the socket and not yet written above which `write` waits. */
export const WRITE_BUFFER_LIMIT = 128 * 1024

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const unbracket = (host: string) => host.replace(/^\[|\]$/g, "")

const sameHost = (a: string, b: string) => unbracket(a).toLowerCase() === unbracket(b).toLowerCase()

/**
 * The TLS options Workers cannot honour: the runtime verifies every certificate against the
 * roots it trusts, for the connect host, with its own protocol versions, and presents no client
 * certificate. Each of these fails rather than being ignored.
 */
export const unsupportedTls = (options: SmtpTransport.TlsOptions, host: string): SmtpTlsError | undefined => {
  const refused: Array<string> = []
  if (options.ca !== undefined) {
    refused.push(
      "tls.ca (Workers trust their own roots only; with workerd, add the CA to the network service's " +
        "tlsOptions.trustedCertificates)"
    )
  }
  if (options.cert !== undefined || options.key !== undefined) {
    refused.push("tls.cert / tls.key (Workers present no client certificate)")
  }
  if (options.minVersion !== undefined) {
    refused.push("tls.minVersion (Workers choose the protocol versions; none can be required)")
  }
  if (options.rejectUnauthorized === false) {
    refused.push("tls.rejectUnauthorized: false (Workers always verify the certificate)")
  }
  if (options.servername !== undefined && !sameHost(options.servername, host)) {
    refused.push(
      `tls.servername ${JSON.stringify(options.servername)} (Workers verify the certificate for the connect ` +
        "host; connect to that name instead)"
    )
  }
  return refused.length === 0 ? undefined : new SmtpTlsError({
    reason: "other",
    detail: `not supported by Cloudflare Workers: ${refused.join("; ")}`
  })
}

/** Resolves or rejects with the promise, marked as handled so that the runtime reports nothing. */
const settle = <A>(promise: Promise<A>): Effect.Effect<A, unknown> =>
  Effect.async<A, unknown>((resume) => {
    promise.then((value) => resume(Effect.succeed(value)), (error) => resume(Effect.fail(error)))
  })

const ignore = (promise: Promise<unknown>): void => {
  promise.then(undefined, () => {})
}

const closedSockets = new WeakSet<CloudflareSocket>()

/** Closes a socket once (the scope, a failure and the engine may each ask). */
const closeOnce = (socket: CloudflareSocket): void => {
  if (closedSockets.has(socket)) return
  closedSockets.add(socket)
  ignore(socket.close())
}

const writeFailure = (cause: unknown) => new Socket.SocketGenericError({ reason: "Write", cause })

/** Which Cloudflare socket the connection is on now: the scope closes that one. */
interface Current {
  socket: CloudflareSocket
}

/**
 * An `@effect/platform` Socket over the socket's streams, and what the connection needs besides:
 * the fast write, the release of both streams (before `startTls`) and the close.
 */
const adapt = (cf: CloudflareSocket) => {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  let readStarted = false
  let unlocked: Promise<void> = Promise.resolve()
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined
  let failure: unknown = undefined
  let closed = false
  let pendingBytes = 0
  const waiters = new Set<(error: unknown) => void>()

  const wakeWaiters = (error: unknown) => {
    for (const waiter of waiters) waiter(error)
    waiters.clear()
  }
  const close = () => {
    if (closed) return
    closed = true
    wakeWaiters(new Error("the socket is closed"))
    closeOnce(cf)
  }
  /** A write failed: the socket is closed, which ends the reader too. */
  const fail = (cause: unknown) => {
    failure ??= cause
    close()
  }

  /** Cancels the readable (a pending read cannot be abandoned otherwise) and releases it. */
  const stopReading = () => {
    const r = reader
    if (r === undefined) return
    reader = undefined
    const cancelled = r.cancel().catch(() => {})
    try {
      r.releaseLock()
    } catch {
      // a runtime that rejects pending reads only once the cancel has settled
      unlocked = cancelled.then(() => r.releaseLock())
    }
  }

  const getWriter = () => (writer ??= cf.writable.getWriter())

  const run = <_, E = never, R = never>(
    handler: (_: Uint8Array) => Effect.Effect<_, E, R> | void,
    options?: { readonly onOpen?: Effect.Effect<void> | undefined }
  ): Effect.Effect<void, Socket.SocketError | E, R> =>
    Effect.scopedWith((scope) =>
      Effect.gen(function*() {
        if (readStarted) {
          return yield* Effect.fail(
            new Socket.SocketGenericError({ reason: "Read", cause: new Error("a Cloudflare socket can be read once") })
          )
        }
        readStarted = true
        const fiberSet = yield* Scope.extend(FiberSet.make<unknown, E | Socket.SocketError>(), scope)
        const runFork = yield* FiberSet.runtime(fiberSet)<R>()
        const r = cf.readable.getReader()
        reader = r
        yield* Scope.addFinalizer(scope, Effect.sync(stopReading))
        const loop = async () => {
          while (true) {
            const { done, value } = await r.read()
            // stopped: what came is dropped (before a handshake it must never be read)
            if (done || reader !== r) return
            const result = handler(value)
            if (Effect.isEffect(result)) runFork(result)
          }
        }
        loop().then(
          () => Deferred.unsafeDone(fiberSet.deferred, Effect.void),
          (cause) =>
            Deferred.unsafeDone(
              fiberSet.deferred,
              Effect.fail(new Socket.SocketGenericError({ reason: "Read", cause: failure ?? cause }))
            )
        )
        if (options?.onOpen !== undefined) yield* options.onOpen
        return yield* FiberSet.join(fiberSet)
      })
    ).pipe(Effect.interruptible)

  const encoder = new TextEncoder()
  /** The platform writer: each write waits until the runtime has written it. */
  const writeAndWait = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
    Effect.suspend(() => {
      if (Socket.isCloseEvent(chunk)) return Effect.sync(close)
      if (closed) return Effect.fail(writeFailure(failure ?? new Error("the socket is closed")))
      const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk
      return Effect.async<void, Socket.SocketError>((resume) => {
        const failed = (cause: unknown) => {
          fail(cause)
          resume(Effect.fail(writeFailure(cause)))
        }
        let written: Promise<void>
        try {
          // throws once the stream has been handed to startTls()
          written = getWriter().write(bytes)
        } catch (cause) {
          return failed(cause)
        }
        written.then(() => resume(Effect.void), failed)
      })
    })

  /**
   * The transport's fast write: hands the bytes over at once, and waits only while more than
   * `WRITE_BUFFER_LIMIT` bytes are still being written.
   */
  const write = (bytes: Uint8Array): Effect.Effect<void, Socket.SocketError> => {
    if (closed) return Effect.fail(writeFailure(failure ?? new Error("the socket is closed")))
    let w: WritableStreamDefaultWriter<Uint8Array>
    try {
      w = getWriter()
    } catch (cause) {
      fail(cause)
      return Effect.fail(writeFailure(cause))
    }
    const size = bytes.byteLength
    pendingBytes += size
    w.write(bytes).then(() => {
      pendingBytes -= size
      if (pendingBytes <= WRITE_BUFFER_LIMIT) wakeWaiters(undefined)
    }, fail)
    if (pendingBytes <= WRITE_BUFFER_LIMIT) return Effect.void
    return Effect.async<void, Socket.SocketError>((resume) => {
      const waiter = (error: unknown) =>
        resume(error === undefined ? Effect.void : Effect.fail(writeFailure(failure ?? error)))
      waiters.add(waiter)
      return Effect.sync(() => {
        waiters.delete(waiter)
      })
    })
  }

  /** Both streams unlocked, as `startTls` requires; reading must have been stopped. */
  const release = (): Promise<void> => {
    stopReading()
    if (writer !== undefined) {
      writer.releaseLock()
      writer = undefined
    }
    return unlocked
  }

  const socket: Socket.Socket = Socket.Socket.of({
    [Socket.TypeId]: Socket.TypeId,
    run,
    runRaw: run,
    // releasing the writer ends nothing: the STARTTLS upgrade needs the connection open
    writer: Effect.succeed(writeAndWait)
  })
  return { socket, write, release, close }
}

const handshakeTimeoutOf = (options: SmtpTransport.TlsOptions) =>
  Duration.decode(options.handshakeTimeout ?? Duration.seconds(30))

/** `startTls()` on the plaintext socket, and the wait for the new one to open (the handshake). */
const handshake = (
  current: Current,
  release: () => Promise<void>,
  host: string,
  options: SmtpTransport.TlsOptions
): Effect.Effect<CloudflareSocket, SmtpTlsError> => {
  const unsupported = unsupportedTls(options, host)
  if (unsupported !== undefined) return Effect.fail(unsupported)
  const timeout = handshakeTimeoutOf(options)
  return Effect.gen(function*() {
    yield* Effect.tryPromise({
      try: release,
      catch: (cause) =>
        new SmtpTlsError({
          reason: "other",
          detail: `could not release the plaintext streams: ${describe(cause)}`,
          cause
        })
    })
    const tls = yield* Effect.try({
      try: () => current.socket.startTls(),
      catch: (cause) => new SmtpTlsError({ reason: "other", detail: `startTls() failed: ${describe(cause)}`, cause })
    })
    current.socket = tls
    ignore(tls.closed)
    yield* settle(tls.opened).pipe(
      Effect.mapError((cause) =>
        new SmtpTlsError({
          reason: "other",
          // the runtime logs the reason and tells the Worker only "internal error"
          detail: "the TLS handshake failed; Workers do not say why (an untrusted, expired or misnamed " +
            `certificate, or a protocol failure): ${describe(cause)}`,
          cause
        })
      )
    )
    return tls
  }).pipe(
    withHandshakeTimeout(timeout),
    Effect.tapError(() => Effect.sync(() => closeOnce(current.socket)))
  )
}

const wrap = (current: Current, cf: CloudflareSocket, host: string, secure: boolean): SmtpTransport.Connection => {
  const adapted = adapt(cf)
  return {
    socket: adapted.socket,
    secure,
    upgradeTls: (options) =>
      secure ?
        Effect.fail(new SmtpTlsError({ reason: "protocol", detail: "the connection is already encrypted" })) :
        Effect.map(handshake(current, adapted.release, host, options), (tls) => wrap(current, tls, host, true)),
    close: Effect.sync(adapted.close),
    write: adapted.write,
    // the runtime tells nothing of the session; it always verifies the certificate
    tls:
      () => (secure ? { protocol: undefined, cipher: undefined, certificate: undefined, authorized: true } : undefined)
  }
}

/** The connect of the transport service, over the given `cloudflare:sockets` connect. */
export const connectWith = (connect: Connect) =>
(
  options: SmtpTransport.ConnectOptions
): Effect.Effect<SmtpTransport.Connection, SmtpConnectError | SmtpTimeout | SmtpTlsError, Scope.Scope> =>
  Effect.gen(function*() {
    const address = options.path ?? `${options.host}:${options.port}`
    if (options.path !== undefined) {
      return yield* new SmtpConnectError({
        address,
        cause: new Error("Unix domain sockets are not available in Cloudflare Workers")
      })
    }
    if (options.sourceAddress !== undefined) {
      return yield* new SmtpConnectError({
        address,
        cause: new Error("Cloudflare Workers cannot bind a local address (sourceAddress)")
      })
    }
    if (options.tls !== undefined) {
      const unsupported = unsupportedTls(options.tls, options.host)
      if (unsupported !== undefined) return yield* unsupported
    }
    const host = unbracket(options.host)
    const cf = yield* Effect.try({
      // an IPv6 literal keeps its brackets: the runtime joins hostname and port with a colon
      try: () =>
        connect({ hostname: host.includes(":") ? `[${host}]` : host, port: options.port }, {
          secureTransport: "starttls",
          allowHalfOpen: false
        }),
      catch: (cause) => new SmtpConnectError({ address, cause })
    })
    const current: Current = { socket: cf }
    ignore(cf.closed)
    yield* Effect.addFinalizer(() => Effect.sync(() => closeOnce(current.socket)))
    yield* settle(cf.opened).pipe(
      Effect.mapError((cause) => new SmtpConnectError({ address, cause })),
      Effect.timeoutFail({
        duration: options.timeout,
        onTimeout: () =>
          new SmtpTimeout({ phase: `connecting to ${address}`, timeoutMillis: Duration.toMillis(options.timeout) })
      }),
      Effect.tapError(() => Effect.sync(() => closeOnce(cf)))
    )
    if (options.tls === undefined) return wrap(current, cf, options.host, false)
    // implicit TLS: the handshake before any byte is read
    const tls = yield* handshake(current, () => Promise.resolve(), options.host, options.tls)
    return wrap(current, tls, options.host, true)
  })

/** The transport service over the given `cloudflare:sockets` connect. */
export const make = (connect: Connect, options: Options = {}): SmtpTransport.Service => ({
  connect: connectWith(connect),
  localHostname: Effect.succeed(options.localHostname ?? "[127.0.0.1]")
})
