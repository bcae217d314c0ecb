/**
 * The Mailer's `dkim` option: a signer configured once signs every message, whatever the
 * operation (sendmail of a string or bytes, sendMessage, send, sendAll), once per message; what
 * the server received verifies with mailauth. A Stream given to sendmail cannot be signed.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"
import { Mailer, Message } from "effect-smtp"
import * as Dkim from "effect-smtp/Dkim"
import { TestTransport } from "effect-smtp/testing"
import { RFC8463_ED25519_SEED } from "./rfc8463.js"
import { mailauth } from "./verifiers.js"

const RAW = "From: ann@example.org\r\nTo: bob@example.net\r\nSubject: raw\r\n\r\nhello\r\n"

describe("Mailer with a DKIM signer", () => {
  it.effect("every operation's message arrives signed once and verifies", () =>
    Effect.gen(function*() {
      const signer = yield* Dkim.signer({
        domain: "example.org",
        selector: "ed",
        privateKey: Redacted.make(RFC8463_ED25519_SEED)
      })
      const records = { [signer.dnsName]: signer.dnsRecord }
      const transport = yield* TestTransport.make()
      const MailerLive = Mailer.layer({ host: "mx.test", maxConnections: 2, dkim: Dkim.sign(signer) }).pipe(
        Layer.provide(transport.layer)
      )
      const message = yield* Message.make({
        from: "ann@example.org",
        to: "bob@example.net",
        subject: "composed",
        text: "hi"
      })
      yield* Effect.gen(function*() {
        const mailer = yield* Mailer.Mailer
        yield* mailer.sendmail("ann@example.org", "bob@example.net", RAW)
        yield* mailer.sendmail("ann@example.org", "bob@example.net", new TextEncoder().encode(RAW))
        yield* mailer.sendMessage(message)
        yield* mailer.send(message)
        yield* mailer.send({ from: "ann@example.org", to: "bob@example.net", message: RAW })
        const outcomes = yield* Stream.runCollect(mailer.sendAll([
          { from: "ann@example.org", to: "bob@example.net", message: RAW },
          { message }
        ]))
        assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map((o) => o._tag), ["Sent", "Sent"])
        const streamed = yield* Effect.flip(
          mailer.sendmail("ann@example.org", "bob@example.net", Stream.succeed(new TextEncoder().encode(RAW)))
        )
        assert.strictEqual(streamed._tag, "SmtpInvalidInput")
      }).pipe(Effect.provide(MailerLive))
      const received = yield* transport.received
      assert.strictEqual(received.length, 7)
      for (const mail of received) {
        const text = new TextDecoder().decode(mail.raw)
        assert.strictEqual(text.match(/^DKIM-Signature:/gim)?.length, 1, "signed exactly once")
        const verdicts = yield* mailauth(mail.raw, records)
        assert.deepStrictEqual(verdicts.map((v) => v.result), ["pass"])
      }
    }))
})
