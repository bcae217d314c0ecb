/**
 * Signed, then sent for real: `Mailer.sendMessage` over TCP (NodeSmtpTransport) to the
 * TestSmtpServer, with DATA (dot-stuffed) and with BDAT, bytes and replayed Stream bodies; what
 * the server received verifies with mailauth and dkimpy. A replayed Stream that changes between
 * its runs is not delivered: the send fails before the end of the data.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Redacted, Stream } from "effect"
import { Mailer, Message } from "effect-smtp"
import * as Dkim from "effect-smtp/Dkim"
import { NodeSmtpTransport } from "effect-smtp/node"
import { TestSmtpServer } from "effect-smtp/testing/node"
import { RFC8463_ED25519_SEED, RFC8463_RSA_PKCS1 } from "./rfc8463.js"
import { dkimpy, dkimpyRequired, dkimpySkipReason, mailauth } from "./verifiers.js"

const encoder = new TextEncoder()
const BODY = ".\r\n..dots\r\n.leading\r\nGrüße\r\n\r\n\r\n"

const signers = Effect.all([
  Dkim.signer({ domain: "example.org", selector: "ed", privateKey: Redacted.make(RFC8463_ED25519_SEED) }),
  Dkim.signer({ domain: "example.org", selector: "rsa", privateKey: Redacted.make(RFC8463_RSA_PKCS1) })
])

const sendAll = (disable: ReadonlyArray<"CHUNKING">) =>
  Effect.gen(function*() {
    const server = yield* TestSmtpServer.make({ disable })
    const signerList = yield* signers
    const records = Object.fromEntries(signerList.map((s) => [s.dnsName, s.dnsRecord]))
    const MailerLive = Mailer.layer({ ...server.clientOptions, maxConnections: 1 }).pipe(
      Layer.provide(NodeSmtpTransport.layer)
    )
    const base = yield* Message.make({
      from: "ann@example.org",
      to: "bob@example.net",
      subject: "Signed and sent",
      text: BODY
    })
    const streamed: Message.Message = {
      headers: base.headers,
      body: Stream.fromIterable([...BODY].map((c) => encoder.encode(c)))
    }
    yield* Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      yield* mailer.sendMessage(yield* Dkim.sign(base, signerList))
      yield* mailer.sendMessage(yield* Dkim.sign(streamed, signerList, { streamBody: "replay" }))
      let runs = 0
      const changing: Message.Message = {
        headers: base.headers,
        body: Stream.suspend(() => Stream.make(encoder.encode(`run ${++runs}\r\n`)))
      }
      const exit = yield* Effect.exit(
        mailer.sendMessage(yield* Dkim.sign(changing, signerList, { streamBody: "replay" }))
      )
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      assert.strictEqual(Option.getOrUndefined(Option.map(error, (e) => e._tag)), "SmtpInvalidInput")
      assert.include(String(Option.getOrUndefined(error)), "different bytes")
    }).pipe(Effect.provide(MailerLive))
    const received = yield* server.messages
    return { received, records }
  }).pipe(Effect.scoped)

describe("signed messages sent over TCP", () => {
  for (const [name, disable] of [["DATA", ["CHUNKING"]], ["BDAT", []]] as const) {
    it.live(`${name}: what the server received verifies with mailauth; a changing replay is not delivered`, () =>
      Effect.gen(function*() {
        const { received, records } = yield* sendAll(disable)
        assert.deepStrictEqual(received.map((r) => r.via), [name, name])
        for (const message of received) {
          assert.deepStrictEqual((yield* mailauth(message.raw, records)).map((v) => v.result), ["pass", "pass"])
        }
      }))
  }

  const skip = dkimpySkipReason()
  it.live.skipIf(skip !== undefined && !dkimpyRequired)(
    skip ?? "DATA and BDAT: dkimpy verifies what was received",
    () =>
      Effect.gen(function*() {
        assert.isUndefined(skip, `SMTP_DKIMPY_REQUIRED=1 but ${skip}`)
        for (const disable of [["CHUNKING"] as const, []]) {
          const { received, records } = yield* sendAll(disable)
          assert.deepStrictEqual(yield* dkimpy(received.map((r) => r.raw), records), [[true, true], [true, true]])
        }
      })
  )
})
