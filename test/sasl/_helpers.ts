import { assert } from "@effect/vitest"
import { Effect, Either } from "effect"

/** Every password and token the SASL tests use: no Left reason may contain one of them. */
export const secrets: ReadonlyArray<string> = [
  "tanstaaftanstaaf",
  "pencil",
  "pen\u00ADcil",
  "bell\u0007pw",
  "s3cret-pw",
  "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
  "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
  "tok-9f8e7d"
]

/** The Left reasons seen by this test file (each already checked against `secrets`). */
export const reasons: Array<string> = []

/**
 * The outcome of a synchronous step (an Either is an Effect too): `runSync` throws on an asynchronous
 * one, such as SCRAM's proof (Web Crypto); await `run` for those.
 */
const outcome = <A>(result: Effect.Effect<A, string>): Either.Either<A, string> => Effect.runSync(Effect.either(result))

/** The outcome of a step that may be asynchronous (SCRAM). */
export const run = <A>(result: Effect.Effect<A, string>): Promise<Either.Either<A, string>> =>
  Effect.runPromise(Effect.either(result))

/** Asserts a Left, checks its reason leaks no secret, records it and returns it. */
export const expectLeft = <A>(result: Effect.Effect<A, string>): string => {
  const either = outcome(result)
  if (Either.isRight(either)) return assert.fail("expected Left, got Right")
  for (const secret of secrets) {
    assert.notInclude(either.left.toLowerCase(), secret.toLowerCase(), "a Left reason contains a secret")
  }
  reasons.push(either.left)
  return either.left
}

/** Asserts a Right and returns its value. */
export const expectRight = <A>(result: Effect.Effect<A, string>): A => {
  const either = outcome(result)
  if (Either.isLeft(either)) return assert.fail(`expected Right, got Left(${either.left})`)
  return either.right
}

/** The final check of each file: some Left reasons were seen and none contains a secret. */
export const assertNoSecretInReasons = () => {
  assert.isAbove(reasons.length, 0)
  for (const reason of reasons) {
    for (const secret of secrets) assert.notInclude(reason.toLowerCase(), secret.toLowerCase())
  }
}

export const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes)

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

export const fromBase64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"))
