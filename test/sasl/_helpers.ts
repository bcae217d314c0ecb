import { assert } from "@effect/vitest"
import { Either } from "effect"

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

/** Asserts a Left, checks its reason leaks no secret, records it and returns it. */
export const expectLeft = <A>(either: Either.Either<A, string>): string => {
  if (Either.isRight(either)) return assert.fail("expected Left, got Right")
  for (const secret of secrets) {
    assert.notInclude(either.left.toLowerCase(), secret.toLowerCase(), "a Left reason contains a secret")
  }
  reasons.push(either.left)
  return either.left
}

/** Asserts a Right and returns its value. */
export const expectRight = <A>(either: Either.Either<A, string>): A => {
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
