import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { parseContentType } from "../../src/internal/message/contentType.js"
import * as Message from "../../src/Message.js"
import { python } from "./fixtures/python.js"

describe("Content-Type values given by a caller", () => {
  it("type/subtype lower-cased, parameter names lower-cased, values as written", () => {
    assert.deepStrictEqual(
      parseContentType(" Text/Calendar ;METHOD = REQUEST;  charset=\"UTF-8\" ; x=\"a \\\"q\\\" \\\\ b\"; "),
      Either.right({
        type: "text/calendar",
        params: [["method", "REQUEST"], ["charset", "UTF-8"], ["x", "a \"q\" \\ b"]]
      })
    )
    assert.deepStrictEqual(
      parseContentType("application/x-a; name=résumé.pdf"),
      Either.right({ type: "application/x-a", params: [["name", "résumé.pdf"]] })
    )
  })

  it("refuses what is not type/subtype *(; name=value)", () => {
    for (
      const bad of [
        "text",
        "text/",
        "/plain",
        "text/plain extra",
        "text/plain; =x",
        "text/plain; a",
        "text/plain; a=",
        "text/plain; a=\"open",
        "text/plain; a=b c",
        "text/plain; a=(b)",
        "text/plain; a=1; A=2",
        "text/plain; a*=utf-8''x",
        "text/plain; a%=1"
      ]
    ) {
      assert.isTrue(Either.isLeft(parseContentType(bad)), bad)
    }
  })

  it.effect("parameter values of every kind read back by Python as given", () =>
    Effect.gen(function*() {
      const values = [
        "plain",
        "a b; c",
        "quote \" and \\ backslash",
        "日本語 with spaces",
        "=?utf-8?q?x?=",
        "it's * here",
        "x".repeat(200),
        "é".repeat(80),
        ""
      ]
      const quoted = (v: string) => `"${v.replace(/["\\]/g, "\\$&")}"`
      const wire = yield* Effect.flatMap(
        Message.make({
          from: "a@example.com",
          attachments: values.map((v) => ({
            contentType: `application/x-test; p=${quoted(v)}`,
            content: new Uint8Array([1])
          }))
        }),
        Message.toBytes
      )
      const py = python([wire])[0]!
      assert.deepStrictEqual(py.defects, [])
      const parts = py.parts.filter((p) => p.contentType === "application/x-test")
      assert.deepStrictEqual(parts.map((p) => p.params.p), values)
    }))
})
