/** Shared by the auth tests: scripted sessions, base64, token providers, error narrowing. */
import { assert } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import { SmtpClient, type SmtpConnection, SmtpError } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

export const b64 = (text: string | Uint8Array): string => Buffer.from(text).toString("base64")
export const unb64 = (text: string): string => Buffer.from(text, "base64").toString("utf8")

export const QUIT: ScriptedTransport.Step = { expect: "QUIT", reply: "221 2.0.0 Bye" }

/** A 250 EHLO reply from mx.test with the extensions given, AUTH last when given. */
export const ehlo = (auth: string | undefined, ...extensions: ReadonlyArray<string>): string => {
  const lines = ["mx.test", ...extensions, ...(auth === undefined ? [] : [`AUTH ${auth}`])]
  return lines.map((line, i) => `250${i === lines.length - 1 ? " " : "-"}${line}`).join("\r\n")
}

export const EHLO = (auth: string | undefined, ...extensions: ReadonlyArray<string>): ScriptedTransport.Step => ({
  expect: "EHLO client.test",
  reply: ehlo(auth, ...extensions)
})

/** A mutable handle on the transport, for steps whose reply is computed from what was written. */
export interface ServerRef {
  current: ScriptedTransport.ScriptedTransport | undefined
}

export const lastUnit = (ref: ServerRef): string => {
  const units = ref.current?.connection(0).units() ?? []
  return units[units.length - 1] ?? ""
}

export interface Outcome<A, E> {
  readonly result: Either.Either<A, E | SmtpError.SmtpError>
  readonly record: ScriptedTransport.ConnectionRecord
  readonly written: string
}

/**
 * One scripted session with mx.test (not loopback), `security: "none"` unless overridden; the
 * Scope closes (QUIT) before the outcome is returned.
 */
export const scripted = <A, E>(
  steps: ReadonlyArray<ScriptedTransport.Step> | ((ref: ServerRef) => ReadonlyArray<ScriptedTransport.Step>),
  use: (smtp: SmtpConnection.Service, server: ScriptedTransport.ScriptedTransport) => Effect.Effect<A, E>,
  options: SmtpClient.Options = {},
  /** `strict: false` when the script deliberately leaves its end open (see `followedToCancel`). */
  script: { readonly strict?: boolean } = {}
): Effect.Effect<Outcome<A, E>> =>
  Effect.gen(function*() {
    const ref: ServerRef = { current: undefined }
    const server = yield* ScriptedTransport.make({ steps: typeof steps === "function" ? steps(ref) : steps, ...script })
    ref.current = server
    const result = yield* Effect.scoped(
      Effect.flatMap(SmtpClient.connect({ host: "mx.test", security: "none", ...options }), (smtp) => use(smtp, server))
    ).pipe(Effect.provide(server.layer), Effect.either)
    const record = server.connection(0)
    return { result, record, written: record.written() }
  })

/** The script was followed to the end, with no unexpected line. */
export const followed = (record: ScriptedTransport.ConnectionRecord): void => {
  assert.deepStrictEqual(record.mismatches(), [])
  assert.strictEqual(record.remaining(), 0, "every scripted step was reached")
}

/**
 * Followed up to the client's `*` and its reply; after that the client may QUIT (the last step) or
 * close the connection without it: the tests do not prescribe which.
 */
export const followedToCancel = (record: ScriptedTransport.ConnectionRecord): void => {
  assert.deepStrictEqual(record.mismatches(), [])
  assert.isAtMost(record.remaining(), 1, "every step up to the cancellation was reached")
  assert.include(record.written(), "\r\n*\r\n")
  assert.include(["", "QUIT\r\n"], record.written().split("\r\n*\r\n").pop())
}

export const right = <A, E>(result: Either.Either<A, E>): A => {
  if (Either.isLeft(result)) assert.fail(`expected success, got ${String(result.left)}`)
  return (result as Either.Right<E, A>).right
}

export const left = <A, E>(result: Either.Either<A, E>): E => {
  if (Either.isRight(result)) assert.fail("expected a failure, got a success")
  return (result as Either.Left<E, A>).left
}

export const authError = (error: unknown): SmtpError.SmtpAuthenticationError => {
  assert.instanceOf(error, SmtpError.SmtpAuthenticationError, `got ${String(error)}`)
  return error as SmtpError.SmtpAuthenticationError
}

export const invalidInput = (error: unknown): SmtpError.SmtpInvalidInput => {
  assert.instanceOf(error, SmtpError.SmtpInvalidInput, `got ${String(error)}`)
  return error as SmtpError.SmtpInvalidInput
}

export const notSupported = (error: unknown): SmtpError.SmtpNotSupportedError => {
  assert.instanceOf(error, SmtpError.SmtpNotSupportedError, `got ${String(error)}`)
  return error as SmtpError.SmtpNotSupportedError
}

/** A token provider giving `tokens` in turn (the last one again when exhausted); counts its runs. */
export const tokenProvider = (...tokens: ReadonlyArray<string>) => {
  let runs = 0
  return {
    provider: Effect.sync(() => Redacted.make(tokens[Math.min(runs++, tokens.length - 1)])),
    runs: () => runs
  }
}

export const xoauth2 = (user: string, token: string) => `user=${user}\u0001auth=Bearer ${token}\u0001\u0001`
export const oauthBearer = (user: string, token: string, host: string, port: number) =>
  `n,a=${user},\u0001host=${host}\u0001port=${port}\u0001auth=Bearer ${token}\u0001\u0001`

/** Google's error challenge. */
export const oauthErrorJson = JSON.stringify({
  status: "401",
  schemes: "bearer mF_9.B5f-4.1JqM",
  scope: "https://mail.google.com/"
})

/** RFC 2195's example: challenge, user, password and the response it gives. */
export const rfc2195 = {
  challenge: "<1896.697170952@postoffice.reston.mci.net>",
  user: "tim",
  password: "tanstaaftanstaaf",
  response: "tim b913a602c7eda7a495b4e6e7334d3890"
}
