/**
 * SMTP AUTH (RFC 4954) over the engine: one SASL exchange, and `login` / `loginOAuth2` / `auth`
 * built on it. Credentials only ever reach the wire: the transcript shows `<redacted>`, errors
 * carry server replies and mechanism names. The plaintext rule (no credentials in clear to a host
 * that is not loopback without `allowInsecure`) is enforced by the exchange itself, so every
 * operation passes through it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as SmtpAuth from "../SmtpAuth.js"
import {
  replyFields,
  SmtpAuthenticationError,
  type SmtpError,
  SmtpInvalidInput,
  SmtpNotSupportedError
} from "../SmtpError.js"
import type { SmtpReply } from "../SmtpReply.js"
import * as Codec from "./command.js"
import type { Engine } from "./engine.js"
import { fromBase64, toBase64, utf8 } from "./sasl/bytes.js"
import * as Sasl from "./sasl/index.js"

/** smtplib's `_MAXCHALLENGE`: how many 334 challenges one exchange may have. */
export const MAX_CHALLENGES = 5

export interface AuthContext {
  readonly engine: Engine
  readonly ehloOrHeloIfNeeded: Effect.Effect<void, SmtpError>
  readonly features: () => ReadonlyMap<string, string>
  /** The connection goes to this machine (loopback address or Unix socket). */
  readonly loopback: boolean
  readonly host: string
  readonly port: number
  readonly authenticated: () => void
  /** What the next operation must do first after an interrupted exchange. */
  readonly onInterrupted: (recover: Effect.Effect<void>) => void
}

/** A step failed on the client side: the exchange is cancelled with `*` and fails with this reason. */
class Abort {
  readonly _tag = "Abort"
  constructor(readonly reason: string) {}
}

interface Mechanism<E, R> {
  readonly name: string
  readonly step: (challenge: Option.Option<Uint8Array>) => Effect.Effect<Uint8Array | undefined, Abort | E, R>
  /** After 235: a mechanism with something left to verify fails here (SCRAM's server signature). */
  readonly complete: Either.Either<void, string>
  /**
   * The mechanism authenticates the server too (SCRAM): when it aborts, the server failed to prove
   * itself, and the connection is closed after the cancellation so that no other mechanism hands it
   * a password. Other aborts (a challenge PLAIN or LOGIN did not expect) leave the session usable.
   */
  readonly verifiesServer: boolean
}

interface ExchangeOptions {
  readonly initialResponseOk: boolean
  /** The caller's opt-in to credentials in clear to a host that is not loopback (required: no default). */
  readonly allowInsecure: boolean
  /** The mechanisms tried so far, this one included, for the error. */
  readonly tried: ReadonlyArray<string>
}

const authError = (reply: SmtpReply, mechanisms: ReadonlyArray<string>, detail?: string) =>
  new SmtpAuthenticationError({
    ...replyFields(reply, "AUTH"),
    mechanisms,
    ...(detail === undefined ? {} : { detail })
  })

const send = (engine: Engine, line: string, display: string) =>
  Effect.flatMap(Codec.secretLine("AUTH", line, display), engine.command)

/** The connection is neither encrypted nor to this machine, and the caller did not opt in. */
const inClear = (ctx: AuthContext, allowInsecure: boolean) => !allowInsecure && !ctx.engine.isSecure() && !ctx.loopback

const insecureRefusal = (what: string) =>
  new SmtpInvalidInput({
    reason: `Refusing to send ${what} over an unencrypted connection to a host that is not loopback: ` +
      `connect with security "starttls" or "tls", or pass { allowInsecure: true } to opt in`
  })

/** What a mechanism would expose in clear, for the refusal (the name is a validated mechanism name). */
const secretOf = (name: string) =>
  name === "PLAIN" || name === "LOGIN"
    ? `a password (AUTH ${name})`
    : name === "XOAUTH2" || name === "OAUTHBEARER"
    ? `an OAuth token (AUTH ${name})`
    : `AUTH ${name} credentials (only SCRAM-* and CRAM-MD5 are known not to expose a secret)`

/**
 * Go's net/smtp rule, for every mechanism but the challenge-response ones (SCRAM-*, CRAM-MD5): a
 * mechanism not known to be safe, custom ones included, is assumed to send its secret in clear.
 */
const plaintextRule = (ctx: AuthContext, name: string, allowInsecure: boolean): Effect.Effect<void, SmtpInvalidInput> =>
  Sasl.isSafeInClear(name) || !inClear(ctx, allowInsecure) ?
    Effect.void :
    Effect.fail(insecureRefusal(secretOf(name.toUpperCase())))

/**
 * Runs one exchange: the plaintext rule first (nothing is written, the mechanism is not asked for
 * anything, when it refuses), then AUTH and the challenges. Fails with `SmtpAuthenticationError` on
 * a refusal or a cancelled exchange; E from a custom step.
 */
const exchange = <E, R>(
  ctx: AuthContext,
  mechanism: Mechanism<E, R>,
  options: ExchangeOptions
): Effect.Effect<SmtpReply, SmtpError | E, R> =>
  // `started` belongs to one run (the same Effect run again starts from nothing)
  Effect.suspend(() => exchangeOnce(ctx, mechanism, options))

const exchangeOnce = <E, R>(
  ctx: AuthContext,
  mechanism: Mechanism<E, R>,
  { allowInsecure, initialResponseOk, tried }: ExchangeOptions
): Effect.Effect<SmtpReply, SmtpError | E, R> => {
  let started = false
  return Effect.gen(function*() {
    const { engine } = ctx
    yield* plaintextRule(ctx, mechanism.name, allowInsecure)
    const cancel = (reason: string) =>
      Effect.flatMap(send(engine, "*", "*"), (reply) => Effect.fail(authError(reply, tried, reason)))
    const initial = initialResponseOk ? yield* Effect.either(mechanism.step(Option.none())) : Either.right(undefined)
    if (Either.isLeft(initial)) {
      if (initial.left instanceof Abort) {
        return yield* Effect.fail(new SmtpInvalidInput({ reason: initial.left.reason }))
      }
      return yield* Effect.fail(initial.left as E)
    }
    started = true
    let reply = initial.right === undefined ?
      yield* Effect.flatMap(Codec.encode("AUTH", mechanism.name), engine.command) :
      yield* send(
        engine,
        `AUTH ${mechanism.name} ${initial.right.length === 0 ? "=" : toBase64(initial.right)}`,
        `AUTH ${mechanism.name} <redacted>`
      )
    let challenges = 0
    while (reply.code === 334) {
      if (++challenges > MAX_CHALLENGES) {
        return yield* cancel(`more than ${MAX_CHALLENGES} challenges: the exchange was cancelled`)
      }
      const challenge = fromBase64(reply.text.trim())
      if (challenge === undefined) return yield* cancel("the server's challenge is not valid base64")
      const response = yield* Effect.either(mechanism.step(Option.some(challenge)))
      if (Either.isLeft(response)) {
        if (response.left instanceof Abort) {
          const reason = response.left.reason
          // a mechanism that authenticates the server caught it lying (a wrong SCRAM signature, a
          // forged nonce): cancel, then close, so that no further mechanism hands it a password.
          // Otherwise (a challenge PLAIN or LOGIN did not expect) cancel and keep the session.
          return yield* mechanism.verifiesServer ? Effect.ensuring(cancel(reason), engine.close) : cancel(reason)
        }
        // a custom authenticator failed: cancel the exchange, then report its own error
        yield* Effect.ignore(send(engine, "*", "*"))
        return yield* Effect.fail(response.left as E)
      }
      reply = yield* send(engine, toBase64(response.right ?? new Uint8Array(0)), "<redacted>")
    }
    if (reply.code === 235 || reply.code === 503) {
      if (Either.isLeft(mechanism.complete)) {
        // the server may be an impostor: do not keep a session it "authenticated"
        yield* engine.close
        return yield* Effect.fail(authError(reply, tried, mechanism.complete.left))
      }
      ctx.authenticated()
      return reply
    }
    return yield* Effect.fail(authError(reply, tried))
  }).pipe(
    // interrupted inside the exchange: the server may still wait for a response; "*" cancels it
    // (RFC 4954 §4) before the next operation, and is harmless if the exchange had ended
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        if (started) ctx.onInterrupted(Effect.ignore(send(ctx.engine, "*", "*")))
      })
    )
  )
}

const fromSasl = (name: string, session: Sasl.SaslSession): Mechanism<never, never> => ({
  name,
  verifiesServer: name.toUpperCase().startsWith("SCRAM-"),
  step: (challenge) =>
    Option.match(challenge, {
      onNone: () => Effect.succeed(session.initial()),
      onSome: (bytes) => Effect.mapError(session.respond(bytes), (reason) => new Abort(reason))
    }),
  get complete() {
    return session.complete()
  }
})

const advertised = (ctx: AuthContext) =>
  Effect.gen(function*() {
    yield* ctx.ehloOrHeloIfNeeded
    const auth = ctx.features().get("auth")
    if (auth === undefined) {
      return yield* Effect.fail(
        new SmtpNotSupportedError({ feature: "AUTH", detail: "the server does not advertise SMTP AUTH" })
      )
    }
    return auth.split(/\s+/).filter((m) => m !== "").map((m) => m.toUpperCase())
  })

/**
 * smtplib's `login`: the advertised mechanisms in preference order, the last error if all fail.
 * Every mechanism's session is started before anything is written: one that cannot carry the
 * credentials (an authzid for LOGIN or CRAM-MD5, a space in a CRAM-MD5 user name, a password SCRAM's
 * SASLprep refuses) is skipped, and when none can, the login fails with `SmtpInvalidInput`.
 */
export const login = (
  ctx: AuthContext,
  user: string,
  password: Redacted.Redacted<string>,
  options: SmtpAuth.LoginOptions = {}
): Effect.Effect<SmtpReply, SmtpError> =>
  Effect.gen(function*() {
    const offered = yield* advertised(ctx)
    const candidates = Sasl.choose(offered, options.mechanisms ?? Sasl.preferenceOrder)
    const unknown = candidates.find((m) => !Sasl.isPasswordMechanism(m))
    if (unknown !== undefined) {
      return yield* Effect.fail(
        new SmtpInvalidInput({
          reason: `Unsupported SASL mechanism for password authentication: ${unknown.toUpperCase()}`
        })
      )
    }
    const allowInsecure = options.allowInsecure === true
    // an authorization identity fits only PLAIN and SCRAM: the others are skipped, not failed
    const carriers = options.authzid === undefined || options.authzid === "" ?
      candidates :
      candidates.filter((m) => !["CRAM-MD5", "LOGIN"].includes(m.toUpperCase()))
    const usable = inClear(ctx, allowInsecure) ? carriers.filter(Sasl.isSafeInClear) : carriers
    if (usable.length === 0) {
      if (carriers.length > 0) return yield* Effect.fail(insecureRefusal("a password"))
      if (candidates.length > 0) {
        return yield* Effect.fail(
          new SmtpInvalidInput({
            reason: `An authzid needs PLAIN or SCRAM; the server offers only ${candidates.join(" ")}`
          })
        )
      }
      return yield* Effect.fail(
        new SmtpNotSupportedError({
          feature: "AUTH",
          detail: `no suitable authentication mechanism (the server offers: ${offered.join(" ") || "none"})`
        })
      )
    }
    const sessions = usable.map((name) => ({
      name,
      session: Sasl.forPassword(name, { username: user, password: Redacted.value(password), authzid: options.authzid })
    }))
    const startable = sessions.flatMap(({ name, session }) =>
      Either.isRight(session) ? [{ name, session: session.right }] : []
    )
    if (startable.length === 0) {
      const reasons = sessions.flatMap(({ session }) => Either.isLeft(session) ? [session.left] : [])
      return yield* Effect.fail(new SmtpInvalidInput({ reason: [...new Set(reasons)].join("; ") }))
    }
    const tried: Array<string> = []
    let last: SmtpAuthenticationError | undefined
    for (const { name, session } of startable) {
      tried.push(name)
      const result = yield* Effect.either(
        exchange(ctx, fromSasl(name, session), {
          initialResponseOk: options.initialResponseOk ?? true,
          allowInsecure,
          tried: tried.slice()
        })
      )
      if (Either.isRight(result)) return result.right
      if (result.left._tag !== "SmtpAuthenticationError" || ctx.engine.isClosed()) {
        return yield* Effect.fail(result.left)
      }
      last = result.left
    }
    return yield* Effect.fail(last!)
  })

/** XOAUTH2 / OAUTHBEARER with a token from the caller, fetched again once if the server rejects it. */
export const loginOAuth2 = <E, R>(
  ctx: AuthContext,
  user: string,
  token: SmtpAuth.TokenProvider<E, R>,
  options: SmtpAuth.OAuth2Options = {}
): Effect.Effect<SmtpReply, SmtpError | E, R> =>
  Effect.gen(function*() {
    const offered = yield* advertised(ctx)
    const name = options.mechanism ??
      (offered.includes("OAUTHBEARER") ? "OAUTHBEARER" : offered.includes("XOAUTH2") ? "XOAUTH2" : undefined)
    if (name === undefined) {
      return yield* Effect.fail(
        new SmtpNotSupportedError({
          feature: "AUTH XOAUTH2/OAUTHBEARER",
          detail: `the server offers: ${offered.join(" ") || "none"}`
        })
      )
    }
    const allowInsecure = options.allowInsecure === true
    // both checked before the token is fetched (the exchange checks the plaintext rule again)
    yield* plaintextRule(ctx, name, allowInsecure)
    const identity = name === "XOAUTH2" ?
      Sasl.XOAuth2.validateIdentity({ username: user }) :
      Sasl.OAuthBearer.validateIdentity({ username: user, host: ctx.host, port: ctx.port })
    if (identity !== undefined) return yield* Effect.fail(new SmtpInvalidInput({ reason: identity }))
    const attempt = Effect.gen(function*() {
      const t = Redacted.value(yield* token)
      const started = name === "XOAUTH2" ?
        Sasl.XOAuth2.make({ username: user, token: t }) :
        Sasl.OAuthBearer.make({ username: user, token: t, host: ctx.host, port: ctx.port })
      if (Either.isLeft(started)) return yield* Effect.fail(new SmtpInvalidInput({ reason: started.left }))
      const session = started.right
      return yield* exchange(ctx, fromSasl(name, session), { initialResponseOk: true, allowInsecure, tried: [name] })
        .pipe(
          Effect.mapError((e) => {
            const json = session.serverError()
            if (e._tag !== "SmtpAuthenticationError" || json === undefined) return e
            const status = [json.status && `status ${json.status}`, json.scope && `scope ${json.scope}`]
              .filter(Boolean).join(", ")
            return new SmtpAuthenticationError({ ...e, detail: `token rejected${status ? ` (${status})` : ""}` })
          })
        )
    })
    return yield* attempt.pipe(
      Effect.catchIf(
        (e): e is SmtpAuthenticationError =>
          typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "SmtpAuthenticationError" &&
          !ctx.engine.isClosed(),
        // rejected: one more try with a fresh token (an expired token is the common case)
        () => attempt
      )
    )
  })

/**
 * smtplib's `auth`: any mechanism, through a caller's authenticator. The plaintext rule applies as
 * for `login`: any mechanism but SCRAM-* and CRAM-MD5, custom ones included, is refused in clear to
 * a host that is not loopback unless `allowInsecure`, before the authenticator runs.
 */
export const auth = <E, R>(
  ctx: AuthContext,
  name: string,
  authenticator: SmtpAuth.Authenticator<E, R>,
  options: SmtpAuth.AuthOptions = {}
): Effect.Effect<SmtpReply, SmtpError | E, R> =>
  Effect.gen(function*() {
    yield* ctx.ehloOrHeloIfNeeded
    if (!/^[A-Za-z0-9_-]{1,20}$/.test(name)) {
      // the name is not echoed: a caller may have pasted a credential into it
      return yield* Effect.fail(
        new SmtpInvalidInput({
          reason: "Invalid SASL mechanism name: 1 to 20 letters, digits, '-' or '_' (nothing was sent)"
        })
      )
    }
    const mechanism: Mechanism<E, R> = {
      name: name.toUpperCase(),
      step: (challenge) => Effect.map(authenticator(challenge), (r) => (typeof r === "string" ? utf8(r) : r)),
      complete: Either.void,
      verifiesServer: false
    }
    return yield* exchange(ctx, mechanism, {
      initialResponseOk: options.initialResponseOk ?? true,
      allowInsecure: options.allowInsecure === true,
      tried: [name.toUpperCase()]
    })
  })
