/**
 * RFC 8463 Appendix A: its keys (A.1: the RFC 8032 §7.1 test 1 Ed25519 seed, and a 1024-bit
 * PKCS#1 RSA key) and its message (the RFC 6376 example), signed at its time with its tags,
 * give its two DKIM-Signature fields exactly: Ed25519 and RSASSA-PKCS1-v1_5 are deterministic,
 * so b= is reproduced too, not only bh=. Its DNS records (A.2) are what the signers derive.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted, TestClock } from "effect"
import { Message } from "effect-smtp"
import * as Dkim from "effect-smtp/Dkim"
import { RFC8463_ED25519_SEED, RFC8463_MESSAGE, RFC8463_RSA_PKCS1 } from "./rfc8463.js"
import { dkimpy, dkimpyRequired, dkimpySkipReason, mailauth } from "./verifiers.js"

/** A.2 */
const RECORDS = {
  "brisbane._domainkey.football.example.com": "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  "test._domainkey.football.example.com": "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" +
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" +
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" +
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
}

const MESSAGE = RFC8463_MESSAGE

/** A.3, as published (folded as dkimpy folds) */
const SIGNED_FIELDS = [
  "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;",
  " d=football.example.com; i=@football.example.com;",
  " q=dns/txt; s=brisbane; t=1528637909; h=from : to :",
  " subject : date : message-id : from : subject : date;",
  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
  " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus",
  " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
  "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;",
  " d=football.example.com; i=@football.example.com;",
  " q=dns/txt; s=test; t=1528637909; h=from : to : subject :",
  " date : message-id : from : subject : date;",
  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;",
  " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3",
  " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz",
  " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=",
  ""
].join("\r\n")

/** Tag name → value with all white space removed. */
const tags = (value: string): Record<string, string> =>
  Object.fromEntries(
    value.split(";").map((t) => t.replace(/\s+/g, "")).filter((t) => t.length > 0).map((t) => {
      const i = t.indexOf("=")
      return [t.slice(0, i), t.slice(i + 1)]
    })
  )

const fieldValues = (text: string): Array<string> =>
  text.split(/\r\n(?=DKIM-Signature:)/).map((f) => f.replace(/^DKIM-Signature:/, "").replace(/\r\n$/, ""))

const common = {
  domain: "football.example.com",
  identity: "@football.example.com",
  headers: ["From", "To", "Subject", "Date", "Message-ID"],
  oversign: ["From", "Subject", "Date"]
} as const

const signers = Effect.all([
  Dkim.signer({ ...common, selector: "brisbane", privateKey: Redacted.make(RFC8463_ED25519_SEED) }),
  Dkim.signer({ ...common, selector: "test", privateKey: Redacted.make(RFC8463_RSA_PKCS1) })
])

const signedExample = Effect.gen(function*() {
  const [ed25519, rsa] = yield* signers
  const message = yield* Message.parse(MESSAGE)
  return yield* Dkim.sign(message, [ed25519, rsa])
})

describe("RFC 8463 Appendix A", () => {
  it.effect("the signers derive the published DNS records from the A.1 keys", () =>
    Effect.gen(function*() {
      const [ed25519, rsa] = yield* signers
      assert.strictEqual(ed25519.algorithm, "ed25519-sha256")
      assert.strictEqual(ed25519.dnsName, "brisbane._domainkey.football.example.com")
      assert.strictEqual(ed25519.dnsRecord, RECORDS["brisbane._domainkey.football.example.com"])
      assert.strictEqual(rsa.algorithm, "rsa-sha256")
      assert.strictEqual(rsa.keyBits, 1024)
      assert.strictEqual(rsa.dnsRecord, RECORDS["test._domainkey.football.example.com"])
    }))

  it.effect("signing the A.3 message gives the A.3 signatures, b= included", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1528637909 * 1000)
      const signed = yield* signedExample
      assert.deepStrictEqual(signed.headers.slice(2), Either.getOrThrow(Message.parse(MESSAGE)).headers)
      const ours = signed.headers.slice(0, 2).map((h) => {
        assert.strictEqual(h.name, "DKIM-Signature")
        return tags(h.value)
      })
      const theirs = fieldValues(SIGNED_FIELDS).map(tags)
      assert.deepStrictEqual(ours, theirs)
      assert.strictEqual(
        ours[0]!.b,
        "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
      )
      // every line of the fields we write fits in 78 columns
      const bytes = new TextDecoder().decode(yield* Message.toBytes(signed))
      for (const line of bytes.split("\r\n")) assert.isAtMost(line.length, 78, line)
    }))

  it.live("mailauth verifies the published A.3 message and ours", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        (yield* mailauth(SIGNED_FIELDS + MESSAGE, RECORDS)).map((r) => r.result),
        ["pass", "pass"]
      )
      const ours = yield* Message.toBytes(yield* signedExample)
      assert.deepStrictEqual((yield* mailauth(ours, RECORDS)).map((r) => r.result), ["pass", "pass"])
    }))

  const skip = dkimpySkipReason()
  it.live.skipIf(skip !== undefined && !dkimpyRequired)(
    skip ?? "dkimpy verifies the published A.3 message and ours",
    () =>
      Effect.gen(function*() {
        assert.isUndefined(skip, `SMTP_DKIMPY_REQUIRED=1 but ${skip}`)
        const ours = yield* Message.toBytes(yield* signedExample)
        assert.deepStrictEqual(yield* dkimpy([SIGNED_FIELDS + MESSAGE, ours], RECORDS), [[true, true], [true, true]])
      })
  )
})
