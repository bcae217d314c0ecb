import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { test as scriptedExample } from "../examples/testing.js"

describe("README examples", () => {
  it.scoped("the testing example runs and its script matches", () =>
    Effect.gen(function*() {
      const { mismatches, written } = yield* scriptedExample
      assert.deepStrictEqual(mismatches, [])
      assert.strictEqual(
        written,
        "EHLO client.test\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n" +
          "Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n"
      )
    }))
})
