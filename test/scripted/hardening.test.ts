/**
 * Regressions for the hardening after review: interruption in LMTP+BDAT and in AUTH, the
 * end-of-data wait beginning after the final dot, no pulling of a message on a dead connection,
 * redaction of a manual AUTH through docmd, SMTPUTF8 checked on a HELO-only server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import { captureLogs, eventually, makeServer } from "../session/support.js"

const encoder = new TextEncoder()

describe("hardening", () => {
  it.live("LMTP with BDAT interrupted before the per-recipient replies: the session is closed, never out of step", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "LHLO client.test", reply: "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING" },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<c@x.test>", reply: "250 slow ok" },
          {
            expect: /^BDAT 7 LAST/,
            reply: ["250 2.0.0 <b@x.test> delivered\r\n", "250 2.0.0 <c@x.test> delivered\r\n"]
          }
        ]
      })
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ protocol: "lmtp", host: "mx.test", security: "none" })
        yield* server.hold((chunk) => chunk.includes("slow ok"))
        const first = yield* Effect.fork(smtp.sendmail("a@x.test", ["b@x.test", "c@x.test"], "hello\r\n"))
        yield* eventually(server.holding, "the RCPT reply is held")
        yield* Fiber.interrupt(first)
        yield* server.release
        return yield* Effect.either(smtp.noop)
      })).pipe(Effect.provide(server.layer))
      assert.isTrue(outcome._tag === "Left" && outcome.left._tag === "SmtpServerDisconnected")
      assert.notInclude(server.written(), "NOOP")
      assert.isTrue(server.connection(0).clientClosed())
    }))

  it.live("the end-of-data wait begins after the final dot: a slow upload within each write's limit succeeds", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: "a\r\nb\r\nc\r\nd\r\n.\r\n", reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      // four chunks 120 ms apart: 360 ms of upload, more than the 250 ms limit, no wait over it
      const slow = Stream.fromIterable(["a\r\n", "b\r\n", "c\r\n", "d\r\n"]).pipe(
        Stream.map((s) => encoder.encode(s)),
        Stream.tap(() => Effect.sleep("120 millis"))
      )
      const refused = yield* Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ host: "mx.test", security: "none", timeout: "250 millis" }),
        (smtp) => smtp.sendmail("a@x.test", "b@x.test", slow)
      )).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(refused, {})
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.scoped("a dead connection stops the message Stream from being pulled", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" }
        ]
      })
      let pulled = 0
      const error = yield* Effect.flip(Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none" })
        // the connection dies after the third chunk of an endless message
        const endless = Stream.repeatEffect(Effect.gen(function*() {
          pulled++
          if (pulled === 3) yield* smtp.close
          return encoder.encode("line\r\n")
        })).pipe(Stream.take(10_000))
        return yield* smtp.sendmail("a@x.test", "b@x.test", endless)
      }))).pipe(Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpServerDisconnected")
      assert.isBelow(pulled, 10, `pulled ${pulled} chunks after the connection closed`)
    }))

  it.live("an AUTH exchange interrupted half-way is cancelled with * before the next command", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250 AUTH X-SLOW" },
          { expect: "AUTH X-SLOW", reply: "334 " },
          { expect: "*", reply: "501 5.7.0 cancelled" },
          { expect: "NOOP", reply: "250 ok" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const noop = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none" })
        // the authenticator never answers the challenge
        const timedOut = yield* smtp.auth(
          "X-SLOW",
          (challenge) => Option.isNone(challenge) ? Effect.succeed(undefined) : Effect.never,
          { allowInsecure: true } // a custom mechanism in clear to mx.test: refused without it
        ).pipe(
          Effect.timeout("100 millis"),
          Effect.either
        )
        assert.strictEqual(timedOut._tag, "Left")
        return yield* smtp.noop
      })).pipe(Effect.provide(server.layer))
      assert.strictEqual(noop.code, 250)
      assert.strictEqual(server.written(0), "EHLO client.test\r\nAUTH X-SLOW\r\n*\r\nNOOP\r\nQUIT\r\n")
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.scoped("a manual AUTH LOGIN through docmd: the credentials are redacted in the transcript", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "AUTH LOGIN", reply: "334 VXNlcm5hbWU6" },
          { expect: "dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 ok" },
          { expect: "NOOP", reply: "250 ok" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", debug: 1 })
        yield* smtp.docmd("AUTH", "LOGIN")
        yield* smtp.docmd("dXNlcg==")
        yield* smtp.docmd("aHVudGVyMg==")
        yield* smtp.noop
      })).pipe(Effect.provide(server.layer), logs.provide)
      const clientLines = logs.lines.filter((l) => l.startsWith("C: "))
      assert.deepStrictEqual(clientLines, [
        "C: AUTH <redacted>",
        "C: <redacted>",
        "C: <redacted>",
        "C: NOOP",
        "C: QUIT"
      ])
      assert.notInclude(logs.lines.join("\n"), "aHVudGVyMg==")
    }))

  it.scoped("a non-ASCII verb is refused without being echoed", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ steps: [{ expect: "QUIT", reply: "221 bye" }] })
      const error = yield* Effect.flip(Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ host: "mx.test", security: "none" }),
        (smtp) => smtp.docmd("pässwörd-sécret-value-here")
      ))).pipe(Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpInvalidInput")
      assert.notInclude(error.message.toLowerCase(), "sécret-value")
    }))

  it.scoped("SMTPUTF8 asked of a HELO-only server is SmtpNotSupportedError, nothing sent after HELO", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "502 5.5.1 not implemented" },
          { expect: "HELO client.test", reply: "250 mx.test" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const error = yield* Effect.flip(Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ host: "mx.test", security: "none" }),
        (smtp) => smtp.sendmail("a@x.test", "b@x.test", "hi", { mailOptions: ["SMTPUTF8"] })
      ))).pipe(Effect.provide(server.layer))
      assert.strictEqual(error._tag, "SmtpNotSupportedError")
      assert.strictEqual(server.written(0), "EHLO client.test\r\nHELO client.test\r\nQUIT\r\n")
    }))
})
