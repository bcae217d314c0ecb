import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as Message from "../../src/Message.js"

const parse = (header: string) =>
  Either.getOrThrow(Message.addresses(Either.getOrThrow(Message.parse(`To: ${header}\r\n\r\n`)), "To"))

describe("Message.addresses: display names in encoded words", () => {
  it("UTF-8, ISO-8859-1, windows-1252, Shift_JIS and KOI8-R, B and Q", () => {
    assert.deepStrictEqual(
      parse(
        "=?UTF-8?Q?J=C3=B6rg?= <a@example.com>, =?iso-8859-1?q?M=FCller?= <b@example.com>, " +
          "=?windows-1252?Q?=93Q=94?= <c@example.com>, =?shift_jis?B?k/qWe4zqgsyWvJFP?= <d@example.com>, " +
          "=?koi8-r?B?8NLJ18XU?= <e@example.com>"
      ).map((a) => a.name),
      ["Jörg", "Müller", "“Q”", "日本語の名前", "Привет"]
    )
  })

  it("words split in the middle of a character, folded, come back whole", () => {
    assert.deepStrictEqual(parse("=?UTF-8?Q?=E6=97?=\r\n =?UTF-8?Q?=A5?= <a@example.com>"), [
      { name: "日", address: "a@example.com" }
    ])
  })

  it("an unknown charset: read as UTF-8 when it is, else left as written", () => {
    assert.deepStrictEqual(parse("=?x-unknown?Q?=C3=A9?= <a@example.com>")[0]!.name, "é")
    assert.deepStrictEqual(parse("=?x-unknown?Q?=E9?= <a@example.com>")[0]!.name, "=?x-unknown?Q?=E9?=")
  })
})
