import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as Message from "../../src/Message.js"
import { featureCases } from "./fixtures/goldenCases.js"
import { python } from "./fixtures/python.js"

const parse = (text: string) => Either.getOrThrow(Message.parse(text))

describe("Message.getDecoded", () => {
  const message = parse(
    [
      "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <j@example.com>",
      "To: =?ISO-8859-1?Q?Doe=2C_J=F6hn?= <d@example.com>, plain@example.com,",
      " =?UTF-8?B?w4lxdWlwZQ==?= : a@example.com, =?UTF-8?Q?=C3=89mile?= <e@example.com>;, undisclosed-recipients:;",
      "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?Q?_aus_K=C3=B6ln?= and ASCII",
      "X-Note: =?UTF-8?Q?first?=",
      "X-Note: =?UTF-8?Q?second_=E2=9C=93?=",
      "Message-ID: <=?x?@example.com>",
      "Content-Type: text/plain; name=\"=?UTF-8?Q?x?=\"",
      "",
      "body"
    ].join("\r\n")
  )

  it("get is raw; getDecoded decodes unstructured fields whole", () => {
    assert.deepStrictEqual(
      Message.get(message, "Subject"),
      Option.some("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?Q?_aus_K=C3=B6ln?= and ASCII")
    )
    assert.deepStrictEqual(Message.getDecoded(message, "subject"), Option.some("Grüße aus Köln and ASCII"))
    assert.deepStrictEqual(Message.subject(message), Option.some("Grüße aus Köln and ASCII"))
    assert.deepStrictEqual(Message.getAllDecoded(message, "X-Note"), ["first", "second ✓"])
    assert.deepStrictEqual(Message.getDecoded(message, "X-Missing"), Option.none())
  })

  it("address fields: display names decoded and quoted when they need it; groups kept", () => {
    assert.deepStrictEqual(Message.getDecoded(message, "From"), Option.some("Jörg Müller <j@example.com>"))
    assert.deepStrictEqual(
      Message.getDecoded(message, "To"),
      Option.some(
        "\"Doe, Jöhn\" <d@example.com>, plain@example.com, Équipe: a@example.com, Émile <e@example.com>;, " +
          "undisclosed-recipients:;"
      )
    )
  })

  it("structured fields without encoded words are returned as get returns them", () => {
    assert.deepStrictEqual(Message.getDecoded(message, "Message-ID"), Message.get(message, "Message-ID"))
    assert.deepStrictEqual(Message.getDecoded(message, "Content-Type"), Message.get(message, "Content-Type"))
  })

  it.effect("a composed message with groups reads as Python's str(msg[name]) reads it", () =>
    Effect.gen(function*() {
      const options = featureCases.find((c) => c.name === "feature: groups")!.options
      const wire = yield* Effect.flatMap(Message.make(options), Message.toBytes)
      const py = Object.fromEntries(python([wire])[0]!.headers)
      const message = Either.getOrThrow(Message.parse(wire))
      for (const name of ["To", "Cc", "Reply-To"]) {
        assert.strictEqual(Option.getOrThrow(Message.getDecoded(message, name)), py[name])
      }
      assert.strictEqual(
        py["Cc"],
        "Équipe de développement: d@example.com, Émile <e@example.com>;"
      )
    }))
})

describe("Message.reply", () => {
  it.effect("Reply-To else From; Re: subject; In-Reply-To and References (RFC 5322 §3.6.4)", () =>
    Effect.gen(function*() {
      const original = parse(
        [
          "From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>",
          "Subject: =?UTF-8?Q?Caf=C3=A9?= tomorrow",
          "Message-ID: <m2@example.com>",
          "References: <m0@example.com>\r\n <m1@example.com>",
          "In-Reply-To: <m1@example.com>",
          "",
          "x"
        ].join("\r\n")
      )
      const fields = Either.getOrThrow(Message.reply(original))
      assert.deepStrictEqual(fields, {
        to: [{ name: "Zoë", address: "zoe@example.com" }],
        subject: "Re: Café tomorrow",
        inReplyTo: "<m2@example.com>",
        references: ["<m0@example.com>", "<m1@example.com>", "<m2@example.com>"]
      })
      const answer = yield* Message.make({ ...fields, from: "me@example.com", text: "Yes." })
      assert.deepStrictEqual(Message.get(answer, "In-Reply-To"), Option.some("<m2@example.com>"))
      assert.deepStrictEqual(
        Message.get(answer, "References"),
        Option.some("<m0@example.com> <m1@example.com> <m2@example.com>")
      )
      assert.deepStrictEqual(Message.subject(answer), Option.some("Re: Café tomorrow"))
      assert.deepStrictEqual(Message.getDecoded(answer, "To"), Option.some("Zoë <zoe@example.com>"))

      const second = Either.getOrThrow(Message.reply(parse(
        "From: a@example.com\r\nReply-To: List <list@example.com>\r\nSubject: RE: x\r\n" +
          "In-Reply-To: <p@example.com>\r\nMessage-ID: <q@example.com>\r\n\r\n"
      )))
      assert.deepStrictEqual(second, {
        to: [{ name: "List", address: "list@example.com" }],
        subject: "RE: x",
        inReplyTo: "<q@example.com>",
        references: ["<p@example.com>", "<q@example.com>"]
      })
      const bare = Either.getOrThrow(Message.reply(parse("From: a@example.com\r\n\r\n")))
      assert.deepStrictEqual(bare, {
        to: [{ address: "a@example.com" }],
        subject: "Re:",
        inReplyTo: undefined,
        references: undefined
      })
      const none = Message.reply(parse("Subject: x\r\n\r\n"))
      assert.isTrue(Either.isLeft(none) && none.left.reason.includes("no Reply-To or From"))
    }))
})
