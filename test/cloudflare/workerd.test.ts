/**
 * `CloudflareSmtpTransport` in the Workers runtime: test/cloudflare/worker.ts is bundled with
 * esbuild and served by workerd (the `workerd` npm package's binary); each test posts a job to it
 * and checks what an in-process smtp-server on 127.0.0.1 received. The Worker reaches loopback
 * through a `network` service allowing `local` addresses, whose `tlsOptions.trustedCertificates`
 * holds the test CA (Workers verify certificates against the roots the runtime trusts; there is
 * no per-connection CA). Nothing leaves loopback.
 *
 * Without a working workerd binary the suite skips, saying why; with SMTP_WORKERD_REQUIRED=1 that
 * is a failure instead.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Net from "node:net"
import * as Path from "node:path"
import * as Url from "node:url"
import PostalMime from "postal-mime"
import type { SMTPServerAuthentication, SMTPServerSession } from "smtp-server"
import { type Pem, testPki } from "../support/certs.js"
import * as EmbeddedServer from "../support/smtpServer.js"
import { COMPATIBILITY_DATE, startWorkerd, workerdRequired, workerdUnavailableReason } from "../support/workerd.js"
import type { Job, Outcome } from "./worker.js"

const required = workerdRequired

const here = Path.dirname(Url.fileURLToPath(import.meta.url))
const workerEntry = Path.join(here, "worker.ts")

const reason = workerdUnavailableReason()
const skipReason = reason === undefined || required ?
  undefined :
  `skipped: ${reason}; set SMTP_WORKERD_REQUIRED=1 to make this a failure`

const capnpString = (text: string) => JSON.stringify(text)

/** A workerd config: the Worker, and the outbound network it may use (loopback, trusting `ca`). */
const config = (compatibilityDate: string) =>
  `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ( name = "main",
      worker = (
        modules = [ (name = "worker.js", esModule = embed "worker.js") ],
        compatibilityDate = ${capnpString(compatibilityDate)},
        globalOutbound = "loopback"
      )
    ),
    ( name = "loopback",
      network = (
        allow = ["local"],
        tlsOptions = (trustBrowserCas = false, trustedCertificates = [ embed "ca.pem" ])
      )
    )
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ]
);
`

interface Workerd {
  /** Runs a job in the Worker. */
  readonly run: (job: Job) => Effect.Effect<Outcome>
  /** What workerd wrote to stderr so far (its log of what it told the Worker only as "internal error"). */
  readonly log: () => string
  readonly pki: {
    readonly ca: Pem
    readonly server: Pem
    readonly selfSigned: Pem
  }
}

class WorkerdService extends Context.Tag("test/cloudflare/Workerd")<WorkerdService, Workerd>() {}

const WorkerdLive = Layer.scoped(
  WorkerdService,
  Effect.gen(function*() {
    if (reason !== undefined) {
      return yield* Effect.dieMessage(`workerd is needed (SMTP_WORKERD_REQUIRED=1) but ${reason}`)
    }
    const pki = yield* Effect.promise(() => testPki())
    const { log, port } = yield* startWorkerd({
      entry: workerEntry,
      external: ["cloudflare:sockets"],
      files: { "ca.pem": pki.ca.cert, "config.capnp": config(COMPATIBILITY_DATE) }
    })
    const run = (job: Job) =>
      Effect.promise(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/`, {
          method: "POST",
          body: JSON.stringify(job),
          signal: AbortSignal.timeout(15_000)
        })
        const text = await response.text()
        if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${text}\n${log()}`)
        return JSON.parse(text) as Outcome
      })
    return { run, log, pki: { ca: pki.ca, server: pki.server, selfSigned: pki.selfSigned } }
  })
)

interface Login {
  readonly method: string
  readonly username: string | undefined
  readonly secure: boolean
}

const USER = "worker@example.test"
const PASSWORD = "workerd-Secret-9931"

/**
 * An smtp-server on 127.0.0.1 that requires AUTH (PLAIN and LOGIN, never in plaintext: smtp-server
 * refuses AUTH before TLS) and records each login with whether the session was encrypted.
 */
const authServer = (cert: Pem, options: { readonly secure?: boolean } = {}) =>
  Effect.gen(function*() {
    const logins: Array<Login> = []
    let connections = 0
    const server = yield* EmbeddedServer.make({
      disabledCommands: [],
      key: cert.key,
      cert: cert.cert,
      secure: options.secure ?? false,
      authOptional: false,
      authMethods: ["PLAIN", "LOGIN"],
      onConnect(_session, callback) {
        connections++
        callback()
      },
      onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback) {
        logins.push({ method: auth.method, username: auth.username, secure: session.secure })
        if (auth.username === USER && auth.password === PASSWORD) return callback(null, { user: auth.username })
        callback(new Error("Invalid username or password"))
      }
    })
    return { server, logins, connections: () => connections }
  })

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
const closedPort = Effect.async<number>((resume) => {
  const listener = Net.createServer()
  listener.listen(0, "127.0.0.1", () => {
    const { port } = listener.address() as Net.AddressInfo
    listener.close(() => resume(Effect.succeed(port)))
  })
})

const from = "sender@example.test"
const to = ["one@example.test", "two@example.test"]
/** CRLF lines, one starting with a dot (stuffed on the wire, unstuffed by the server). */
const message = "From: sender@example.test\r\nTo: one@example.test\r\nSubject: from a Worker\r\n\r\n" +
  "Sent from workerd.\r\n.a line with a leading dot\r\nend\r\n"

const assertFailed = (outcome: Outcome, tag: string): Extract<Outcome, { ok: false }> => {
  if (outcome.ok) return assert.fail(`expected ${tag}, but the send succeeded`)
  assert.strictEqual(outcome.tag, tag, outcome.message)
  return outcome
}

describe.runIf(required)("SMTP_WORKERD_REQUIRED=1", () => {
  it("workerd is available", () => {
    assert.isUndefined(reason, `SMTP_WORKERD_REQUIRED=1 but ${reason}`)
  })
})

describe.skipIf(skipReason !== undefined)(skipReason ?? "CloudflareSmtpTransport in workerd", () => {
  layer(WorkerdLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.scoped("SmtpClient: STARTTLS, AUTH PLAIN over TLS, one message received exactly", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const { logins, server } = yield* authServer(workerd.pki.server)
        const outcome = yield* workerd.run({
          api: "client",
          port: server.port,
          security: "starttls",
          // the accepted TLS options: the connect host as servername, verification on
          tls: { servername: "127.0.0.1", rejectUnauthorized: true },
          auth: { user: USER, password: PASSWORD, mechanisms: ["PLAIN"] },
          from,
          to,
          message
        })
        assert.deepStrictEqual(outcome, { ok: true, secure: true, refused: [] })
        const received = yield* server.waitFor(1)
        assert.strictEqual(received.length, 1)
        const [mail] = received
        assert.strictEqual(mail.from, from)
        assert.deepStrictEqual(mail.to, to)
        assert.strictEqual(mail.data.toString("latin1"), message)
        assert.isTrue(mail.secure)
        assert.strictEqual(mail.user, USER)
        assert.strictEqual(mail.helo, "worker.test")
        assert.deepStrictEqual(logins, [{ method: "PLAIN", username: USER, secure: true }])
      }))

    it.scoped("the MIME composer runs in the Worker without nodejs_compat: Message.make, then send", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const { server } = yield* authServer(workerd.pki.server)
        const outcome = yield* workerd.run({
          api: "client",
          port: server.port,
          security: "starttls",
          auth: { user: USER, password: PASSWORD, mechanisms: ["PLAIN"] },
          from,
          to,
          message: "",
          compose: { subject: "Grüße aus dem Worker ✉", text: "Bonjour, ça marche.", attachment: "résumé.txt" }
        })
        assert.deepStrictEqual(outcome, { ok: true, secure: true, refused: [] })
        const [mail] = yield* server.waitFor(1)
        const parsed = yield* Effect.promise(() => PostalMime.parse(mail.data))
        assert.strictEqual(parsed.subject, "Grüße aus dem Worker ✉")
        assert.strictEqual(parsed.text?.trim(), "Bonjour, ça marche.")
        assert.deepStrictEqual(parsed.attachments.map((a) => [a.filename, a.mimeType]), [["résumé.txt", "text/plain"]])
        assert.deepStrictEqual(mail.to, to)
      }))

    it.scoped("Mailer: STARTTLS to localhost, AUTH LOGIN, a 1 MiB message (more than the write buffer)", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const { logins, server } = yield* authServer(workerd.pki.server)
        const line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklm\r\n"
        const big = "Subject: big\r\n\r\n" + Array.from({ length: 12_000 }, (_, i) => `${i} ${line}`).join("")
        assert.isAbove(big.length, 1024 * 1024)
        const outcome = yield* workerd.run({
          api: "mailer",
          host: "localhost",
          port: server.port,
          security: "starttls",
          auth: { user: USER, password: PASSWORD, mechanisms: ["LOGIN"] },
          from,
          to: [to[0]],
          message: big
        })
        assert.deepStrictEqual(outcome, { ok: true, secure: null, refused: [] })
        const [mail] = yield* server.waitFor(1)
        assert.deepStrictEqual(mail.to, [to[0]])
        assert.isTrue(mail.data.toString("latin1") === big, "the 1 MiB message arrived intact")
        assert.deepStrictEqual(logins, [{ method: "LOGIN", username: USER, secure: true }])
      }))

    it.scoped("implicit TLS (security: \"tls\"): TLS before the greeting, AUTH, the message", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const { logins, server } = yield* authServer(workerd.pki.server, { secure: true })
        const outcome = yield* workerd.run({
          api: "client",
          port: server.port,
          security: "tls",
          auth: { user: USER, password: PASSWORD },
          from,
          to,
          message
        })
        assert.deepStrictEqual(outcome, { ok: true, secure: true, refused: [] })
        const [mail] = yield* server.waitFor(1)
        assert.strictEqual(mail.data.toString("latin1"), message)
        assert.isTrue(mail.secure)
        assert.lengthOf(logins, 1)
        assert.isTrue(logins[0].secure)
      }))

    it.effect("a refused connection is SmtpConnectError", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const port = yield* closedPort
        const outcome = yield* workerd.run({ api: "client", port, security: "none", from, to, message })
        const failure = assertFailed(outcome, "SmtpConnectError")
        assert.include(failure.message, `127.0.0.1:${port}`)
      }))

    it.scoped("a certificate the runtime does not trust: SmtpTlsError after STARTTLS, no AUTH, no message", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const { logins, server } = yield* authServer(workerd.pki.selfSigned)
        const outcome = yield* workerd.run({
          api: "client",
          port: server.port,
          security: "starttls",
          auth: { user: USER, password: PASSWORD },
          from,
          to,
          message
        })
        const failure = assertFailed(outcome, "SmtpTlsError")
        assert.strictEqual(failure.reason, "other")
        assert.include(failure.message, "the TLS handshake failed")
        assert.deepStrictEqual(logins, [])
        assert.lengthOf(server.received, 0)
        // what the runtime told the Worker only as "internal error"
        assert.match(workerd.log(), /TLS handshake failed|certificate/i)
      }))

    it.scoped("TLS options Workers cannot honour fail with SmtpTlsError instead of being ignored", () =>
      Effect.gen(function*() {
        const workerd = yield* WorkerdService
        const { logins, server } = yield* authServer(workerd.pki.server)
        const refused: Array<[Job["tls"], string]> = [
          [{ ca: workerd.pki.ca.cert }, "tls.ca"],
          [{ rejectUnauthorized: false }, "tls.rejectUnauthorized"],
          [{ minVersion: "TLSv1.3" }, "tls.minVersion"],
          [{ servername: "localhost" }, "tls.servername"],
          [{ cert: workerd.pki.server.cert }, "tls.cert"]
        ]
        for (const [tls, option] of refused) {
          const outcome = yield* workerd.run({
            api: "client",
            port: server.port,
            security: "starttls",
            tls,
            auth: { user: USER, password: PASSWORD },
            from,
            to,
            message
          })
          const failure = assertFailed(outcome, "SmtpTlsError")
          assert.strictEqual(failure.reason, "other")
          assert.include(failure.message, "not supported by Cloudflare Workers")
          assert.include(failure.message, option)
        }
        assert.deepStrictEqual(logins, [])
        assert.lengthOf(server.received, 0)

        // implicit TLS: refused before connecting
        const smtps = yield* authServer(workerd.pki.server, { secure: true })
        const outcome = yield* workerd.run({
          api: "client",
          port: smtps.server.port,
          security: "tls",
          tls: { ca: workerd.pki.ca.cert },
          from,
          to,
          message
        })
        assert.include(assertFailed(outcome, "SmtpTlsError").message, "tls.ca")
        assert.strictEqual(smtps.connections(), 0)
      }))
  })
})
