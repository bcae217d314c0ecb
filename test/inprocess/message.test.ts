import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { Message, SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import PostalMime from "postal-mime"
import * as EmbeddedServer from "../support/smtpServer.js"

describe("sendMessage through smtp-server", () => {
  it.live("a composed MIME message arrives whole: parts, filenames, charsets; Bcc only in the envelope", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const pdf = new Uint8Array(70_000).map((_, i) => (i * 31) % 256)
      const message = yield* Message.make({
        from: { name: "Zoë Ärger", address: "zoe@example.test" },
        to: ["bob@example.test"],
        cc: [{ name: "Carl", address: "carl@example.test" }],
        bcc: ["hidden@example.test"],
        subject: "Quarterly report — ünïcödé ✓",
        text: "Hello Bob,\n.leading dot\nsee attached.",
        html: "<p>Hello <b>Bob</b>, <img src=\"cid:logo@x\"></p>",
        attachments: [
          {
            filename: "relatório 2026.pdf",
            contentType: "application/pdf",
            content: Stream.fromIterable([pdf.subarray(0, 1000), pdf.subarray(1000)])
          },
          { filename: "logo.png", contentType: "image/png", content: new Uint8Array([137, 80, 78, 71]), cid: "logo@x" }
        ]
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port })
        const refused = yield* smtp.sendMessage(message)
        assert.deepStrictEqual(refused, {})
      }))
      const [received] = yield* server.waitFor(1)
      assert.strictEqual(received.from, "zoe@example.test")
      assert.deepStrictEqual(received.to, ["bob@example.test", "hidden@example.test", "carl@example.test"])
      assert.notInclude(received.data.toString("latin1"), "hidden@example.test")
      for (const line of received.data.toString("latin1").split("\r\n")) assert.isAtMost(line.length, 998)
      const parsed = yield* Effect.promise(() => PostalMime.parse(received.data))
      assert.strictEqual(parsed.subject, "Quarterly report — ünïcödé ✓")
      assert.strictEqual(parsed.from?.name, "Zoë Ärger")
      assert.strictEqual(parsed.text?.replace(/\r\n/g, "\n").trimEnd(), "Hello Bob,\n.leading dot\nsee attached.")
      assert.include(parsed.html ?? "", "<b>Bob</b>")
      const report = parsed.attachments.find((a) => a.mimeType === "application/pdf")!
      assert.strictEqual(report.filename, "relatório 2026.pdf")
      assert.deepStrictEqual(new Uint8Array(report.content as ArrayBuffer), pdf)
      const logo = parsed.attachments.find((a) => a.mimeType === "image/png")!
      assert.strictEqual(logo.contentId, "<logo@x>")
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))
})
