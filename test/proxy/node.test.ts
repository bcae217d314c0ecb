/**
 * NodeSmtpTransport through proxies: tiny SOCKS5 and HTTP CONNECT servers written here (node:net) in front of
 * the library's TestSmtpServer, for the happy paths (plaintext, STARTTLS, implicit TLS, the name verified being
 * the SMTP server's) and the failures (refusals, authentication, a proxy that closes or stalls).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Config, ConfigProvider, Effect, Exit, Layer, Logger, LogLevel, Redacted, type Scope } from "effect"
import { Mailer, SmtpClient, SmtpError } from "effect-smtp"
import { NodeSmtpProxy, NodeSmtpTransport } from "effect-smtp/node"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as Net from "node:net"
import { recordingTracer } from "../support/tracer.js"

// ---------------------------------------------------------------------------------------------------------------
// the proxies
// ---------------------------------------------------------------------------------------------------------------

type Misbehaviour =
  | "close-after-greeting" // SOCKS: closes once the greeting is read; HTTP: once the request is read
  | "stall" // reads everything, never answers
  | "coalesce" // answers only with the server's first bytes, in the same write

interface ProxyServer {
  readonly host: string
  readonly port: number
  /** SOCKS5: `ATYP host:port` of each CONNECT (`3 localhost:2525`); HTTP: the request heads. */
  readonly requests: Array<string>
}

interface ProxyServerOptions {
  /** Required credentials. */
  readonly user?: string
  readonly password?: string
  /** SOCKS5 reply code, or HTTP status, to refuse every CONNECT with. */
  readonly refuse?: number
  readonly misbehave?: Misbehaviour
}

/** Where the proxies send each name: everything goes to loopback, under whatever name. */
const resolve = (host: string) => (Net.isIP(host) ? host : "127.0.0.1")

const listen = (
  onConnection: (client: Net.Socket, requests: Array<string>) => void
): Effect.Effect<ProxyServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: Net.Server; sockets: Set<Net.Socket>; proxy: ProxyServer }>((resume) => {
      const sockets = new Set<Net.Socket>()
      const requests: Array<string> = []
      const server = Net.createServer((client) => {
        sockets.add(client)
        client.on("close", () => sockets.delete(client))
        client.on("error", () => client.destroy())
        onConnection(client, requests)
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as Net.AddressInfo).port
        resume(Effect.succeed({ server, sockets, proxy: { host: "127.0.0.1", port, requests } }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))

/**
 * Connects to the target, answers, and splices. With "coalesce" (plaintext SMTP only: the server speaks first) the
 * answer goes out in one write with the server's first bytes.
 */
const splice = (client: Net.Socket, host: string, port: number, answer: Buffer, coalesce: boolean) => {
  const upstream = Net.connect({ host: resolve(host), port })
  upstream.on("error", () => client.destroy())
  client.on("close", () => upstream.destroy())
  upstream.on("close", () => client.destroy())
  const pipe = () => {
    upstream.pipe(client)
    client.pipe(upstream)
  }
  upstream.once("connect", () => {
    if (!coalesce) {
      client.write(answer)
      return pipe()
    }
    upstream.once("data", (first) => {
      client.write(Buffer.concat([answer, first]))
      pipe()
    })
  })
}

/** A SOCKS5 server (RFC 1928 CONNECT, RFC 1929 username/password). */
const socks5Server = (options: ProxyServerOptions = {}) =>
  listen((client, requests) => {
    let buffer = Buffer.alloc(0)
    let state: "greeting" | "auth" | "request" | "done" = "greeting"
    const needAuth = options.user !== undefined
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        if (state === "greeting") {
          if (buffer.length < 2 || buffer.length < 2 + buffer[1]!) return
          const methods = [...buffer.subarray(2, 2 + buffer[1]!)]
          buffer = buffer.subarray(2 + buffer[1]!)
          if (options.misbehave === "close-after-greeting") return void client.destroy()
          if (options.misbehave === "stall") return
          const method = needAuth ? 2 : 0
          if (!methods.includes(method)) return void client.end(Buffer.of(5, 0xff))
          client.write(Buffer.of(5, method))
          state = needAuth ? "auth" : "request"
        } else if (state === "auth") {
          if (buffer.length < 2 || buffer.length < 3 + buffer[1]!) return
          const ulen = buffer[1]!
          const plen = buffer[2 + ulen]!
          if (buffer.length < 3 + ulen + plen) return
          const user = buffer.subarray(2, 2 + ulen).toString()
          const password = buffer.subarray(3 + ulen, 3 + ulen + plen).toString()
          buffer = buffer.subarray(3 + ulen + plen)
          if (user !== options.user || password !== options.password) return void client.end(Buffer.of(1, 1))
          client.write(Buffer.of(1, 0))
          state = "request"
        } else if (state === "request") {
          if (buffer.length < 5) return
          const atyp = buffer[3]!
          const alen = atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + buffer[4]!
          if (buffer.length < 4 + alen + 2) return
          const addr = buffer.subarray(4, 4 + alen)
          const host = atyp === 1 ?
            [...addr].join(".") :
            atyp === 4 ?
            [...Array(8)].map((_, i) => addr.readUInt16BE(2 * i).toString(16)).join(":") :
            addr.subarray(1).toString()
          const port = buffer.readUInt16BE(4 + alen)
          buffer = buffer.subarray(4 + alen + 2)
          requests.push(`${atyp} ${host}:${port}`)
          state = "done"
          client.off("data", onData)
          if (options.refuse !== undefined) return void client.end(Buffer.of(5, options.refuse, 0, 1, 0, 0, 0, 0, 0, 0))
          client.pause()
          splice(client, host, port, Buffer.of(5, 0, 0, 1, 127, 0, 0, 1, 0, 0), options.misbehave === "coalesce")
          return
        } else return
      }
    }
    client.on("data", onData)
  })

/** An HTTP CONNECT server with Basic authentication. */
const httpProxyServer = (options: ProxyServerOptions = {}) =>
  listen((client, requests) => {
    let head = ""
    const onData = (chunk: Buffer) => {
      head += chunk.toString("latin1")
      const end = head.indexOf("\r\n\r\n")
      if (end < 0) return
      client.off("data", onData)
      requests.push(head.slice(0, end + 4))
      if (options.misbehave === "close-after-greeting") return void client.destroy()
      if (options.misbehave === "stall") return
      const [requestLine, ...headers] = head.slice(0, end).split("\r\n")
      const [, target] = requestLine!.split(" ")
      const expected = options.user === undefined ?
        undefined :
        `Basic ${Buffer.from(`${options.user}:${options.password}`).toString("base64")}`
      const given = headers.find((h) => /^proxy-authorization:/i.test(h))?.replace(/^[^:]*:\s*/, "")
      if (expected !== undefined && given !== expected) {
        return void client.end(
          "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n" +
            "Content-Length: 0\r\n\r\n"
        )
      }
      if (options.refuse !== undefined) {
        return void client.end(
          `HTTP/1.1 ${options.refuse} ${options.refuse === 403 ? "Forbidden" : "Bad Gateway"}\r\n\r\n`
        )
      }
      const colon = target!.lastIndexOf(":")
      const host = target!.slice(0, colon).replace(/^\[|\]$/g, "")
      client.pause()
      splice(
        client,
        host,
        Number(target!.slice(colon + 1)),
        Buffer.from("HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n"),
        options.misbehave === "coalesce"
      )
    }
    client.on("data", onData)
  })

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

const message = "Subject: proxied\r\n\r\nthrough a proxy\r\n"

const send = (options: SmtpClient.Options, proxy: NodeSmtpProxy.ProxyOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect(options)
    yield* smtp.sendmail("a@example.test", ["b@example.test"], message)
    return { secure: yield* smtp.isSecure, tls: yield* smtp.tls }
  })).pipe(Effect.provide(NodeSmtpProxy.layer({ proxy })))

/** The failure of `effect`, which must fail. */
const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    const error = Cause.failureOption(exit.cause)
    if (error._tag === "None") throw new Error(`expected a failure, got ${Cause.pretty(exit.cause)}`)
    return error.value
  })

const proxyCause = (error: unknown): NodeSmtpProxy.ProxyError => {
  assert.instanceOf(error, SmtpError.SmtpConnectError)
  const cause = (error as SmtpError.SmtpConnectError).cause
  assert.instanceOf(cause, NodeSmtpProxy.ProxyError)
  return cause as NodeSmtpProxy.ProxyError
}

const secret = "pr0xy-s3cret"

/** Nothing printable of an error shows the password. */
const noSecret = (error: unknown) => {
  for (
    const shown of [String(error), (error as Error).message, JSON.stringify(error), Cause.pretty(Cause.fail(error))]
  ) {
    assert.notInclude(shown, secret)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SOCKS5
// ---------------------------------------------------------------------------------------------------------------

describe("SOCKS5", () => {
  it.scopedLive("plaintext, no authentication: the proxy is given the name, not an address", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const proxy = yield* socks5Server()
      const result = yield* send({ host: "localhost", port: server.port, security: "none" }, {
        type: "socks5",
        host: proxy.host,
        port: proxy.port
      })
      assert.isFalse(result.secure)
      assert.deepStrictEqual(proxy.requests, [`3 localhost:${server.port}`])
      const [mail] = yield* server.awaitMessages(1)
      assert.deepStrictEqual(mail.envelope.to, ["b@example.test"])
    }))

  it.scopedLive("username/password from a Redacted URL, then STARTTLS verified for the SMTP host", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ tls: true })
      const proxy = yield* socks5Server({ user: "smtp user", password: secret })
      const result = yield* send(
        { host: "localhost", port: server.port, security: "starttls", tls: { ca: server.ca! } },
        { url: Redacted.make(`socks5://smtp%20user:${secret}@${proxy.host}:${proxy.port}`) }
      )
      assert.isTrue(result.secure)
      assert.isTrue(result.tls._tag === "Some" && result.tls.value.authorized)
      assert.isTrue((yield* server.awaitMessages(1))[0].secure)
    }))

  it.scopedLive("implicit TLS through the tunnel; an IPv4 literal goes as an address", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ tls: { implicit: true } })
      const proxy = yield* socks5Server({ user: "u", password: secret })
      const result = yield* send(
        { host: "127.0.0.1", port: server.port, security: "tls", tls: { ca: server.ca! } },
        { type: "socks5", host: proxy.host, port: proxy.port, auth: { user: "u", password: Redacted.make(secret) } }
      )
      assert.isTrue(result.secure)
      assert.deepStrictEqual(proxy.requests, [`1 127.0.0.1:${server.port}`])
    }))

  it.scopedLive("the certificate is checked against the SMTP host, not the proxy's name", () =>
    Effect.gen(function*() {
      // the proxy (127.0.0.1, a name the certificate holds) reaches the server under a name it does not hold
      const server = yield* TestSmtpServer.make({ tls: { implicit: true } })
      const proxy = yield* socks5Server()
      const viaProxy = { type: "socks5", host: proxy.host, port: proxy.port } as const
      const error = yield* failure(
        send({ host: "mx.other.test", port: server.port, security: "tls", tls: { ca: server.ca! } }, viaProxy)
      )
      assert.instanceOf(error, SmtpError.SmtpTlsError)
      assert.strictEqual((error as SmtpError.SmtpTlsError).reason, "hostname-mismatch")
      // the same server name, with tls.servername naming one the certificate holds
      const ok = yield* send(
        { host: "mx.other.test", port: server.port, security: "tls", tls: { ca: server.ca!, servername: "localhost" } },
        viaProxy
      )
      assert.isTrue(ok.secure)
    }))

  it.scopedLive("the server's greeting in the same segment as the proxy's reply is not lost", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const proxy = yield* socks5Server({ misbehave: "coalesce" })
      yield* send({ host: "localhost", port: server.port, security: "none" }, {
        url: `socks5://${proxy.host}:${proxy.port}`
      })
      assert.strictEqual((yield* server.awaitMessages(1)).length, 1)
    }))

  it.scopedLive("a refusal names the proxy and the reason", () =>
    Effect.gen(function*() {
      const proxy = yield* socks5Server({ refuse: 5 })
      const error = yield* failure(
        send({ host: "localhost", port: 2525, security: "none" }, { url: `socks5://${proxy.host}:${proxy.port}` })
      )
      assert.strictEqual(
        (error as Error).message,
        `Could not connect to localhost:2525: SOCKS5 proxy 127.0.0.1:${proxy.port} refused: connection refused by destination (5)`
      )
      const cause = proxyCause(error)
      assert.strictEqual(cause.reason, "refused")
      assert.strictEqual(cause.code, 5)
      assert.strictEqual(SmtpError.classify(error as SmtpError.SmtpError), "transient")
    }))

  it.scopedLive("a wrong password, and no credentials where they are required", () =>
    Effect.gen(function*() {
      const proxy = yield* socks5Server({ user: "u", password: "right" })
      const wrong = yield* failure(send({ host: "localhost", port: 2525, security: "none" }, {
        url: Redacted.make(`socks5://u:${secret}@${proxy.host}:${proxy.port}`)
      }))
      assert.strictEqual(
        (wrong as Error).message,
        `Could not connect to localhost:2525: SOCKS5 proxy 127.0.0.1:${proxy.port} rejected the username/password (status 1)`
      )
      assert.strictEqual(proxyCause(wrong).reason, "auth")
      noSecret(wrong)
      const none = yield* failure(
        send({ host: "localhost", port: 2525, security: "none" }, { url: `socks5://${proxy.host}:${proxy.port}` })
      )
      assert.strictEqual(proxyCause(none).reason, "auth")
      assert.include((none as Error).message, "needs credentials")
    }))

  it.scopedLive("a proxy's refusal of the credentials is permanent for Mailer's classify; an unreachable proxy transient", () =>
    Effect.gen(function*() {
      const proxy = yield* socks5Server({ user: "u", password: "right" })
      const wrong = yield* failure(send({ host: "localhost", port: 2525, security: "none" }, {
        url: Redacted.make(`socks5://u:${secret}@${proxy.host}:${proxy.port}`)
      }))
      assert.strictEqual(SmtpError.classify(wrong as SmtpError.SmtpError), "permanent")
      const invalid = yield* failure(send({ host: "localhost", port: 2525, security: "none" }, { url: "ftp://x" }))
      assert.strictEqual(SmtpError.classify(invalid as SmtpError.SmtpError), "permanent")
      const unreachable = yield* failure(send({ host: "localhost", port: 2525, security: "none" }, {
        type: "socks5",
        host: "127.0.0.1",
        port: yield* Effect.async<number>((resume) => {
          const s = Net.createServer().listen(0, "127.0.0.1", () => {
            const p = (s.address() as Net.AddressInfo).port
            s.close(() => resume(Effect.succeed(p)))
          })
        })
      }))
      assert.strictEqual(proxyCause(unreachable).reason, "unreachable")
      assert.strictEqual(SmtpError.classify(unreachable as SmtpError.SmtpError), "transient")
    }))

  it.scopedLive("through a proxy, localhost is not loopback: no password in clear without allowInsecure", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ users: { app: "pw" } })
      const proxy = yield* socks5Server()
      const through = { type: "socks5", host: proxy.host, port: proxy.port } as const
      const auth = { user: "app", password: Redacted.make("pw") }
      const refused = yield* failure(send({ host: "localhost", port: server.port, security: "none", auth }, through))
      assert.strictEqual((refused as SmtpError.SmtpError)._tag, "SmtpInvalidInput")
      assert.include((refused as Error).message, "allowInsecure")
      // opting in sends it; without the proxy, localhost is loopback and needs no opt-in
      yield* send(
        { host: "localhost", port: server.port, security: "none", auth: { ...auth, allowInsecure: true } },
        through
      )
      yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ host: "localhost", port: server.port, security: "none", auth }),
        (smtp) => smtp.sendmail("a@example.test", ["b@example.test"], message)
      )).pipe(Effect.provide(NodeSmtpTransport.layer))
      assert.strictEqual((yield* server.messages).length, 2)
    }))

  it.scopedLive("a proxy that closes mid-handshake", () =>
    Effect.gen(function*() {
      const proxy = yield* socks5Server({ misbehave: "close-after-greeting" })
      const error = yield* failure(send({ host: "localhost", port: 2525, security: "none" }, {
        url: Redacted.make(`socks5://u:${secret}@${proxy.host}:${proxy.port}`)
      }))
      assert.strictEqual(proxyCause(error).reason, "closed")
      assert.include((error as Error).message, `SOCKS5 proxy 127.0.0.1:${proxy.port}`)
      noSecret(error)
    }))

  it.scopedLive("a proxy that stalls: the connect timeout covers the handshake", () =>
    Effect.gen(function*() {
      const proxy = yield* socks5Server({ misbehave: "stall" })
      const started = Date.now()
      const error = yield* failure(send({ host: "localhost", port: 2525, security: "none", timeout: "300 millis" }, {
        url: Redacted.make(`socks5://u:${secret}@${proxy.host}:${proxy.port}`)
      }))
      assert.instanceOf(error, SmtpError.SmtpTimeout)
      assert.strictEqual(
        (error as SmtpError.SmtpTimeout).phase,
        `connecting to localhost:2525 through SOCKS5 proxy 127.0.0.1:${proxy.port}`
      )
      assert.isBelow(Date.now() - started, 5000)
      noSecret(error)
    }))

  it.scopedLive("an unreachable proxy", () =>
    Effect.gen(function*() {
      const port = yield* Effect.acquireRelease(
        Effect.async<number>((resume) => {
          const s = Net.createServer().listen(0, "127.0.0.1", () => {
            const p = (s.address() as Net.AddressInfo).port
            s.close(() => resume(Effect.succeed(p)))
          })
        }),
        () => Effect.void
      )
      const error = yield* failure(send({ host: "localhost", port: 2525, security: "none" }, {
        url: Redacted.make(`socks5://u:${secret}@127.0.0.1:${port}`)
      }))
      assert.strictEqual(proxyCause(error).reason, "unreachable")
      assert.include((error as Error).message, `SOCKS5 proxy 127.0.0.1:${port} is unreachable: connect ECONNREFUSED`)
      noSecret(error)
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// HTTP CONNECT
// ---------------------------------------------------------------------------------------------------------------

describe("HTTP CONNECT", () => {
  it.scopedLive("Basic authentication, then STARTTLS verified for the SMTP host; the exact request", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ tls: true })
      const proxy = yield* httpProxyServer({ user: "u", password: secret })
      const result = yield* send(
        { host: "localhost", port: server.port, security: "starttls", tls: { ca: server.ca! } },
        { type: "http", host: proxy.host, port: proxy.port, auth: { user: "u", password: Redacted.make(secret) } }
      )
      assert.isTrue(result.secure)
      assert.deepStrictEqual(proxy.requests, [
        `CONNECT localhost:${server.port} HTTP/1.1\r\nHost: localhost:${server.port}\r\n` +
        `Proxy-Authorization: Basic ${Buffer.from(`u:${secret}`).toString("base64")}\r\n\r\n`
      ])
    }))

  it.scopedLive("implicit TLS, and the greeting coalesced with the 200", () =>
    Effect.gen(function*() {
      const tlsServer = yield* TestSmtpServer.make({ tls: { implicit: true } })
      const plainServer = yield* TestSmtpServer.make()
      const proxy = yield* httpProxyServer()
      const coalescing = yield* httpProxyServer({ misbehave: "coalesce" })
      const tls = yield* send(
        { host: "localhost", port: tlsServer.port, security: "tls", tls: { ca: tlsServer.ca! } },
        { url: `http://${proxy.host}:${proxy.port}` }
      )
      assert.isTrue(tls.secure)
      yield* send({ host: "localhost", port: plainServer.port, security: "none" }, {
        url: `http://${coalescing.host}:${coalescing.port}`
      })
      assert.strictEqual((yield* plainServer.awaitMessages(1)).length, 1)
    }))

  it.scopedLive("407 for wrong or missing credentials, 403, 502: typed errors naming the proxy", () =>
    Effect.gen(function*() {
      const guarded = yield* httpProxyServer({ user: "u", password: "right" })
      const target = { host: "localhost", port: 2525, security: "none" } as const
      const wrong = yield* failure(
        send(target, { url: Redacted.make(`http://u:${secret}@${guarded.host}:${guarded.port}`) })
      )
      assert.strictEqual(
        (wrong as Error).message,
        `Could not connect to localhost:2525: HTTP proxy 127.0.0.1:${guarded.port} rejected the credentials (407 Proxy Authentication Required)`
      )
      noSecret(wrong)
      const missing = yield* failure(send(target, { url: `http://${guarded.host}:${guarded.port}` }))
      assert.include((missing as Error).message, "requires authentication (407 Proxy Authentication Required)")
      for (const status of [403, 502]) {
        const proxy = yield* httpProxyServer({ refuse: status })
        const error = yield* failure(send(target, { url: `http://${proxy.host}:${proxy.port}` }))
        const cause = proxyCause(error)
        assert.strictEqual(cause.reason, "refused")
        assert.strictEqual(cause.code, status)
        assert.include((error as Error).message, `HTTP proxy 127.0.0.1:${proxy.port} refused: ${status}`)
      }
    }))

  it.scopedLive("a proxy that closes mid-handshake, or stalls", () =>
    Effect.gen(function*() {
      const target = { host: "localhost", port: 2525, security: "none", timeout: "300 millis" } as const
      const closing = yield* httpProxyServer({ misbehave: "close-after-greeting" })
      const closed = yield* failure(send(target, { url: `http://${closing.host}:${closing.port}` }))
      assert.strictEqual(proxyCause(closed).reason, "closed")
      const stalling = yield* httpProxyServer({ misbehave: "stall" })
      const timedOut = yield* failure(
        send(target, { url: Redacted.make(`http://u:${secret}@${stalling.host}:${stalling.port}`) })
      )
      assert.instanceOf(timedOut, SmtpError.SmtpTimeout)
      assert.include((timedOut as Error).message, `through HTTP proxy 127.0.0.1:${stalling.port}`)
      noSecret(timedOut)
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// options, layers, Mailer
// ---------------------------------------------------------------------------------------------------------------

describe("proxy options", () => {
  it.scopedLive("Mailer through layerConfig (the URL from the environment, Redacted)", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ tls: true })
      const proxy = yield* socks5Server({ user: "u", password: secret })
      const transport = NodeSmtpProxy.layerConfig({
        proxy: Config.map(Config.redacted("SMTP_PROXY"), (url) => ({ url }))
      }).pipe(
        Layer.provide(
          Layer.setConfigProvider(
            ConfigProvider.fromMap(new Map([["SMTP_PROXY", `socks5://u:${secret}@${proxy.host}:${proxy.port}`]]))
          )
        )
      )
      yield* Effect.flatMap(Mailer.Mailer, (mailer) => mailer.sendmail("a@example.test", ["b@example.test"], message))
        .pipe(
          Effect.provide(Mailer.layer({ ...server.clientOptions, host: "localhost" }).pipe(Layer.provide(transport)))
        )
      assert.isTrue((yield* server.awaitMessages(1))[0].secure)
      assert.deepStrictEqual(proxy.requests, [`3 localhost:${server.port}`])
    }))

  it.effect("layerConfig refuses an invalid URL without printing it", () =>
    Effect.gen(function*() {
      const error = yield* failure(
        Layer.build(NodeSmtpProxy.layerConfig({ proxy: Config.succeed({ url: `https://u:${secret}@proxy:443` }) }))
          .pipe(Effect.scoped)
      )
      assert.include(String(error), "the proxy URL has an unsupported scheme \"https:\"")
      noSecret(error)
    }))

  it.scopedLive("layerWith with an invalid URL fails each connect; a Unix socket path cannot be proxied", () =>
    Effect.gen(function*() {
      const bad = yield* failure(send({ host: "localhost", port: 2525 }, { url: Redacted.make(`ftp://u:${secret}@p`) }))
      assert.strictEqual(proxyCause(bad).reason, "invalid")
      noSecret(bad)
      const unix = yield* failure(send({ path: "/tmp/nowhere.sock" }, { url: "socks5://127.0.0.1:1" }))
      assert.include((unix as Error).message, "SOCKS5 proxy 127.0.0.1:1 cannot reach a Unix socket path")
    }))
})

describe("credentials", () => {
  /** Every span (name, attributes, events, exit) and every log line, as text. */
  const recorder = () => {
    const { spans, tracer } = recordingTracer()
    const logged: Array<string> = []
    const logger = Logger.make(({ annotations, message }) => {
      logged.push(`${JSON.stringify(message)} ${JSON.stringify([...annotations])}`)
    })
    const text = () =>
      [
        ...logged,
        ...spans.flatMap((s) => [
          `${s.name} ${JSON.stringify([...s.attributes])}`,
          ...s.events.map((e) => `${e.eventName} ${JSON.stringify(e.attributes ?? {})}`),
          `${s.name} ${s.exit === undefined ? "open" : Exit.isFailure(s.exit) ? Cause.pretty(s.exit.cause) : "ok"}`
        ])
      ].join("\n")
    return { spans, text, tracer, logger }
  }

  it.scopedLive("never in spans, logs or errors, on success and on failure", () =>
    Effect.gen(function*() {
      const record = recorder()
      const server = yield* TestSmtpServer.make({ tls: true })
      const proxy = yield* socks5Server({ user: "u", password: secret })
      const http = yield* httpProxyServer({ user: "u", password: "other" })
      const run = <A, E>(effect: Effect.Effect<A, E>) =>
        effect.pipe(
          Effect.withTracer(record.tracer),
          Effect.provide(Logger.replace(Logger.defaultLogger, record.logger)),
          Logger.withMinimumLogLevel(LogLevel.All)
        )
      yield* run(send(
        { host: "localhost", port: server.port, security: "starttls", tls: { ca: server.ca! }, debug: 2 },
        { url: Redacted.make(`socks5://u:${secret}@${proxy.host}:${proxy.port}`) }
      ))
      const error = yield* run(failure(send(
        { host: "localhost", port: server.port, security: "starttls", tls: { ca: server.ca! }, debug: 2 },
        { type: "http", host: http.host, port: http.port, auth: { user: "u", password: Redacted.make(secret) } }
      )))
      assert.strictEqual(proxyCause(error).reason, "auth")
      noSecret(error)
      const proxySpans = record.spans.filter((s) => s.name === "NodeSmtpTransport.proxy")
      assert.deepStrictEqual(
        proxySpans.map((s) => [s.attributes.get("network.protocol.name"), s.attributes.get("server.port")]),
        [["socks5", proxy.port], ["http", http.port]]
      )
      // what was recorded: the spans, the SMTP transcript logged by debug: 2
      assert.include(record.text(), "SmtpClient.connect")
      assert.include(record.text(), "EHLO")
      assert.notInclude(record.text(), secret)
      assert.notInclude(record.text(), Buffer.from(`u:${secret}`).toString("base64"))
    }))
})
