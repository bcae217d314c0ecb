/**
 * Typed DSN (RFC 3461), REQUIRETLS (RFC 8689) and the SIZE check (RFC 1870 §6): the exact
 * parameters on the wire, and the refusals that write nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Message, SmtpClient, type SmtpConnection, SmtpError } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import * as EnvelopeParams from "../../src/internal/envelopeParams.js"

const connectOptions = { host: "mx.test", security: "none", localHostname: "client.test" } as const
const MESSAGE = "Subject: hi\r\n\r\nhello\r\n"
const ehlo = (...extensions: Array<string>) => ({
  expect: "EHLO client.test",
  reply: ["mx.test", ...extensions].map((line, i, all) => `250${i === all.length - 1 ? " " : "-"}${line}`).join("\r\n")
})

const send = (
  server: ScriptedTransport.ScriptedTransport,
  to: ReadonlyArray<string>,
  options: SmtpConnection.SendmailOptions,
  message: string = MESSAGE
) =>
  Effect.scoped(Effect.flatMap(
    SmtpClient.connect(connectOptions),
    (smtp) => smtp.sendmail("a@x.test", to, message, options)
  )).pipe(Effect.provide(server.layer))

describe("DSN, REQUIRETLS and SIZE", () => {
  it("xtext and the UTF-8 ORCPT encode as RFC 3461 and RFC 6533 say", () => {
    assert.strictEqual(EnvelopeParams.xtext("a+b=c d\u007f"), "a+2Bb+3Dc+20d+7F")
    assert.strictEqual(EnvelopeParams.xtext("<QQ314159@host.example>"), "<QQ314159@host.example>")
    assert.strictEqual(EnvelopeParams.orcpt("bob+tag@x.test"), "rfc822;bob+2Btag@x.test")
    assert.strictEqual(EnvelopeParams.orcpt("jöran@x.test"), "utf-8;j\\x{F6}ran@x.test")
    assert.strictEqual(EnvelopeParams.utf8AddrXtext("a\\b=😀"), "a\\x{5C}b\\x{3D}\\x{1F600}")
  })

  it.effect("DSN: RET and ENVID on MAIL, NOTIFY and ORCPT on every RCPT, xtext-encoded", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING", "DSN", "SIZE 1000"),
          { expect: "MAIL FROM:<a@x.test> SIZE=22 RET=HDRS ENVID=QQ+2B314159", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x.test", reply: "250 ok" },
          { expect: "RCPT TO:<c+1@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2B1@x.test", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* send(server, ["b@x.test", "c+1@x.test"], {
        dsn: { ret: "HDRS", envid: "QQ+314159", notify: ["SUCCESS", "FAILURE", "SUCCESS"], orcpt: true }
      })
    }))

  it.effect("DSN: NOTIFY=NEVER, an ORCPT given for some recipients only, after the caller's RCPT options", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING", "DSN"),
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test> X-FOO NOTIFY=NEVER ORCPT=rfc822;bob@old.test", reply: "250 ok" },
          { expect: "RCPT TO:<c@x.test> X-FOO NOTIFY=NEVER", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* send(server, ["b@x.test", "c@x.test"], {
        rcptOptions: ["X-FOO"],
        dsn: { notify: "NEVER", orcpt: { "b@x.test": "bob@old.test" } }
      })
    }))

  it.effect("sendMessage and send with a Message pass DSN and REQUIRETLS on", () =>
    Effect.gen(function*() {
      const message = yield* Message.make({ from: "a@x.test", to: "b@x.test", subject: "hi", text: "hello" })
      const server = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING", "DSN"),
          { expect: "MAIL FROM:<a@x.test> ENVID=e1", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test> NOTIFY=FAILURE", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: /\.\r\n$/, reply: "250 queued" },
          { expect: "MAIL FROM:<a@x.test> ENVID=e2", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test> NOTIFY=DELAY", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: /\.\r\n$/, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        yield* smtp.sendMessage(message, { dsn: { envid: "e1", notify: ["FAILURE"] } })
        yield* smtp.send(message, { dsn: { envid: "e2", notify: ["DELAY"] } })
      })).pipe(Effect.provide(server.layer))
    }))

  it.effect("DSN the server does not advertise: SmtpNotSupportedError and no MAIL, or dropped when asked", () =>
    Effect.gen(function*() {
      const refused = yield* ScriptedTransport.make({
        steps: [ehlo("PIPELINING"), { expect: "QUIT", reply: "221 bye" }]
      })
      const error = yield* Effect.flip(send(refused, ["b@x.test"], { dsn: { notify: ["FAILURE"] } }))
      assert.strictEqual(error._tag, "SmtpNotSupportedError")
      assert.strictEqual((error as SmtpError.SmtpNotSupportedError).feature, "DSN")
      assert.strictEqual(refused.written(0), "EHLO client.test\r\nQUIT\r\n")

      const dropped = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING"),
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* send(dropped, ["b@x.test"], { dsn: { notify: ["FAILURE"], ifUnsupported: "drop" } })
    }))

  it.effect("an ENVID that is not printable ASCII is SmtpInvalidInput before MAIL", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [ehlo("PIPELINING", "DSN"), { expect: "QUIT", reply: "221 bye" }]
      })
      const error = yield* Effect.flip(send(server, ["b@x.test"], { dsn: { envid: "é" } }))
      assert.strictEqual(error._tag, "SmtpInvalidInput")
      assert.strictEqual(server.written(0), "EHLO client.test\r\nQUIT\r\n")
    }))

  it.effect("REQUIRETLS on a session without TLS, or to a server without it: SmtpNotSupportedError, no MAIL", () =>
    Effect.gen(function*() {
      const plain = yield* ScriptedTransport.make({
        steps: [ehlo("PIPELINING", "REQUIRETLS"), { expect: "QUIT", reply: "221 bye" }]
      })
      const error = yield* Effect.flip(send(plain, ["b@x.test"], { requireTls: true }))
      assert.strictEqual(error._tag, "SmtpNotSupportedError")
      assert.include(error.message, "encrypted")
      assert.strictEqual(plain.written(0), "EHLO client.test\r\nQUIT\r\n")

      const withoutExtension = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING", "STARTTLS"),
          { expect: "STARTTLS", reply: "220 go", tls: true },
          ehlo("PIPELINING"),
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const missing = yield* Effect.flip(
        Effect.scoped(Effect.flatMap(
          SmtpClient.connect({ ...connectOptions, security: "starttls" }),
          (smtp) => smtp.sendmail("a@x.test", ["b@x.test"], MESSAGE, { requireTls: true })
        )).pipe(Effect.provide(withoutExtension.layer))
      )
      assert.strictEqual(missing._tag, "SmtpNotSupportedError")
      assert.include(missing.message, "does not advertise REQUIRETLS")
    }))

  it.effect("REQUIRETLS over STARTTLS to a server that advertises it: the MAIL parameter", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING", "STARTTLS"),
          { expect: "STARTTLS", reply: "220 go", tls: true },
          ehlo("PIPELINING", "REQUIRETLS"),
          { expect: "MAIL FROM:<a@x.test> REQUIRETLS", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ ...connectOptions, security: "starttls" }),
        (smtp) => smtp.sendmail("a@x.test", ["b@x.test"], MESSAGE, { requireTls: true })
      )).pipe(Effect.provide(server.layer))
    }))

  it.effect("a message larger than the server's SIZE: SmtpMessageTooLarge with both numbers, nothing written", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [ehlo("PIPELINING", "SIZE 10"), { expect: "QUIT", reply: "221 bye" }]
      })
      const error = yield* Effect.flip(send(server, ["b@x.test"], {}))
      assert.strictEqual(error._tag, "SmtpMessageTooLarge")
      const tooLarge = error as SmtpError.SmtpMessageTooLarge
      assert.deepStrictEqual([tooLarge.size, tooLarge.limit], [22, 10])
      assert.include(tooLarge.message, "22")
      assert.strictEqual(SmtpError.classify(tooLarge), "permanent")
      assert.strictEqual(server.written(0), "EHLO client.test\r\nQUIT\r\n")
    }))

  it.effect("SIZE 0 (no limit) and an unknown size (a Stream without `size`) go as before", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          ehlo("PIPELINING", "SIZE 0"),
          { expect: "MAIL FROM:<a@x.test> SIZE=22", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: `${MESSAGE}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* send(server, ["b@x.test"], {})
    }))
})
