/**
 * The transport of `probe`: `node:net` and `node:tls` as `NodeSmtpTransport`, but the handshake
 * completes whatever the certificate, so that the whole chain, the trust verdict and the host-name
 * check can be reported (`TlsReport`); then, unless `--insecure`, an unverified certificate fails
 * the upgrade as `NodeSmtpTransport` would (nothing, a login included, goes over it).
 *
 * @internal
 */
import * as NodeSocket from "@effect/platform-node-shared/NodeSocket"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Net from "node:net"
import * as Tls from "node:tls"
import { withHandshakeTimeout } from "../internal/tlsHandshake.js"
import * as NodeSmtpTransport from "../NodeSmtpTransport.js"
import type { SmtpTlsError } from "../SmtpError.js"
import { SmtpConnectError, SmtpTimeout } from "../SmtpError.js"
import * as SmtpTransport from "../SmtpTransport.js"

/** One certificate of the chain the server sent. */
export interface CertificateReport {
  readonly subject: string
  readonly issuer: string
  readonly subjectAltNames: ReadonlyArray<string>
  readonly validFrom: string
  readonly validTo: string
  /** Whole days until `validTo` (negative once expired). */
  readonly daysLeft: number
  readonly fingerprint256: string
}

/** What the TLS handshake showed. */
export interface TlsReport {
  /** `"starttls"` or `"implicit"`. */
  readonly mode: "starttls" | "implicit"
  readonly protocol: string | null
  readonly cipher: string | null
  /** The chain from the server's certificate up, as sent (and completed from the trust store). */
  readonly chain: ReadonlyArray<CertificateReport>
  /** Whether the chain verifies against the trusted CAs. */
  readonly trusted: boolean
  /** Why it does not (OpenSSL's code, such as `SELF_SIGNED_CERT_IN_CHAIN`). */
  readonly trustError: string | null
  /** The name the certificate was checked against. */
  readonly servername: string
  /** Whether the certificate is valid for that name. */
  readonly hostnameMatches: boolean
  readonly hostnameError: string | null
  /** Trusted and for that name. */
  readonly verified: boolean
}

const dn = (fields: object | undefined): string =>
  fields === undefined ?
    "" :
    Object.entries(fields as Record<string, string | ReadonlyArray<string>>)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`).join(", ")

const day = 24 * 60 * 60 * 1000

const chainOf = (socket: Tls.TLSSocket, now: number): ReadonlyArray<CertificateReport> => {
  const chain: Array<CertificateReport> = []
  const seen = new Set<string>()
  let cert: Tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
  while (cert !== undefined && cert !== null && Object.keys(cert).length > 0 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256)
    const validTo = new Date(cert.valid_to)
    chain.push({
      subject: dn(cert.subject),
      issuer: dn(cert.issuer),
      subjectAltNames: (cert.subjectaltname ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""),
      validFrom: new Date(cert.valid_from).toISOString(),
      validTo: validTo.toISOString(),
      daysLeft: Math.floor((validTo.getTime() - now) / day),
      fingerprint256: cert.fingerprint256
    })
    cert = cert.issuerCertificate
  }
  return chain
}

/** The reports of the handshakes, in order, and the transport that records them. */
export interface ProbeTransport {
  readonly reports: Array<TlsReport>
  readonly layer: Layer.Layer<SmtpTransport.SmtpTransport>
}

const isIp = (host: string) => Net.isIP(host.replace(/^\[|\]$/g, "")) !== 0

/** A transport that records every TLS handshake; `strict` fails unverified ones after recording them. */
export const make = (strict: boolean): ProbeTransport => {
  const reports: Array<TlsReport> = []

  const handshake = (
    raw: Net.Socket,
    host: string,
    options: SmtpTransport.TlsOptions,
    mode: TlsReport["mode"]
  ): Effect.Effect<Tls.TLSSocket, SmtpTlsError> => {
    const timeout = Duration.decode(options.handshakeTimeout ?? Duration.seconds(30))
    const servername = options.servername ?? host.replace(/^\[|\]$/g, "")
    return Effect.async<Tls.TLSSocket, SmtpTlsError>((resume) => {
      const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? options.ca : [options.ca]
      let socket: Tls.TLSSocket
      try {
        socket = Tls.connect({
          socket: raw,
          host: servername,
          ...(isIp(servername) ? {} : { servername }),
          ...(ca === undefined ? {} : { ca: ca.map((c) => typeof c === "string" ? c : Buffer.from(c)) }),
          minVersion: options.minVersion ?? "TLSv1.2",
          // always completed, to see the certificate; trust and host name are judged below, apart
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined
        } as Tls.ConnectionOptions)
      } catch (error) {
        resume(Effect.fail(NodeSmtpTransport.classifyTlsError(error)))
        return
      }
      const onError = (error: Error) => {
        socket.destroy()
        resume(Effect.fail(NodeSmtpTransport.classifyTlsError(error)))
      }
      socket.once("error", onError)
      socket.once("secureConnect", () => {
        socket.off("error", onError)
        socket.on("error", () => {})
        const cipher = socket.getCipher()
        const peer = socket.getPeerCertificate()
        const identity = Object.keys(peer).length === 0 ?
          new Error("no certificate") :
          Tls.checkServerIdentity(servername, peer)
        const trustError = socket.authorizationError === null || socket.authorizationError === undefined ?
          null :
          String(socket.authorizationError)
        const report: TlsReport = {
          mode,
          protocol: socket.getProtocol(),
          cipher: cipher?.standardName ?? cipher?.name ?? null,
          chain: chainOf(socket, Date.now()),
          trusted: socket.authorized,
          trustError,
          servername,
          hostnameMatches: identity === undefined,
          hostnameError: identity === undefined ? null : identity.message,
          verified: socket.authorized && identity === undefined
        }
        reports.push(report)
        if (strict && options.rejectUnauthorized !== false && !report.verified) {
          socket.destroy()
          const cause = identity === undefined ?
            Object.assign(new Error("the chain does not lead to a trusted CA"), { code: trustError }) :
            identity
          return resume(Effect.fail(NodeSmtpTransport.classifyTlsError(cause)))
        }
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }).pipe(
      withHandshakeTimeout(timeout)
    )
  }

  const wrap = (duplex: Net.Socket, raw: Net.Socket, host: string, secure: boolean) =>
    Effect.map(NodeSocket.fromDuplex(Effect.succeed(duplex)), (socket): SmtpTransport.Connection => ({
      socket,
      secure,
      upgradeTls: (options) =>
        Effect.flatMap(handshake(raw, host, options, "starttls"), (tls) => wrap(tls, raw, host, true)),
      close: Effect.sync(() => {
        duplex.destroy()
        raw.destroy()
      })
    }))

  const connect: SmtpTransport.Service["connect"] = (options) =>
    Effect.gen(function*() {
      const address = `${options.host}:${options.port}`
      const raw = yield* Effect.acquireRelease(
        Effect.async<Net.Socket, SmtpConnectError>((resume) => {
          const s = Net.createConnection({ host: options.host.replace(/^\[|\]$/g, ""), port: options.port })
          const onError = (cause: Error) => {
            s.destroy()
            resume(Effect.fail(new SmtpConnectError({ address, cause })))
          }
          s.once("error", onError)
          s.once("connect", () => {
            s.off("error", onError)
            s.on("error", () => {})
            resume(Effect.succeed(s))
          })
          return Effect.sync(() => s.destroy())
        }).pipe(
          Effect.timeoutFail({
            duration: options.timeout,
            onTimeout: () =>
              new SmtpTimeout({ phase: `connecting to ${address}`, timeoutMillis: Duration.toMillis(options.timeout) })
          })
        ),
        (s) => Effect.sync(() => s.destroy())
      )
      if (options.tls !== undefined) {
        const tls = yield* handshake(raw, options.host, options.tls, "implicit")
        return yield* wrap(tls, raw, options.host, true)
      }
      return yield* wrap(raw, raw, options.host, false)
    })

  return {
    reports,
    layer: Layer.succeed(SmtpTransport.SmtpTransport, {
      connect,
      localHostname: NodeSmtpTransport.localHostname,
      prefetchLocalHostname: NodeSmtpTransport.prefetchLocalHostname
    })
  }
}
