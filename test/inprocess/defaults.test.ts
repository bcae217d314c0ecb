import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as Os from "node:os"
import * as EmbeddedServer from "../support/smtpServer.js"
import { recordingTracer } from "../support/tracer.js"

describe("defaults", () => {
  it.live("the EHLO name defaults to the host's FQDN, else an address literal (smtplib)", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ host: server.host, port: server.port, security: "none" }),
        (smtp) => smtp.sendmail("a@example.test", "b@example.test", "Subject: x\r\n\r\ny\r\n")
      ))
      const [received] = yield* server.waitFor(1)
      const expected = yield* NodeSmtpTransport.localHostname
      assert.strictEqual(received.helo, expected)
      // a name with a dot, or a literal such as [127.0.0.1]
      assert.match(expected, /\.|^\[.+\]$/)
      if (!Os.hostname().includes(".")) assert.notStrictEqual(expected, Os.hostname())
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  it.live("spans: SmtpClient.connect and one SmtpConnection.<operation> per operation, with the OpenTelemetry server attributes", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* EmbeddedServer.make()
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port, security: "none" })
        yield* smtp.noop
        yield* smtp.sendmail("a@example.test", "b@example.test", "Subject: x\r\n\r\ny\r\n")
        // the batch's span covers its Stream, under the caller's span, and ends when it ends
        const item = { from: "a@example.test", to: "b@example.test", message: "Subject: x\r\n\r\ny\r\n" }
        const outcomes = yield* Stream.runCollect(smtp.sendBatch([item, item])).pipe(Effect.withSpan("app"))
        assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map((o) => o._tag), ["Sent", "Sent"])
        const batch = spans.find((s) => s.name === "SmtpConnection.sendBatch")
        assert.isDefined(batch)
        assert.strictEqual(batch!.parent, "app")
        assert.isTrue(batch!.exit !== undefined && Exit.isSuccess(batch!.exit))
      })).pipe(Effect.withTracer(tracer))
      const connect = spans.find((s) => s.name === "SmtpClient.connect")
      assert.isDefined(connect)
      assert.strictEqual(connect!.kind, "client")
      assert.strictEqual(connect!.attributes.get("server.address"), server.host)
      assert.strictEqual(connect!.attributes.get("server.port"), server.port)
      const ofSession = spans.filter((s) => s.name.startsWith("SmtpConnection."))
      assert.deepStrictEqual(ofSession.map((s) => s.name), [
        "SmtpConnection.noop",
        "SmtpConnection.sendmail",
        "SmtpConnection.sendBatch",
        "SmtpConnection.quit"
      ])
      const operations = ofSession.map((s) => s.attributes.get("smtp.operation"))
      assert.deepStrictEqual(operations, ["noop", "sendmail", "sendBatch", "quit"])
      for (const s of ofSession) assert.strictEqual(s.kind, "client")
      for (const s of ofSession) {
        assert.strictEqual(s.attributes.get("server.port"), server.port)
      }
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))
})
