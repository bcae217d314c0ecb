import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { test as scriptedExample, withTestMailer, withTestSmtpServer, withTestTransport } from "../examples/testing.js"

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

  it.effect("the TestMailer example", () =>
    Effect.gen(function*() {
      const { refused, result, text } = yield* withTestMailer
      assert.deepStrictEqual(result.accepted, ["zoe@example.com"])
      assert.strictEqual(text, "Hallo Zoë, schön, dass du da bist.")
      assert.strictEqual(refused, "SmtpRecipientsRefused")
    }))

  it.effect("the TestTransport example", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* withTestTransport, { subject: "hi", user: "app" })
    }))

  it.live("the TestSmtpServer example", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* withTestSmtpServer, { subject: "Willkommen, Ada!", secure: true })
    }))
})
