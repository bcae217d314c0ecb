import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import golden from "./fixtures/golden-compose.json" with { type: "json" }
import { goldenCases, renderCase } from "./fixtures/goldenCases.js"

const expected = golden as Record<string, string>

describe("Message.make: golden output", () => {
  it("every case has a pinned output", () => {
    assert.deepStrictEqual(goldenCases.map((c) => c.name).sort(), Object.keys(expected).sort())
  })

  for (const c of goldenCases) {
    it.effect(`${c.name}: byte-identical`, () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* renderCase(c), expected[c.name])
      }))
  }
})
