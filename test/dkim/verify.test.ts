/**
 * The corpus (test/dkim/corpus.ts) through both verifiers: mailauth always, dkimpy when
 * /usr/bin/python3 has it (else skipped saying why, unless SMTP_DKIMPY_REQUIRED=1).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeCorpus } from "./corpus.js"
import { dkimpy, dkimpyRequired, dkimpySkipReason, mailauth } from "./verifiers.js"

// signed once, at the real time (x= must be in the future for the verifiers)
const corpus = Effect.runPromise(makeCorpus)

describe("DKIM signatures checked by independent verifiers", () => {
  it.live("the corpus is large enough to mean something", () =>
    Effect.gen(function*() {
      const { cases } = yield* Effect.promise(() => corpus)
      assert.isAtLeast(cases.length, 200)
      assert.isAtLeast(cases.filter((c) => c.expected.includes(false)).length, 8)
    }))

  it.live("mailauth", () =>
    Effect.gen(function*() {
      const { cases, records } = yield* Effect.promise(() => corpus)
      const failures: Array<string> = []
      yield* Effect.forEach(cases, (c) =>
        Effect.map(mailauth(c.bytes, records), (verdicts) => {
          const got = verdicts.map((v) => v.result === "pass")
          if (JSON.stringify(got) !== JSON.stringify(c.expected)) {
            failures.push(`${c.name}: expected ${c.expected}, got ${JSON.stringify(verdicts)}`)
          }
        }), { concurrency: 8 })
      assert.deepStrictEqual(failures, [])
    }))

  const skip = dkimpySkipReason()
  it.live.skipIf(skip !== undefined && !dkimpyRequired)(skip ?? "dkimpy", () =>
    Effect.gen(function*() {
      assert.isUndefined(skip, `SMTP_DKIMPY_REQUIRED=1 but ${skip}`)
      const { cases, records } = yield* Effect.promise(() => corpus)
      const verdicts = yield* dkimpy(cases.map((c) => c.bytes), records)
      // an exception (body hash mismatch, ...) is a signature that does not verify
      const failures = cases.flatMap((c, i) => {
        const got = verdicts[i]!.map((v) => v === true)
        const expected = c.dkimpy ?? c.expected
        return JSON.stringify(got) === JSON.stringify(expected)
          ? []
          : [`${c.name}: expected ${expected}, got ${JSON.stringify(verdicts[i])}`]
      })
      assert.deepStrictEqual(failures, [])
    }), 60_000)
})
