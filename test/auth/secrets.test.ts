/**
 * Credentials never leave the wire: every auth path below runs with `debug: 2`, all log output
 * captured (stringLogger, jsonLogger and logfmtLogger renderings of each record), every span
 * recorded (name, attributes, events, exit), and every error rendered (message, String, JSON,
 * Inspectable, Cause.pretty); none of it may contain a password, a token, their base64 forms or
 * any AUTH payload the client wrote.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Inspectable, Logger, LogLevel, Option, Redacted, type Scope } from "effect"
import { SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import type { ScriptedTransport } from "effect-smtp/testing"
import * as EmbeddedServer from "../support/smtpServer.js"
import { recordingTracer } from "../support/tracer.js"
import {
  b64,
  EHLO,
  oauthBearer,
  oauthErrorJson,
  type Outcome,
  QUIT,
  rfc2195,
  scripted,
  tokenProvider,
  xoauth2
} from "./helpers.js"
import * as ScramServer from "./scramServer.js"

const PASSWORD = "Tr0ub4dor&3-plain-secret"
const SCRAM_PASSWORD = "pencil-SCRAM-secret"
const TOKEN_1 = "ya29.A0-first-token-value"
const TOKEN_2 = "ya29.A0-fresh-token-value"
const CUSTOM = "custom-mechanism-secret"
const user = "someone@example.com"

/** Every base64 rendering of `secret` inside a longer string: the three alignments, edges trimmed. */
const base64Forms = (secret: string): Array<string> =>
  [0, 1, 2].map((k) => b64("\u0000".repeat(k) + secret).slice([0, 2, 3][k]).slice(0, -4))

/** The AUTH payloads among lines a client wrote: initial responses and challenge responses. */
const payloads = (lines: ReadonlyArray<string>): Array<string> =>
  lines.flatMap((line) => {
    const auth = /^AUTH \S+ (\S+)$/i.exec(line)
    if (auth !== null) return auth[1] === "=" ? [] : [auth[1]]
    if (/^(EHLO|HELO|AUTH|QUIT|NOOP|RSET|STARTTLS|MAIL|RCPT|DATA)\b/i.test(line)) return []
    return line === "" || line === "*" ? [] : [line]
  })

const makeCapture = () => {
  const rendered: Array<string> = []
  const messages: Array<string> = []
  const errors: Array<string> = []
  const wirePayloads: Array<string> = []

  const logger = Logger.make((options) => {
    const message = options.message
    messages.push(...(Array.isArray(message) ? message : [message]).map((m) => Inspectable.toStringUnknown(m)))
    rendered.push(
      Logger.stringLogger.log(options),
      Logger.jsonLogger.log(options),
      Logger.logfmtLogger.log(options),
      Inspectable.toStringUnknown(options.annotations),
      Cause.pretty(options.cause)
    )
  })

  const { spans, tracer } = recordingTracer()

  const recordError = (error: unknown) => {
    const message = typeof error === "object" && error !== null && "message" in error ? String(error.message) : ""
    errors.push(
      message,
      String(error),
      JSON.stringify(error) ?? "",
      Inspectable.toStringUnknown(error),
      Cause.pretty(Cause.fail(error))
    )
  }

  const wrap = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    effect.pipe(
      Effect.tapError((e) => Effect.sync(() => recordError(e))),
      Logger.withMinimumLogLevel(LogLevel.Debug),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.withTracer(tracer)
    )

  /** A scripted session (debug 2), recording its error and the payloads written. */
  const session = <A, E>(
    steps: Parameters<typeof scripted<A, E>>[0],
    use: Parameters<typeof scripted<A, E>>[1],
    options: SmtpClient.Options = {},
    script: Parameters<typeof scripted<A, E>>[3] = {}
  ): Effect.Effect<Outcome<A, E>> =>
    wrap(scripted(steps, use, { debug: 2, ...options }, script)).pipe(
      Effect.tap((outcome) =>
        Effect.sync(() => {
          if (Either.isLeft(outcome.result)) recordError(outcome.result.left)
          wirePayloads.push(...payloads(outcome.record.units()))
        })
      )
    )

  const sources = (): Record<string, string> => ({
    "log output": [...rendered, ...messages].join("\n"),
    "errors": errors.join("\n"),
    "spans": spans.flatMap((s) => [
      s.name,
      Inspectable.toStringUnknown([...s.attributes]),
      Inspectable.toStringUnknown(s.events),
      s.exit === undefined ? "" : Inspectable.toStringUnknown(s.exit),
      s.exit !== undefined && Exit.isFailure(s.exit) ? Cause.pretty(s.exit.cause) : ""
    ]).join("\n")
  })

  /** Asserts that nothing captured holds a secret, and that the capture did capture something. */
  const assertClean = (secrets: ReadonlyArray<string>) => {
    const captured = Object.entries(sources())
    assert.isAbove(messages.filter((m) => / S: 2\d\d /.test(m)).length, 0, "the transcript was captured")
    assert.isAbove(spans.length, 0, "spans were recorded")
    assert.isAbove(errors.length, 0, "errors were rendered")
    const forbidden = [...secrets.flatMap((s) => [s, ...base64Forms(s)]), ...wirePayloads]
    for (const needle of forbidden) {
      if (needle.length < 6) continue
      for (const [source, text] of captured) {
        assert.isFalse(
          text.includes(needle),
          `a secret leaked into the ${source}: ${JSON.stringify(needle.slice(0, 3))}...`
        )
      }
    }
  }

  const transcript = (suffix: string) => messages.some((m) => m.endsWith(` ${suffix}`))

  return { wrap, session, recordError, assertClean, transcript, messages, spans, wirePayloads }
}

const plainIr = b64(`\u0000user\u0000${PASSWORD}`)
const refused = "535 5.7.8 Authentication credentials invalid"
const password = Redacted.make(PASSWORD)

describe("no credential in logs, spans or errors", () => {
  it.effect("password mechanisms over the scripted transport, success and failure", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const login = (options = {}) => (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) =>
        smtp.login("user", password, { allowInsecure: true, ...options })
      yield* capture.session([
        EHLO("PLAIN"),
        { expect: `AUTH PLAIN ${plainIr}`, reply: "235 2.7.0 ok" },
        QUIT
      ], login())
      yield* capture.session([
        EHLO("PLAIN"),
        { expect: "AUTH PLAIN", reply: "334 " },
        { expect: plainIr, reply: refused },
        QUIT
      ], login({ initialResponseOk: false }))
      yield* capture.session([
        EHLO("LOGIN"),
        { expect: `AUTH LOGIN ${b64("user")}`, reply: "334 UGFzc3dvcmQ6" },
        { expect: b64(PASSWORD), reply: "235 2.7.0 ok" },
        QUIT
      ], login())
      yield* capture.session([
        EHLO("LOGIN"),
        { expect: "AUTH LOGIN", reply: "334 VXNlcm5hbWU6" },
        { expect: b64("user"), reply: "334 UGFzc3dvcmQ6" },
        { expect: b64(PASSWORD), reply: refused },
        QUIT
      ], login({ initialResponseOk: false }))
      yield* capture.session([
        EHLO("LOGIN PLAIN CRAM-MD5"),
        { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
        { expect: /./, reply: refused },
        { expect: `AUTH PLAIN ${plainIr}`, reply: "501 5.5.2 Syntax error" },
        { expect: `AUTH LOGIN ${b64("user")}`, reply: "334 UGFzc3dvcmQ6" },
        { expect: b64(PASSWORD), reply: `334 ${b64("Again:")}` },
        { expect: "*", reply: "501 5.7.0 cancelled" },
        QUIT
      ], login())
      yield* capture.session([
        EHLO("CRAM-MD5"),
        { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
        { expect: b64(rfc2195.response), reply: "235 2.7.0 ok" },
        QUIT
      ], (smtp) => smtp.login(rfc2195.user, Redacted.make(rfc2195.password)))
      yield* capture.session([
        EHLO("CRAM-MD5"),
        { expect: "AUTH CRAM-MD5", reply: "334 not base64!" },
        { expect: "*", reply: "501 5.7.0 cancelled" },
        QUIT
      ], login())
      yield* capture.session([EHLO("PLAIN LOGIN"), QUIT], (smtp) => smtp.login("user", password))
      yield* capture.session([EHLO("GSSAPI"), QUIT], login())
      yield* capture.session([EHLO(undefined), QUIT], login())

      assert.isTrue(capture.transcript("C: AUTH PLAIN <redacted>"))
      assert.isTrue(capture.transcript("C: <redacted>"))
      assert.isTrue(capture.transcript("C: AUTH LOGIN"))
      assert.isTrue(capture.transcript("C: AUTH LOGIN <redacted>"))
      assert.isTrue(capture.transcript("C: AUTH CRAM-MD5"))
      assert.isTrue(capture.transcript("C: *"))
      assert.isTrue(capture.transcript("S: 334 VXNlcm5hbWU6"))
      assert.isTrue(
        capture.spans.some((s) => s.name === "SmtpConnection.login" && s.attributes.get("smtp.operation") === "login")
      )
      assert.includeMembers(capture.wirePayloads, [plainIr, b64(PASSWORD), b64(rfc2195.response)])
      capture.assertClean([PASSWORD, rfc2195.password, b64(rfc2195.response)])
    }))

  it.effect("XOAUTH2 and OAUTHBEARER: refresh, both rejected, refused in clear", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const rejected = (mechanism: string, answer: string): ReadonlyArray<ScriptedTransport.Step> => [
        { expect: new RegExp(`^AUTH ${mechanism} `), reply: `334 ${b64(oauthErrorJson)}` },
        { expect: answer, reply: refused }
      ]
      yield* capture.session(
        [EHLO("XOAUTH2"), ...rejected("XOAUTH2", ""), { expect: /^AUTH XOAUTH2 /, reply: "235 2.7.0 ok" }, QUIT],
        (smtp) => smtp.loginOAuth2(user, tokenProvider(TOKEN_1, TOKEN_2).provider, { allowInsecure: true })
      )
      yield* capture.session(
        [EHLO("XOAUTH2"), ...rejected("XOAUTH2", ""), ...rejected("XOAUTH2", ""), QUIT],
        (smtp) => smtp.loginOAuth2(user, tokenProvider(TOKEN_1, TOKEN_2).provider, { allowInsecure: true })
      )
      yield* capture.session(
        [EHLO("OAUTHBEARER"), ...rejected("OAUTHBEARER", "AQ=="), ...rejected("OAUTHBEARER", "AQ=="), QUIT],
        (smtp) => smtp.loginOAuth2(user, tokenProvider(TOKEN_1, TOKEN_2).provider),
        { security: "tls" }
      )
      yield* capture.session(
        [EHLO("OAUTHBEARER"), { expect: /^AUTH OAUTHBEARER /, reply: "235 2.7.0 ok" }, QUIT],
        (smtp) => smtp.loginOAuth2(user, tokenProvider(TOKEN_2).provider),
        { security: "tls" }
      )
      yield* capture.session(
        [EHLO("XOAUTH2"), QUIT],
        (smtp) => smtp.loginOAuth2(user, tokenProvider(TOKEN_1).provider)
      )
      assert.isTrue(capture.transcript("C: AUTH XOAUTH2 <redacted>"))
      assert.isTrue(capture.transcript("C: AUTH OAUTHBEARER <redacted>"))
      assert.includeMembers(capture.wirePayloads, [
        b64(xoauth2(user, TOKEN_1)),
        b64(xoauth2(user, TOKEN_2)),
        b64(oauthBearer(user, TOKEN_1, "mx.test", 465))
      ])
      capture.assertClean([TOKEN_1, TOKEN_2, `Bearer ${TOKEN_1}`, xoauth2(user, TOKEN_1)])
    }))

  it.effect("auth() with a custom mechanism: responses, the 334 loop, a failing authenticator, refused in clear", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const tls: SmtpClient.Options = { security: "tls" }
      const secretAnswer = (challenge: Option.Option<Uint8Array>) =>
        Effect.succeed(Option.isNone(challenge) ? `${CUSTOM}-initial` : `${CUSTOM}-response`)
      yield* capture.session(
        [
          EHLO("X-SECRET"),
          { expect: `AUTH X-SECRET ${b64(`${CUSTOM}-initial`)}`, reply: `334 ${b64("challenge")}` },
          { expect: b64(`${CUSTOM}-response`), reply: "235 2.7.0 ok" },
          QUIT
        ],
        (smtp) => smtp.auth("X-SECRET", secretAnswer),
        tls
      )
      const loop: ReadonlyArray<ScriptedTransport.Step> = Array.from({ length: 5 }, () => ({
        expect: b64(`${CUSTOM}-response`),
        reply: `334 ${b64("more")}`
      }))
      yield* capture.session(
        [
          EHLO("X-SECRET"),
          { expect: /^AUTH X-SECRET /, reply: `334 ${b64("more")}` },
          ...loop,
          { expect: "*", reply: "501 5.7.0 cancelled" },
          QUIT
        ],
        (smtp) => smtp.auth("X-SECRET", secretAnswer),
        tls
      )
      yield* capture.session([
        EHLO("X-SECRET"),
        { expect: /^AUTH X-SECRET /, reply: `334 ${b64("challenge")}` },
        { expect: "*", reply: "501 5.7.0 cancelled" },
        QUIT
      ], (smtp) =>
        smtp.auth(
          "X-SECRET",
          (challenge) => Option.isNone(challenge) ? secretAnswer(challenge) : Effect.fail("authenticator gave up")
        ), tls)
      // refused in clear to a non-loopback host: the authenticator never runs
      yield* capture.session([EHLO("X-SECRET"), QUIT], (smtp) => smtp.auth("X-SECRET", secretAnswer))
      assert.isTrue(capture.transcript("C: AUTH X-SECRET <redacted>"))
      capture.assertClean([CUSTOM])
    }))

  it.effect("SCRAM-SHA-256 over the scripted transport: success, wrong signature, no signature", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const credentials = { user: "user", password: SCRAM_PASSWORD }
      const login = (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) =>
        smtp.login("user", Redacted.make(SCRAM_PASSWORD))
      yield* capture.session((ref) => [
        EHLO("SCRAM-SHA-256"),
        ...ScramServer.scriptedSteps(ref, "ok", credentials),
        { expect: "", reply: "235 2.7.0 ok" },
        QUIT
      ], login)
      yield* capture.session(
        (ref) => [
          EHLO("SCRAM-SHA-256"),
          ...ScramServer.scriptedSteps(ref, "badSignature", credentials),
          { expect: "*", reply: "501 5.7.0 cancelled" },
          QUIT
          // QUIT or a close after the cancellation: not prescribed
        ],
        login,
        {},
        { strict: false }
      )
      yield* capture.session(
        (ref) => [EHLO("SCRAM-SHA-256"), ...ScramServer.scriptedSteps(ref, "skipFinal", credentials)],
        login
      )
      assert.isTrue(capture.transcript("C: AUTH SCRAM-SHA-256 <redacted>"))
      assert.strictEqual(capture.wirePayloads.length, 6)
      capture.assertClean([SCRAM_PASSWORD])
    }))
})

describe("the leak check itself (controls)", () => {
  it.effect("catches a password in base64 at any alignment in a log line", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      yield* capture.session(
        [EHLO("PLAIN"), { expect: `AUTH PLAIN ${plainIr}`, reply: refused }, QUIT],
        (smtp) =>
          Effect.zipRight(
            Effect.logDebug(`oops ${b64(`xy${PASSWORD}`)}`),
            smtp.login("user", password, { allowInsecure: true })
          )
      )
      assert.throws(() => capture.assertClean([PASSWORD]), /a secret leaked/)
    }))

  it.effect("catches a token in a span attribute", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      yield* capture.session(
        [
          EHLO("XOAUTH2"),
          { expect: /^AUTH XOAUTH2 /, reply: refused },
          { expect: /^AUTH XOAUTH2 /, reply: refused },
          QUIT
        ],
        (smtp) =>
          smtp.loginOAuth2(user, tokenProvider(TOKEN_1).provider, { allowInsecure: true }).pipe(
            Effect.withSpan("user.span", { attributes: { token: TOKEN_1 } })
          )
      )
      assert.throws(() => capture.assertClean([TOKEN_1]), /a secret leaked/)
    }))
})

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

describe("no credential in logs, spans or errors: real TCP", () => {
  it.live("SCRAM over the raw server: success, wrong password, wrong signature, no signature", () =>
    live(Effect.gen(function*() {
      const capture = makeCapture()
      for (const mode of ["ok", "badSignature", "skipFinal"] as const) {
        const server = yield* ScramServer.make({ user: "user", password: SCRAM_PASSWORD, mode })
        for (const attempt of mode === "ok" ? [SCRAM_PASSWORD, PASSWORD, SCRAM_PASSWORD] : [SCRAM_PASSWORD]) {
          yield* capture.wrap(
            Effect.scoped(Effect.flatMap(
              SmtpClient.connect({ host: "127.0.0.1", port: server.port, security: "none", debug: 2 }),
              (smtp) => smtp.login("user", Redacted.make(attempt), { mechanisms: ["SCRAM-SHA-1", "SCRAM-SHA-256"] })
            ))
          ).pipe(Effect.ignore)
        }
        capture.wirePayloads.push(...server.lines.flatMap(payloads))
      }
      assert.isAbove(capture.wirePayloads.length, 8)
      capture.assertClean([SCRAM_PASSWORD, PASSWORD])
    })))

  it.live("smtp-server: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, success and failure", () =>
    live(Effect.gen(function*() {
      const capture = makeCapture()
      const server = yield* EmbeddedServer.make({
        authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
        allowInsecureAuth: true,
        onAuth(auth, _session, callback) {
          const method = String(auth.method)
          const ok = method === "CRAM-MD5"
            ? auth.validatePassword(PASSWORD)
            : method === "XOAUTH2"
            ? auth.accessToken === TOKEN_2
            : auth.password === PASSWORD
          if (ok) return callback(null, { user: auth.username })
          callback(null, method === "XOAUTH2" ? { data: JSON.parse(oauthErrorJson) } : {})
        }
      })
      const connect = SmtpClient.connect({ host: server.host, port: server.port, security: "none", debug: 2 })
      const attempts = [
        ...["CRAM-MD5", "PLAIN", "LOGIN"].flatMap((mechanism) => [
          Effect.flatMap(connect, (smtp) => smtp.login("alice", password, { mechanisms: [mechanism] })),
          Effect.flatMap(connect, (smtp) =>
            smtp.login("alice", Redacted.make(`${PASSWORD}-wrong`), { mechanisms: [mechanism] }))
        ]),
        Effect.flatMap(connect, (smtp) =>
          smtp.loginOAuth2("alice", tokenProvider(TOKEN_1, TOKEN_2).provider)),
        Effect.flatMap(connect, (smtp) => smtp.loginOAuth2("alice", tokenProvider(TOKEN_1).provider))
      ]
      const results = yield* Effect.forEach(attempts, (attempt) => Effect.either(capture.wrap(Effect.scoped(attempt))))
      assert.deepStrictEqual(results.map(Either.isRight), [true, false, true, false, true, false, true, false])
      capture.assertClean([
        PASSWORD,
        TOKEN_1,
        TOKEN_2,
        b64(`\u0000alice\u0000${PASSWORD}`),
        b64(xoauth2("alice", TOKEN_1))
      ])
    })))
})

describe("field injection: a value that would split or add a SASL field is refused before anything is written", () => {
  const EVIL = "EVILTOKEN-injected"
  const nothingAfterEhlo = "EHLO client.test\r\nQUIT\r\n"

  /** One refused attempt: SmtpInvalidInput naming the field, nothing but EHLO and QUIT written. */
  const refused = <E>(
    capture: ReturnType<typeof makeCapture>,
    auth: string,
    use: (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) => Effect.Effect<unknown, E>,
    field: string,
    options: SmtpClient.Options = {}
  ) =>
    Effect.gen(function*() {
      const { record, result, written } = yield* capture.session([EHLO(auth), QUIT], use, options)
      assert.deepStrictEqual(record.mismatches(), [])
      assert.strictEqual(written, nothingAfterEhlo, `${auth} / ${field}: nothing but EHLO and QUIT`)
      if (Either.isRight(result)) return assert.fail(`${auth} / ${field}: expected SmtpInvalidInput, got a success`)
      const error = result.left as { readonly _tag?: string; readonly message?: string }
      assert.strictEqual(error._tag, "SmtpInvalidInput", `${auth} / ${field}: ${error.message}`)
      assert.include(error.message ?? "", field, `${auth}: the message names the field`)
      return error.message ?? ""
    })

  it.effect("PLAIN: NUL in the user name, the authzid or the password; CR/LF in the user name", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const login =
        (user: string, secret: string, options = {}) => (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) =>
          smtp.login(user, Redacted.make(secret), { allowInsecure: true, ...options })
      yield* refused(capture, "PLAIN", login(`admin\u0000${EVIL}`, PASSWORD), "user name")
      yield* refused(capture, "PLAIN", login("user", PASSWORD, { authzid: `admin\u0000${EVIL}` }), "authzid")
      yield* refused(capture, "PLAIN", login("user", `${PASSWORD}\u0000${EVIL}`), "password")
      yield* refused(capture, "PLAIN", login(`user\r\n${EVIL}`, PASSWORD), "user name")
      // over TLS too: the check is about the message, not the channel
      yield* refused(capture, "PLAIN", login(`admin\u0000${EVIL}`, PASSWORD), "user name", { security: "tls" })
      capture.assertClean([PASSWORD, EVIL])
    }))

  it.effect("LOGIN: control characters in the user name, NUL in the password", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const login = (user: string, secret: string) => (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) =>
        smtp.login(user, Redacted.make(secret), { allowInsecure: true })
      yield* refused(capture, "LOGIN", login(`user\r\n${EVIL}`, PASSWORD), "user name")
      yield* refused(capture, "LOGIN", login(`user\u0000${EVIL}`, PASSWORD), "user name")
      yield* refused(capture, "LOGIN", login("user", `${PASSWORD}\u0000${EVIL}`), "password")
      capture.assertClean([PASSWORD, EVIL])
    }))

  it.effect("CRAM-MD5: a space or a control character in the user name (the response is user SP digest)", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const login = (user: string) => (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) =>
        smtp.login(user, Redacted.make(PASSWORD))
      const message = yield* refused(capture, "CRAM-MD5", login(`tim ${EVIL}`), "user name")
      assert.include(message, "space")
      yield* refused(capture, "CRAM-MD5", login(`tim\r\n${EVIL}`), "user name")
      capture.assertClean([PASSWORD, EVIL])
    }))

  it.effect("SCRAM: NUL in the authzid (no GS2 escape for it) or in the user name (SASLprep)", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const login = (user: string, authzid?: string) => (smtp: Parameters<Parameters<typeof scripted>[1]>[0]) =>
        smtp.login(user, Redacted.make(PASSWORD), authzid === undefined ? {} : { authzid })
      yield* refused(capture, "SCRAM-SHA-256", login("user", `admin\u0000${EVIL}`), "authzid")
      yield* refused(capture, "SCRAM-SHA-256", login(`user\u0000${EVIL}`), "user")
      capture.assertClean([PASSWORD, EVIL])
    }))

  it.effect("XOAUTH2 and OAUTHBEARER: ^A in the user name (an extra auth= field) refused before the token is fetched", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      for (const mechanism of ["XOAUTH2", "OAUTHBEARER"] as const) {
        for (const user of [`me@example.com\u0001auth=Bearer ${EVIL}`, `me@example.com\r\n${EVIL}`]) {
          const tokens = tokenProvider(TOKEN_1)
          yield* refused(
            capture,
            mechanism,
            (smtp) => smtp.loginOAuth2(user, tokens.provider, { mechanism }),
            "user name",
            { security: "tls" }
          )
          assert.strictEqual(tokens.runs(), 0, "the token provider did not run")
        }
      }
      capture.assertClean([TOKEN_1, EVIL])
    }))

  it.effect("XOAUTH2 and OAUTHBEARER: a token containing ^A or a line break is refused, never written", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      for (const mechanism of ["XOAUTH2", "OAUTHBEARER"] as const) {
        for (const token of [`${TOKEN_1}\u0001auth=Bearer ${EVIL}`, `${TOKEN_1}\r\n${EVIL}`]) {
          const message = yield* refused(
            capture,
            mechanism,
            (smtp) => smtp.loginOAuth2(user, tokenProvider(token).provider, { mechanism }),
            "token",
            { security: "tls" }
          )
          assert.notInclude(message, TOKEN_1)
        }
      }
      capture.assertClean([TOKEN_1, EVIL])
    }))

  it.effect("OAUTHBEARER: ',' and '=' in the user (the GS2 authzid) go out as =2C and =3D (RFC 7628 / RFC 5801)", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const awkward = "a,b=c@example.com"
      const expected =
        `n,a=a=2Cb=3Dc@example.com,\u0001host=mx.test\u0001port=465\u0001auth=Bearer ${TOKEN_1}\u0001\u0001`
      const { record, result } = yield* capture.session(
        [EHLO("OAUTHBEARER"), { expect: `AUTH OAUTHBEARER ${b64(expected)}`, reply: "235 2.7.0 ok" }, QUIT],
        (smtp) => smtp.loginOAuth2(awkward, tokenProvider(TOKEN_1).provider),
        { security: "tls" }
      )
      assert.isTrue(Either.isRight(result))
      assert.deepStrictEqual(record.mismatches(), [])
      assert.strictEqual(record.remaining(), 0)
    }))
})

describe("secrets in values the user holds", () => {
  it.effect("auth() with a payload pasted into the mechanism name does not echo it in the error", () =>
    Effect.gen(function*() {
      const capture = makeCapture()
      const { result } = yield* capture.session(
        [EHLO("PLAIN"), QUIT],
        (smtp) => smtp.auth(`PLAIN ${plainIr}`, () => Effect.succeed(undefined))
      )
      assert.strictEqual(Either.isLeft(result) ? result.left._tag : "success", "SmtpInvalidInput")
      capture.wirePayloads.push(plainIr)
      capture.assertClean([PASSWORD])
    }))

  it("a Redacted password and the TLS key option print as <redacted>", () => {
    const options: SmtpClient.Options = { tls: { key: Redacted.make("-----BEGIN PRIVATE KEY-----secret") } }
    for (
      const text of [String(password), JSON.stringify({ password, options }), Inspectable.toStringUnknown(options)]
    ) {
      assert.notInclude(text, PASSWORD)
      assert.notInclude(text, "PRIVATE KEY")
    }
  })
})
