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

  it.effect("a legacy 8-bit header (not UTF-8) is signed and sent byte for byte", () =>
    Effect.gen(function*() {
      const signer = yield* Dkim.signer({
        domain: "example.org",
        selector: "ed",
        privateKey: Redacted.make(RFC8463_ED25519_SEED)
      })
      const transport = yield* TestTransport.make()
      // "Subject: café" in Latin-1: the byte E9 alone is not UTF-8
      const raw = Uint8Array.from([
        ...new TextEncoder().encode("From: ann@example.org\r\nTo: bob@example.net\r\nSubject: caf"),
        0xe9,
        ...new TextEncoder().encode("\r\n\r\nhello\r\n")
      ])
      yield* Effect.gen(function*() {
        const mailer = yield* Mailer.Mailer
        yield* mailer.sendmail("ann@example.org", "bob@example.net", raw)
      }).pipe(
        Effect.provide(Mailer.layer({ host: "mx.test", dkim: Dkim.sign(signer) }).pipe(Layer.provide(transport.layer)))
      )
      const [mail] = yield* transport.received
      // before: written back as UTF-8 (C3 A9, "cafÃ©"), which broke any signature made upstream
      const at = indexOf(mail!.raw, new TextEncoder().encode("Subject: caf"))
      assert.deepStrictEqual([...mail!.raw.subarray(at + 12, at + 15)], [0xe9, 0x0d, 0x0a])
      const verdicts = yield* mailauth(mail!.raw, { [signer.dnsName]: signer.dnsRecord })
      assert.deepStrictEqual(verdicts.map((v) => v.result), ["pass"])
    }))
})

const indexOf = (haystack: Uint8Array, needle: Uint8Array): number => {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}
