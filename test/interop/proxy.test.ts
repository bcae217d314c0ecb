/**
 * Interop through real proxies: Dante (scripts/peers/dante.sh, SOCKS5 with RFC 1929 username/password) and tinyproxy
 * (scripts/peers/tinyproxy.sh, HTTP CONNECT with Basic authentication), into the Postfix and aiosmtpd peers. The
 * SMTP host is always given as `localhost`: Dante resolves it (SOCKS5 domain-name address type), tinyproxy gets it
 * in the CONNECT line, and TLS verifies the peers' certificate for it, never for the proxy.
 *
 * The proxies' peer.json files are read here (test/interop/peers.ts knows the SMTP peers only), with the same
 * rules: skipped without SMTP_PEERS_DIR, a missing peer is an error with SMTP_INTEROP_REQUIRED=1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Config, ConfigProvider, Effect, Exit, Layer, Redacted, type Scope } from "effect"
import { Mailer, SmtpClient, SmtpError, type SmtpTransport } from "effect-smtp"
import { NodeSmtpProxy } from "effect-smtp/node"
import * as fs from "node:fs"
import * as path from "node:path"
import type { AiosmtpdPeer, PostfixPeer } from "./peers.js"
import {
  aiosmtpdMailDir,
  aiosmtpdPeer,
  interopRequired,
  listFiles,
  peersDir,
  postfixMaildirNew,
  postfixPeer,
  skipReason,
  waitForAiosmtpdMessageContaining,
  waitForNewFileContaining
} from "./peers.js"
import { fromPromise, required, uniqueId } from "./support.js"

/** `$SMTP_PEERS_DIR/dante/peer.json` and `$SMTP_PEERS_DIR/tinyproxy/peer.json`. */
interface ProxyPeer {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly log: string
  /** tinyproxy only: the ports it will CONNECT to */
  readonly connectPorts?: ReadonlyArray<number>
}

const proxyPeerFile = (name: "dante" | "tinyproxy") =>
  peersDir === undefined ? undefined : path.join(peersDir, name, "peer.json")

const proxySkipReason = (name: "dante" | "tinyproxy"): string | undefined => {
  if (interopRequired) return undefined
  const file = proxyPeerFile(name)
  if (file === undefined) return `${name} interop skipped: SMTP_PEERS_DIR not set`
  if (!fs.existsSync(file)) return `${name} interop skipped: ${file} not found (scripts/peers/${name}.sh start)`
  return undefined
}

const proxyPeer = (name: "dante" | "tinyproxy"): ProxyPeer => {
  const file = proxyPeerFile(name)
  if (file === undefined || !fs.existsSync(file)) {
    throw new Error(`${name} interop peer required but ${file ?? "SMTP_PEERS_DIR"} is missing`)
  }
  return JSON.parse(fs.readFileSync(file, "utf8")) as ProxyPeer
}

const skip = (...names: Array<string>): string | undefined => {
  for (const name of names) {
    const reason = name === "dante" || name === "tinyproxy" ? proxySkipReason(name) : skipReason(name)
    if (reason !== undefined) return reason
  }
  return undefined
}

const FROM = "sender@example.test"
const HELO = "client.effect-smtp.test"

const message = (token: string) =>
  `From: ${FROM}\r\nSubject: ${token}\r\nMessage-ID: <${token}@effect-smtp.test>\r\n\r\nThrough a proxy: ${token}.\r\n`

type Kind = "socks5" | "http"
const peerOf = (kind: Kind) => proxyPeer(kind === "socks5" ? "dante" : "tinyproxy")

/** The proxy as a URL with its credentials (Redacted), or with a wrong password. */
const proxyUrl = (kind: Kind, password?: string): NodeSmtpProxy.ProxyOptions => {
  const peer = peerOf(kind)
  const scheme = kind === "socks5" ? "socks5" : "http"
  return {
    url: Redacted.make(
      `${scheme}://${encodeURIComponent(peer.user)}:${encodeURIComponent(password ?? peer.password)}@` +
        `${peer.host}:${peer.port}`
    )
  }
}

/** Runs `effect` on the Node transport through `proxy`, scoped. */
const through = <A, E>(
  proxy: NodeSmtpProxy.ProxyOptions,
  effect: Effect.Effect<A, E, SmtpTransport.SmtpTransport | Scope.Scope>
) => effect.pipe(Effect.scoped, Effect.provide(NodeSmtpProxy.layer({ proxy })))

const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    const error = Cause.failureOption(exit.cause)
    if (error._tag === "None") throw new Error(`expected a failure, got ${Cause.pretty(exit.cause)}`)
    return error.value as Error
  })

const proxyCause = (error: unknown): NodeSmtpProxy.ProxyError => {
  assert.instanceOf(error, SmtpError.SmtpConnectError)
  const cause = (error as SmtpError.SmtpConnectError).cause
  assert.instanceOf(cause, NodeSmtpProxy.ProxyError)
  return cause as NodeSmtpProxy.ProxyError
}

const noPassword = (kind: Kind, error: unknown, password = peerOf(kind).password) => {
  for (const shown of [String(error), JSON.stringify(error), Cause.pretty(Cause.fail(error))]) {
    assert.notInclude(shown, password)
  }
}

const postfixCa = (peer: PostfixPeer) => fs.readFileSync(peer.ca, "utf8")
const aioCa = (peer: AiosmtpdPeer) => fs.readFileSync(peer.ca, "utf8")

/** Sends to the Postfix catch-all and waits for the delivery. */
const toPostfix = (kind: Kind, options: (peer: PostfixPeer) => SmtpClient.Options, label: string) =>
  Effect.gen(function*() {
    const peer = required(postfixPeer(), "postfix")
    const token = uniqueId(`${kind}-${label}`)
    const to = `${token}@${peer.catchallDomain}`
    const before = listFiles(postfixMaildirNew(peer, to))
    const secure = yield* through(
      proxyUrl(kind),
      Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: "localhost", localHostname: HELO, ...options(peer) })
        assert.deepStrictEqual(yield* smtp.sendmail(FROM, [to], message(token)), {})
        return yield* smtp.isSecure
      })
    )
    yield* fromPromise(() => waitForNewFileContaining(postfixMaildirNew(peer, to), before, token, 15_000))
    return secure
  })

/** Sends to aiosmtpd and returns what it stored (TLS and AUTH in its metadata). */
const toAiosmtpd = (kind: Kind, options: (peer: AiosmtpdPeer) => SmtpClient.Options, label: string) =>
  Effect.gen(function*() {
    const peer = required(aiosmtpdPeer(), "aiosmtpd")
    const token = uniqueId(`${kind}-${label}`)
    const before = listFiles(aiosmtpdMailDir(peer))
    yield* through(
      proxyUrl(kind),
      Effect.flatMap(
        SmtpClient.connect({ host: "localhost", localHostname: HELO, ...options(peer) }),
        (smtp) => smtp.sendmail(FROM, ["rcpt@example.test"], message(token))
      )
    )
    return yield* fromPromise(() => waitForAiosmtpdMessageContaining(peer, before, token))
  })

const auth = (peer: AiosmtpdPeer) => ({ user: peer.user, password: Redacted.make(peer.password) })

for (const kind of ["socks5", "http"] as const) {
  const proxyName = kind === "socks5" ? "dante" : "tinyproxy"
  const title = kind === "socks5" ? "SOCKS5 through Dante" : "HTTP CONNECT through tinyproxy"

  describe.skipIf(skip(proxyName, "postfix") !== undefined)(skip(proxyName, "postfix") ?? `${title}: Postfix`, () => {
    it.live("plaintext (2525)", () =>
      Effect.gen(function*() {
        const secure = yield* toPostfix(kind, (peer) => ({ port: peer.ports.plain, security: "none" }), "plain")
        assert.isFalse(secure)
      }))

    it.live("STARTTLS (2587), the certificate verified for localhost", () =>
      Effect.gen(function*() {
        const secure = yield* toPostfix(
          kind,
          (peer) => ({ port: peer.ports.starttls, security: "starttls", tls: { ca: postfixCa(peer) } }),
          "starttls"
        )
        assert.isTrue(secure)
      }))

    it.live("implicit TLS (2465)", () =>
      Effect.gen(function*() {
        const secure = yield* toPostfix(
          kind,
          (peer) => ({ port: peer.ports.tls, security: "tls", tls: { ca: postfixCa(peer) } }),
          "tls"
        )
        assert.isTrue(secure)
      }))
  })

  describe.skipIf(skip(proxyName, "aiosmtpd") !== undefined)(
    skip(proxyName, "aiosmtpd") ?? `${title}: aiosmtpd`,
    () => {
      it.live("STARTTLS (2526) and AUTH", () =>
        Effect.gen(function*() {
          const stored = yield* toAiosmtpd(kind, (peer) => ({
            port: peer.ports.smtp,
            security: "starttls",
            tls: { ca: aioCa(peer) },
            auth: auth(peer)
          }), "starttls")
          assert.isNotNull(stored.meta.tls)
          assert.strictEqual(stored.meta.auth?.login, "testuser")
          // the SMTP server sees the proxy's connection (loopback), as it should
          assert.isTrue(Array.isArray(stored.meta.peer))
        }))

      it.live("implicit TLS (2466) and AUTH", () =>
        Effect.gen(function*() {
          const stored = yield* toAiosmtpd(kind, (peer) => ({
            port: peer.ports.smtps,
            security: "tls",
            tls: { ca: aioCa(peer) },
            auth: auth(peer)
          }), "smtps")
          assert.isNotNull(stored.meta.tls)
        }))

      it.live("a Mailer from Config, the proxy URL Redacted", () =>
        Effect.gen(function*() {
          const peer = required(aiosmtpdPeer(), "aiosmtpd")
          const token = uniqueId(`${kind}-mailer`)
          const before = listFiles(aiosmtpdMailDir(peer))
          const transport = NodeSmtpProxy.layerConfig({
            proxy: Config.map(Config.redacted("SMTP_PROXY"), (url) => ({ url }))
          }).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([["SMTP_PROXY", Redacted.value((proxyUrl(kind) as { url: Redacted.Redacted<string> }).url)]])
          ))))
          yield* Effect.flatMap(Mailer.Mailer, (mailer) => mailer.sendmail(FROM, ["rcpt@example.test"], message(token)))
            .pipe(
              Effect.provide(
                Mailer.layer({
                  host: "localhost",
                  port: peer.ports.smtp,
                  security: "starttls",
                  tls: { ca: aioCa(peer) },
                  auth: auth(peer),
                  localHostname: HELO
                }).pipe(Layer.provide(transport))
              )
            )
          const stored = yield* fromPromise(() => waitForAiosmtpdMessageContaining(peer, before, token))
          assert.isNotNull(stored.meta.tls)
        }))
    }
  )

  describe.skipIf(skip(proxyName) !== undefined)(skip(proxyName) ?? `${title}: failures`, () => {
    it.live("a wrong proxy password is an authentication failure naming the proxy, not the password", () =>
      Effect.gen(function*() {
        const peer = peerOf(kind)
        const wrong = "not-the-proxy-password"
        const error = yield* failure(
          through(proxyUrl(kind, wrong), SmtpClient.connect({ host: "localhost", port: 2525, timeout: "5 seconds" }))
        )
        const cause = proxyCause(error)
        assert.strictEqual(cause.reason, "auth")
        assert.include(error.message, `${kind === "socks5" ? "SOCKS5" : "HTTP"} proxy ${peer.host}:${peer.port}`)
        noPassword(kind, error, wrong)
        noPassword(kind, error)
      }))

    it.live("a destination the proxy refuses", () =>
      Effect.gen(function*() {
        const peer = peerOf(kind)
        if (kind === "socks5") {
          // nothing listens on localhost:9: Dante answers "connection refused" (5)
          const refused = yield* failure(
            through(proxyUrl(kind), SmtpClient.connect({ host: "localhost", port: 9, timeout: "5 seconds" }))
          )
          assert.strictEqual(
            refused.message,
            `Could not connect to localhost:9: SOCKS5 proxy ${peer.host}:${peer.port} refused: ` +
              "connection refused by destination (5)"
          )
          // outside 127.0.0.0/8: not allowed by Dante's rules (2)
          const ruled = yield* failure(
            through(proxyUrl(kind), SmtpClient.connect({ host: "192.0.2.1", port: 25, timeout: "5 seconds" }))
          )
          assert.strictEqual(proxyCause(ruled).code, 2)
          assert.include(ruled.message, "refused: connection not allowed by ruleset (2)")
        } else {
          // a port tinyproxy was not told to CONNECT to (ConnectPort): 403
          const error = yield* failure(
            through(proxyUrl(kind), SmtpClient.connect({ host: "localhost", port: 2425, timeout: "5 seconds" }))
          )
          const cause = proxyCause(error)
          assert.strictEqual(cause.reason, "refused")
          assert.strictEqual(cause.code, 403)
          assert.include(error.message, `HTTP proxy ${peer.host}:${peer.port} refused: 403`)
        }
      }))
  })
}
