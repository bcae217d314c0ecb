/**
 * The plaintext rule against a real server on an address that is not loopback: PLAIN, LOGIN, OAuth
 * tokens and any mechanism not known to be challenge-response (everything but SCRAM-* and CRAM-MD5)
 * are refused over an unencrypted connection unless `allowInsecure`, whichever operation asks:
 * `auth`, `login`, `loginOAuth2`, `connect({ auth })`. The server (test/support/recordingSmtpServer.mjs)
 * runs in a network namespace this file creates (test/support/netns.ts) and records every byte it
 * receives, so the assertions are about what reached the server, not about what the client says.
 *
 * Connections go only to the namespace's own address. Without root or `ip netns` the suite skips,
 * saying why; with SMTP_NETNS_REQUIRED=1 (.ci/run) it fails instead.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import type { Option } from "effect"
import { Context, Deferred, Duration, Effect, Either, Layer, Redacted } from "effect"
import { SmtpClient, type SmtpConnection, SmtpError } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as Readline from "node:readline"
import * as Url from "node:url"
import * as Netns from "../support/netns.js"

const PASSWORD = "netns-Secret-pw-7731"
const TOKEN = "ya29.netns-token-value-4410"
const serverScript = Url.fileURLToPath(new URL("../support/recordingSmtpServer.mjs", import.meta.url))

const b64 = (text: string): string => Buffer.from(text, "latin1").toString("base64")
/** Every base64 rendering of `secret` inside a longer string: the three alignments, edges trimmed. */
const base64Forms = (secret: string): Array<string> =>
  [0, 1, 2].map((k) => b64("\u0000".repeat(k) + secret).slice([0, 2, 3][k]).slice(0, -4))

interface Recorder {
  readonly address: string
  readonly port: number
  /** The bytes (latin1) received on the connection that said `EHLO <client>`, once it has closed. */
  readonly received: (client: string) => Effect.Effect<string>
}

class RecorderService extends Context.Tag("test/netns/Recorder")<RecorderService, Recorder>() {}

const RecorderLive = Layer.scoped(
  RecorderService,
  Effect.gen(function*() {
    const ns = yield* Netns.make
    const child = yield* ns.spawn(process.execPath, [serverScript, ns.address, "0"])
    const connections = new Map<number, { data: string; closed: boolean }>()
    const listening = yield* Deferred.make<number, string>()
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    child.once("exit", (code) => Deferred.unsafeDone(listening, Effect.fail(`server exited (${code}): ${stderr}`)))
    Readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const event = JSON.parse(line) as {
        listening?: { port: number }
        connection?: number
        data?: string
        closed?: boolean
      }
      if (event.listening !== undefined) Deferred.unsafeDone(listening, Effect.succeed(event.listening.port))
      if (event.connection === undefined) return
      const record = connections.get(event.connection) ?? { data: "", closed: false }
      connections.set(event.connection, record)
      if (event.data !== undefined) record.data += Buffer.from(event.data, "base64").toString("latin1")
      if (event.closed === true) record.closed = true
    })
    const port = yield* Deferred.await(listening).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => `no listening line: ${stderr}` }),
      Effect.orDieWith((reason) => new Error(`the recording server did not start in ${ns.namespace}: ${reason}`))
    )
    const received = (client: string) =>
      Effect.gen(function*() {
        const deadline = Date.now() + 10_000
        while (Date.now() < deadline) {
          for (const record of connections.values()) {
            if (record.closed && record.data.startsWith(`EHLO ${client}\r\n`)) return record.data
          }
          yield* Effect.sleep(Duration.millis(20))
        }
        return yield* Effect.dieMessage(`no closed connection from ${client} was recorded`)
      })
    return { address: ns.address, port, received }
  })
)

let clients = 0

/**
 * One session with the recorder (EHLO name unique to the call), closed (QUIT) before the bytes the
 * server received are read.
 */
const session = <A, E>(
  use: (smtp: SmtpConnection.Service) => Effect.Effect<A, E>,
  options: Partial<SmtpClient.Options> = {}
) =>
  Effect.gen(function*() {
    const recorder = yield* RecorderService
    const client = `c${++clients}.client.test`
    assert.notStrictEqual(recorder.address.split(".")[0], "127")
    const result = yield* Effect.scoped(
      Effect.flatMap(
        SmtpClient.connect({
          host: recorder.address,
          port: recorder.port,
          security: "none",
          localHostname: client,
          ...options
        }),
        use
      )
    ).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.either)
    const wire = yield* recorder.received(client)
    return { result, wire, client }
  })

/** Nothing but EHLO and QUIT reached the server: no AUTH line, no password or token in any form. */
const assertNothingSent = (wire: string, client: string) => {
  assert.strictEqual(wire, `EHLO ${client}\r\nQUIT\r\n`)
  for (const secret of [PASSWORD, TOKEN]) {
    for (const needle of [secret, ...base64Forms(secret)]) assert.notInclude(wire, needle)
  }
}

const refusal = (result: Either.Either<unknown, unknown>): SmtpError.SmtpInvalidInput => {
  if (Either.isRight(result)) return assert.fail("expected the plaintext rule to refuse, got a success")
  const error = result.left as SmtpError.SmtpInvalidInput
  assert.strictEqual(error._tag, "SmtpInvalidInput", `got ${error._tag}: ${error.message}`)
  assert.include(error.message, "allowInsecure: true")
  assert.notInclude(error.message, PASSWORD)
  assert.notInclude(error.message, TOKEN)
  return error
}

/** An authenticator that counts its calls and answers with PLAIN's message (smtplib's `auth_plain`). */
const plainAuthenticator = () => {
  let calls = 0
  return {
    calls: () => calls,
    authenticator: (_challenge: Option.Option<Uint8Array>) =>
      Effect.sync(() => {
        calls++
        return `\u0000user\u0000${PASSWORD}`
      })
  }
}

// with SMTP_NETNS_REQUIRED=1 (.ci/run) an unavailable namespace is a failed test, not a skipped suite
describe.runIf(Netns.required)("SMTP_NETNS_REQUIRED=1", () => {
  it("network namespaces with veth pairs can be made here", () => {
    const reason = Netns.unavailableReason()
    assert.isUndefined(reason, `SMTP_NETNS_REQUIRED=1 but ${reason}`)
  })
})

describe.skipIf(Netns.skipReason() !== undefined)(
  Netns.skipReason() ?? "plaintext rule against a server on a non-loopback address (network namespace)",
  () => {
    layer(RecorderLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
      it.effect("auth(\"PLAIN\", authenticator): SmtpInvalidInput, no AUTH line, the authenticator never runs", () =>
        Effect.gen(function*() {
          const auth = plainAuthenticator()
          const { client, result, wire } = yield* session((smtp) => smtp.auth("PLAIN", auth.authenticator))
          const error = refusal(result)
          assert.include(error.message, "PLAIN")
          assert.strictEqual(auth.calls(), 0)
          assertNothingSent(wire, client)
        }))

      it.effect("auth(\"PLAIN\") with initialResponseOk false: not even a bare AUTH PLAIN", () =>
        Effect.gen(function*() {
          const auth = plainAuthenticator()
          const { client, result, wire } = yield* session((smtp) =>
            smtp.auth("plain", auth.authenticator, { initialResponseOk: false })
          )
          refusal(result)
          assert.strictEqual(auth.calls(), 0)
          assertNothingSent(wire, client)
        }))

      it.effect("auth with LOGIN, XOAUTH2 and custom mechanism names: each refused, nothing written", () =>
        Effect.gen(function*() {
          for (const name of ["LOGIN", "XOAUTH2", "OAUTHBEARER", "X-TOKEN", "GSSAPI"]) {
            const auth = plainAuthenticator()
            const { client, result, wire } = yield* session((smtp) => smtp.auth(name, auth.authenticator))
            assert.include(refusal(result).message, name)
            assert.strictEqual(auth.calls(), 0, name)
            assertNothingSent(wire, client)
          }
        }))

      it.effect("auth with CRAM-MD5 (challenge-response) is not refused: the AUTH line reaches the server", () =>
        Effect.gen(function*() {
          const { client, result, wire } = yield* session((smtp) =>
            smtp.auth("CRAM-MD5", () => Effect.succeed(undefined))
          )
          assert.strictEqual(wire, `EHLO ${client}\r\nAUTH CRAM-MD5\r\nQUIT\r\n`)
          if (Either.isRight(result)) return assert.fail("the recorder refuses CRAM-MD5 (504)")
          assert.instanceOf(result.left, SmtpError.SmtpAuthenticationError)
          assert.strictEqual((result.left as SmtpError.SmtpAuthenticationError).code, 504)
        }))

      it.effect("login (PLAIN and LOGIN offered): refused, nothing after EHLO", () =>
        Effect.gen(function*() {
          for (const mechanisms of [undefined, ["LOGIN"], ["PLAIN"]]) {
            const { client, result, wire } = yield* session((smtp) =>
              smtp.login("user", Redacted.make(PASSWORD), mechanisms === undefined ? {} : { mechanisms })
            )
            refusal(result)
            assertNothingSent(wire, client)
          }
        }))

      it.effect("loginOAuth2 (XOAUTH2 and OAUTHBEARER offered): refused, the token provider never runs", () =>
        Effect.gen(function*() {
          for (const mechanism of [undefined, "XOAUTH2", "OAUTHBEARER"] as const) {
            let runs = 0
            const token = Effect.sync(() => {
              runs++
              return Redacted.make(TOKEN)
            })
            const { client, result, wire } = yield* session((smtp) =>
              smtp.loginOAuth2("user@example.com", token, mechanism === undefined ? {} : { mechanism })
            )
            refusal(result)
            assert.strictEqual(runs, 0)
            assertNothingSent(wire, client)
          }
        }))

      it.effect("connect({ auth }): refused, the connection is closed with QUIT", () =>
        Effect.gen(function*() {
          const { client, result, wire } = yield* session(() => Effect.void, {
            auth: { user: "user", password: Redacted.make(PASSWORD) }
          })
          refusal(result)
          assertNothingSent(wire, client)
        }))

      it.effect("control: allowInsecure opts in, and then the recorder does see the AUTH line and the password", () =>
        Effect.gen(function*() {
          const auth = plainAuthenticator()
          const { client, result, wire } = yield* session((smtp) =>
            smtp.auth("PLAIN", auth.authenticator, { allowInsecure: true })
          )
          assert.strictEqual(auth.calls(), 1)
          const plain = b64(`\u0000user\u0000${PASSWORD}`)
          assert.strictEqual(wire, `EHLO ${client}\r\nAUTH PLAIN ${plain}\r\nQUIT\r\n`)
          assert.isTrue(base64Forms(PASSWORD).some((form) => wire.includes(form)), "the leak check can see it")
          assert.instanceOf(Either.isLeft(result) ? result.left : undefined, SmtpError.SmtpAuthenticationError)
          const login = yield* session((smtp) => smtp.login("user", Redacted.make(PASSWORD), { allowInsecure: true }))
          assert.include(login.wire, `\r\nAUTH PLAIN ${plain}\r\n`)
        }))
    })
  }
)
