/**
 * Node's connection (`node:net`, `node:tls`, wrapped as `@effect/platform` Sockets), shared by
 * `NodeSmtpTransport` (direct) and `NodeSmtpProxy` (through a tunnel). Its own module so that a
 * program without a proxy never bundles the proxy code, even through the `effect-smtp/node` barrel.
 *
 * @internal
 */
import * as NodeSocket from "@effect/platform-node-shared/NodeSocket"
import * as Socket from "@effect/platform/Socket"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { SmtpConnectError, SmtpTimeout, SmtpTlsError, type TlsFailureReason } from "../SmtpError.js"
import type * as SmtpTransport from "../SmtpTransport.js"
import * as Timer from "./timer.js"
import { handshakeTimedOut, withHandshakeTimeout } from "./tlsHandshake.js"

const untrusted = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REJECTED",
  "INVALID_CA"
])
const expired = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"])

/** Maps a Node TLS error to a reason a caller can act on. */
export const classifyTlsError = (error: unknown): SmtpTlsError => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : ""
  const text = error instanceof Error ? error.message : String(error)
  let reason: TlsFailureReason = "other"
  let detail = text
  if (untrusted.has(code)) {
    reason = "untrusted"
    detail = `the server's certificate is not trusted (${code}): ${text}`
  } else if (expired.has(code)) {
    reason = "expired"
    detail = `the server's certificate is expired or not yet valid (${code}): ${text}`
  } else if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    reason = "hostname-mismatch"
    detail = `the server's certificate is for another name: ${text}`
  } else if (code.startsWith("ERR_SSL_") || /alert|protocol|wrong version/i.test(text)) {
    reason = "protocol"
    detail = `TLS protocol failure (${code || "no code"}): ${text}`
  }
  return new SmtpTlsError({ reason, detail, cause: error })
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

const isIp = (host: string) => Net.isIP(host.replace(/^\[|\]$/g, "")) !== 0

const keyValue = (key: Redacted.Redacted<string | Uint8Array> | undefined) =>
  key === undefined ? undefined : Redacted.value(key)

const handshake = (
  raw: Net.Socket,
  host: string,
  options: SmtpTransport.TlsOptions
): Effect.Effect<Tls.TLSSocket, SmtpTlsError | SmtpTimeout> => {
  const timeout = Duration.decode(options.handshakeTimeout ?? Duration.seconds(30))
  const servername = options.servername ?? host.replace(/^\[|\]$/g, "")
  // under Effect's own clock the timeout is a timer in the handshake's callbacks (no race, no
  // fiber); under another clock (a TestClock), Effect.timeoutFail
  return Effect.clockWith((clock) => {
    const timerInside = clock === Timer.defaultClock
    const tls = tlsHandshake(raw, servername, options, timerInside ? timeout : undefined)
    return timerInside ? tls : withHandshakeTimeout(timeout)(tls)
  })
}

/**
 * A timeout as a timer inside an `Effect.async` that waits on `socket` (under Effect's own clock:
 * no race): destroys the socket and fails with `error()` when it runs out. Returns the canceller,
 * for every other way the wait ends.
 */
const failAfter = <E>(
  socket: Net.Socket,
  timeout: Duration.Duration,
  error: () => E,
  resume: (effect: Effect.Effect<never, E>) => void
): () => void =>
  Timer.schedule(() => {
    socket.destroy()
    resume(Effect.fail(error()))
  }, Duration.toMillis(timeout))

/** The handshake on `raw`; with `timeout`, failed by a timer of its own when it takes longer. */
const tlsHandshake = (
  raw: Net.Socket,
  servername: string,
  options: SmtpTransport.TlsOptions,
  timeout: Duration.Duration | undefined
): Effect.Effect<Tls.TLSSocket, SmtpTlsError> =>
  Effect.async<Tls.TLSSocket, SmtpTlsError>((resume) => {
    const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca]
    let socket: Tls.TLSSocket
    try {
      socket = connectTls()
    } catch (error) {
      // a malformed CA, certificate or key is refused by node:tls synchronously
      resume(Effect.fail(new SmtpTlsError({ reason: "other", detail: `invalid TLS options: ${describe(error)}` })))
      return
    }
    function connectTls() {
      return Tls.connect({
        socket: raw,
        host: servername,
        // SNI is for DNS names only (RFC 6066 §3)
        ...(isIp(servername) ? {} : { servername }),
        ...(ca === undefined ? {} : { ca: ca.map((c) => typeof c === "string" ? c : Buffer.from(c)) }),
        ...(options.cert === undefined ? {} : { cert: options.cert }),
        ...(options.key === undefined ? {} : { key: keyValue(options.key) }),
        minVersion: options.minVersion ?? "TLSv1.2",
        rejectUnauthorized: options.rejectUnauthorized ?? true
      } as Tls.ConnectionOptions)
    }
    const cancelTimer = timeout === undefined ?
      undefined :
      failAfter(socket, timeout, () => handshakeTimedOut(timeout), resume)
    const onError = (error: Error) => {
      cancelTimer?.()
      socket.destroy()
      resume(Effect.fail(classifyTlsError(error)))
    }
    socket.once("error", onError)
    socket.once("secureConnect", () => {
      cancelTimer?.()
      socket.off("error", onError)
      socket.on("error", () => {})
      socket.setNoDelay(true)
      resume(Effect.succeed(socket))
    })
    return Effect.sync(() => {
      cancelTimer?.()
      socket.destroy()
    })
  })

const wrap = (
  duplex: Net.Socket,
  raw: Net.Socket,
  host: string,
  secure: boolean
): Effect.Effect<SmtpTransport.Connection> =>
  Effect.map(NodeSocket.fromDuplex(Effect.succeed(duplex)), (socket) => ({
    socket,
    secure,
    upgradeTls: (options) => Effect.flatMap(handshake(raw, host, options), (tls) => wrap(tls, raw, host, true)),
    close: Effect.sync(() => {
      duplex.destroy()
      raw.destroy()
    }),
    write: (bytes) => bufferedWrite(duplex, bytes),
    tls: () => (secure ? tlsDetails(duplex as Tls.TLSSocket) : undefined)
  }))

/** Distinguished name fields as `CN=mx.example.com, O=Example`. */
const dn = (fields: Readonly<Record<string, string | ReadonlyArray<string>>> | undefined): string =>
  fields === undefined ?
    "" :
    Object.entries(fields).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`).join(", ")

const tlsDetails = (socket: Tls.TLSSocket): SmtpTransport.TlsDetails => {
  const cipher = socket.getCipher?.()
  const peer = socket.getPeerCertificate?.()
  const hasPeer = peer !== undefined && peer !== null && Object.keys(peer).length > 0
  return {
    protocol: socket.getProtocol?.() ?? undefined,
    cipher: cipher?.standardName ?? cipher?.name,
    certificate: hasPeer ?
      {
        subject: dn(peer.subject as unknown as Record<string, string>),
        issuer: dn(peer.issuer as unknown as Record<string, string>),
        subjectAltNames: (peer.subjectaltname ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""),
        validFrom: new Date(peer.valid_from),
        validTo: new Date(peer.valid_to)
      } :
      undefined,
    authorized: socket.authorized
  }
}

const writeFailure = (cause: unknown) => new Socket.SocketGenericError({ reason: "Write", cause })

/**
 * Hands the bytes to Node's stream buffer and completes at once unless the buffer is full, then
 * waits for 'drain' (Node's own backpressure): the platform writer waits for every write's
 * callback, one more suspension per write. Errors also end the Socket's `run`.
 */
const bufferedWrite = (duplex: Net.Socket, bytes: Uint8Array): Effect.Effect<void, Socket.SocketError> => {
  if (duplex.destroyed || !duplex.writable) return Effect.fail(writeFailure(new Error("the socket is closed")))
  if (duplex.write(bytes)) return Effect.void
  return Effect.async<void, Socket.SocketError>((resume) => {
    const onDrain = () => {
      cleanup()
      resume(Effect.void)
    }
    const onClose = () => {
      cleanup()
      resume(Effect.fail(writeFailure(new Error("the socket closed before its buffer drained"))))
    }
    const cleanup = () => {
      duplex.off("drain", onDrain)
      duplex.off("close", onClose)
    }
    duplex.on("drain", onDrain)
    duplex.on("close", onClose)
    return Effect.sync(cleanup)
  })
}

/**
 * How a connection reaches the SMTP server through something in between (a proxy): where to dial,
 * what to do on the open socket before SMTP starts, and how to name a failure. The plain path never
 * references one, so a program without a proxy does not bundle the proxy code.
 */
export interface Tunnel {
  /** Where to dial instead of the SMTP server, or a failure before dialling (a bad proxy URL...). */
  readonly target: (
    options: SmtpTransport.ConnectOptions
  ) => Either.Either<{ readonly host: string; readonly port: number; readonly name: string }, unknown>
  /** The cause of a failed dial. */
  readonly unreachable: (cause: Error) => unknown
  /** Opens the tunnel on the connected socket. */
  readonly open: (socket: Net.Socket, options: SmtpTransport.ConnectOptions) => Effect.Effect<void, SmtpConnectError>
}

export const connectVia = (tunnel: Tunnel | undefined) =>
(
  options: SmtpTransport.ConnectOptions
): Effect.Effect<
  SmtpTransport.Connection,
  SmtpConnectError | SmtpTimeout | SmtpTlsError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const address = options.path ?? `${options.host}:${options.port}`
    let via: { readonly host: string; readonly port: number; readonly name: string } | undefined
    if (tunnel !== undefined) {
      const target = tunnel.target(options)
      if (Either.isLeft(target)) return yield* new SmtpConnectError({ address, cause: target.left })
      via = target.right
    }
    const through = via === undefined ? "" : ` through ${via.name}`
    const timedOut = () =>
      new SmtpTimeout({
        phase: `connecting to ${address}${through}`,
        timeoutMillis: Duration.toMillis(options.timeout)
      })
    // under Effect's own clock the timeout of a direct dial is a timer in its callbacks (no race,
    // no fiber); a tunnel's opening, or another clock (a TestClock): Effect.timeoutFail
    const timerInside = tunnel === undefined && (yield* Effect.clock) === Timer.defaultClock
    let raw: Net.Socket | undefined
    yield* Effect.addFinalizer(() => Effect.sync(() => raw?.destroy()))
    const dial = Effect.async<Net.Socket, SmtpConnectError | SmtpTimeout>((resume) => {
      let s: Net.Socket
      try {
        s = open()
      } catch (cause) {
        // an invalid local address and the like are refused synchronously
        resume(Effect.fail(new SmtpConnectError({ address, cause })))
        return
      }
      function open() {
        return options.path !== undefined ?
          Net.createConnection({ path: options.path }) :
          Net.createConnection({
            host: (via?.host ?? options.host).replace(/^\[|\]$/g, ""),
            port: via?.port ?? options.port,
            noDelay: true,
            ...(options.sourceAddress === undefined ? {} : {
              localAddress: options.sourceAddress.host,
              ...(options.sourceAddress.port === undefined ? {} : { localPort: options.sourceAddress.port })
            })
          })
      }
      raw = s
      const cancelTimer = timerInside ? failAfter(s, options.timeout, timedOut, resume) : undefined
      const onError = (cause: Error) => {
        cancelTimer?.()
        s.destroy()
        resume(Effect.fail(
          new SmtpConnectError({
            address,
            cause: tunnel === undefined ? cause : tunnel.unreachable(cause)
          })
        ))
      }
      s.once("error", onError)
      s.once("connect", () => {
        cancelTimer?.()
        s.off("error", onError)
        // errors surface through the Socket's run; this keeps an error between runs from crashing
        s.on("error", () => {})
        resume(Effect.succeed(s))
      })
      return Effect.sync(() => {
        cancelTimer?.()
        s.destroy()
      })
    })
    const socket = yield* timerInside ?
      dial :
      (tunnel === undefined ? dial : Effect.tap(dial, (s) => tunnel.open(s, options)))
        .pipe(Effect.timeoutFail({ duration: options.timeout, onTimeout: timedOut }))
    const connection = options.tls !== undefined ?
      yield* wrap(yield* handshake(socket, options.host, options.tls), socket, options.host, true) :
      yield* wrap(socket, socket, options.host, false)
    return tunnel === undefined ? connection : { ...connection, proxied: true }
  })
