/**
 * Dkim.signer and Dkim.sign on their own: canonicalisation (RFC 6376 §3.4.5), the tags written,
 * the header list, Stream bodies (spool and replay), and the typed errors, none of which may
 * show the key.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Redacted, Stream, TestClock } from "effect"
import { Message, SmtpError } from "effect-smtp"
import * as Dkim from "effect-smtp/Dkim"
import * as Crypto from "node:crypto"
import * as Canon from "../../src/internal/dkim/canonicalize.js"
import { BODIES } from "./corpus.js"
import { RFC8463_ED25519_SEED, RFC8463_RSA_PKCS1 } from "./rfc8463.js"
import { mailauth } from "./verifiers.js"

const decoder = new TextDecoder("latin1")
const encoder = new TextEncoder()

const tags = (value: string): Record<string, string> =>
  Object.fromEntries(
    value.split(";").map((t) => t.replace(/\s+/g, "")).filter((t) => t.length > 0).map((t) => {
      const i = t.indexOf("=")
      return [t.slice(0, i), t.slice(i + 1)]
    })
  )

const HEAD = "From: a@example.org\r\nTo: b@example.net\r\nBcc: c@example.net\r\nSubject: hi\r\n\r\n"
const message = (body = "hello\r\n") => Either.getOrThrow(Message.parse(HEAD + body))

const edSigner = (options: Partial<Dkim.SignerOptions> = {}) =>
  Dkim.signer({ domain: "example.org", selector: "ed", privateKey: Redacted.make(RFC8463_ED25519_SEED), ...options })

const firstTags = <E, R>(m: Message.Message<E, R>) => tags(m.headers[0]!.value)

const reasonOf = <A>(effect: Effect.Effect<A, unknown>) =>
  Effect.map(Effect.flip(effect), (e) => {
    assert.isTrue(SmtpError.isSmtpError(e) && e._tag === "SmtpInvalidInput", String(e))
    return (e as SmtpError.SmtpInvalidInput).reason
  })

describe("canonicalisation (RFC 6376 §3.4.5)", () => {
  const fields = [{ name: "A", value: " X" }, { name: "B ", value: " Y\t\r\n\tZ  " }]
  const body = encoder.encode(" C \r\nD \t E\r\n\r\n\r\n")

  it("relaxed", () => {
    assert.strictEqual(fields.map((f) => Canon.header("relaxed", f)).join(""), "a:X\r\nb:Y Z\r\n")
    assert.strictEqual(decoder.decode(Canon.body("relaxed", body)), " C\r\nD E\r\n")
  })

  it("simple", () => {
    assert.strictEqual(fields.map((f) => Canon.header("simple", f)).join(""), "A: X\r\nB : Y\t\r\n\tZ  \r\n")
    assert.strictEqual(decoder.decode(Canon.body("simple", body)), " C \r\nD \t E\r\n")
  })

  it("empty bodies: CRLF for simple, nothing for relaxed (RFC 6376 errata 3133)", () => {
    for (const empty of ["", "\r\n", "\r\n\r\n"]) {
      assert.strictEqual(decoder.decode(Canon.body("simple", encoder.encode(empty))), "\r\n")
      assert.strictEqual(decoder.decode(Canon.body("relaxed", encoder.encode(empty))), "")
    }
    assert.strictEqual(decoder.decode(Canon.body("relaxed", encoder.encode(" \t\r\n \r\n"))), "")
    assert.strictEqual(decoder.decode(Canon.body("simple", encoder.encode(" \r\n"))), " \r\n")
  })

  it("a last line without CRLF gets one", () => {
    assert.strictEqual(decoder.decode(Canon.body("simple", encoder.encode("a\r\n\r\nb"))), "a\r\n\r\nb\r\n")
    assert.strictEqual(decoder.decode(Canon.body("relaxed", encoder.encode("a  \r\n\r\nb \t"))), "a\r\n\r\nb\r\n")
  })

  it("many trailing empty lines held as a count, written when content follows", () => {
    const lines = "\r\n".repeat(10_000)
    assert.strictEqual(decoder.decode(Canon.body("simple", encoder.encode(`a${lines}b`))), `a${lines}b\r\n`)
    assert.strictEqual(decoder.decode(Canon.body("relaxed", encoder.encode(`a${lines}`))), "a\r\n")
  })
})

describe("Dkim.sign", () => {
  it.effect("tags: v, a, c, d, q, s, t from the Clock, h, bh, b; x = t + expiresIn; no l=", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_700_000_000_500)
      const signed = yield* Dkim.sign(message(), yield* edSigner({ expiresIn: "1 hour" }))
      const t = firstTags(signed)
      assert.deepStrictEqual(Object.keys(t), ["v", "a", "c", "d", "q", "s", "t", "x", "h", "bh", "b"])
      assert.strictEqual(t.a, "ed25519-sha256")
      assert.strictEqual(t.c, "relaxed/relaxed")
      assert.strictEqual(t.t, "1700000000")
      assert.strictEqual(t.x, "1700003600")
      // the fields present, in message order (Bcc is not transmitted), then the over-signed names
      assert.strictEqual(t.h, ["from", "to", "subject", ...Dkim.DEFAULT_OVERSIGN.map((n) => n.toLowerCase())].join(":"))
      const none = yield* Dkim.sign(message(), yield* edSigner({ timestamp: false }))
      assert.isUndefined(firstTags(none).t)
    }))

  it.effect("the DKIM-Signature fields come first, in the order of the signers; the rest is untouched", () =>
    Effect.gen(function*() {
      const ed = yield* edSigner()
      const rsa = yield* Dkim.signer({
        domain: "example.org",
        selector: "rsa",
        privateKey: Redacted.make(RFC8463_RSA_PKCS1)
      })
      const original = message()
      const signed = yield* Dkim.sign(original, [rsa, ed])
      assert.deepStrictEqual(signed.headers.slice(0, 2).map((h) => tags(h.value).s), [
        "rsa",
        "ed"
      ])
      assert.deepStrictEqual(signed.headers.slice(2), original.headers)
      assert.strictEqual(signed.body, original.body)
      // data-last, and no signer at all
      const dataLast = yield* Dkim.sign(ed)(original)
      assert.strictEqual(dataLast.headers.length, original.headers.length + 1)
      assert.strictEqual(yield* Dkim.sign(original, []), original)
    }))

  it.effect("a message without From is refused", () =>
    Effect.gen(function*() {
      const reason = yield* reasonOf(Dkim.sign(Message.removeHeader(message(), "From"), yield* edSigner()))
      assert.include(reason, "no From field")
    }))

  it.effect("a header field with a bare line break is refused before signing", () =>
    Effect.gen(function*() {
      const bad: Message.Message = {
        headers: [{ name: "From", value: " a@example.org\r\nBcc: x@evil" }],
        body: new Uint8Array(0)
      }
      const reason = yield* reasonOf(Dkim.sign(bad, yield* edSigner()))
      assert.include(reason, "header injection")
    }))
})

describe("Dkim.sign with a Stream body", () => {
  const chunked = (bytes: Uint8Array, size: number) => {
    const out: Array<Uint8Array> = []
    for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size))
    return out
  }

  it.effect("replay hashes chunk by chunk to the same bh= as the bytes body, however it is split", () =>
    Effect.gen(function*() {
      for (const canonicalization of ["relaxed/relaxed", "relaxed/simple"] as const) {
        const signer = yield* edSigner({ canonicalization })
        for (const [name, body] of BODIES) {
          const head = Either.getOrThrow(Message.parse(HEAD)).headers
          const expected = firstTags(yield* Dkim.sign({ headers: head, body }, signer)).bh
          for (const size of [1, 2, 3, 7, 64]) {
            const streamed = yield* Dkim.sign(
              { headers: head, body: Stream.fromIterable(chunked(body, size)) },
              signer,
              { streamBody: "replay" }
            )
            assert.strictEqual(firstTags(streamed).bh, expected, `${name}, ${canonicalization}, chunks of ${size}`)
          }
        }
      }
    }))

  it.effect("replay: the Stream runs once to hash and again when sent; nothing is held", () =>
    Effect.gen(function*() {
      let runs = 0
      const body = Stream.suspend(() => {
        runs++
        return Stream.fromIterable(chunked(encoder.encode("line one\r\nline two\r\n"), 4))
      })
      const signed = yield* Dkim.sign({ headers: message().headers, body }, yield* edSigner(), {
        streamBody: "replay"
      })
      assert.strictEqual(runs, 1)
      assert.isFalse(signed.body instanceof Uint8Array)
      const wire = decoder.decode(yield* Message.toBytes(signed))
      assert.strictEqual(runs, 2)
      assert.isTrue(wire.endsWith("\r\n\r\nline one\r\nline two\r\n"))
    }))

  it.effect("replay: a Stream that gives other bytes the second time fails before its end", () =>
    Effect.gen(function*() {
      let runs = 0
      const body = Stream.suspend(() => Stream.make(encoder.encode(`run ${++runs}\r\n`)))
      const signed = yield* Dkim.sign({ headers: message().headers, body }, yield* edSigner(), {
        streamBody: "replay"
      })
      const reason = yield* reasonOf(Message.toBytes(signed))
      assert.include(reason, "different bytes")
    }))

  it.effect("spool (the default): held in memory up to maxBodyBytes, then a bytes body", () =>
    Effect.gen(function*() {
      let runs = 0
      const body = Stream.suspend(() => {
        runs++
        return Stream.fromIterable(chunked(encoder.encode("spooled\r\n"), 2))
      })
      const signed = yield* Dkim.sign({ headers: message().headers, body }, yield* edSigner())
      assert.strictEqual(runs, 1)
      assert.isTrue(signed.body instanceof Uint8Array)
      assert.strictEqual(decoder.decode(signed.body as Uint8Array), "spooled\r\n")
    }))

  it.effect("spool: a body over maxBodyBytes fails, and the Stream is not read further", () =>
    Effect.gen(function*() {
      let pulled = 0
      // endless: only the limit stops it
      const body = Stream.repeatEffect(Effect.sync(() => {
        pulled++
        return new Uint8Array(100)
      }))
      const reason = yield* reasonOf(
        Dkim.sign({ headers: message().headers, body }, yield* edSigner(), { maxBodyBytes: 1000 })
      )
      assert.include(reason, "maxBodyBytes (1000 bytes)")
      assert.isAtMost(pulled, 12)
    }))
})

describe("Dkim.signer: typed errors that never show the key", () => {
  const rsa512 = Crypto.generateKeyPairSync("rsa", { modulusLength: 512 }).privateKey
  const ec = Crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
  const ed = Crypto.generateKeyPairSync("ed25519").privateKey
  const pkcs8 = (k: Crypto.KeyObject) => k.export({ type: "pkcs8", format: "pem" }).toString()
  const encrypted = ed.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }).toString()
  const secretParts = (pem: string) => {
    const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")
    return Array.from({ length: Math.floor(b64.length / 16) }, (_, i) => b64.slice(i * 16, i * 16 + 16))
  }

  const cases: ReadonlyArray<readonly [string, string, string, Dkim.Algorithm?]> = [
    ["not a key", "hunter2-this-is-not-a-key", "neither PEM"],
    ["a 31-byte seed", Buffer.alloc(31, 7).toString("base64"), "32-byte Ed25519 seed"],
    ["an EC key", pkcs8(ec), "neither RSA nor Ed25519"],
    ["an EC key in SEC1", ec.export({ type: "sec1", format: "pem" }).toString(), "\"EC PRIVATE KEY\""],
    ["an encrypted key", encrypted, "encrypted keys are not supported"],
    ["a 512-bit RSA key", pkcs8(rsa512), "512 bits"],
    ["a PKCS#1 block that is PKCS#8", pkcs8(ed).replace(/PRIVATE KEY/g, "RSA PRIVATE KEY"), "refused it"],
    ["broken base64", pkcs8(ed).replace(/\n[A-Za-z0-9+/]{4}/, "\n!!!!"), "not valid base64"],
    ["a truncated key", pkcs8(rsa512).replace(/\n[A-Za-z0-9+/]{64}\n/, "\n"), "not a DER PKCS#8"],
    ["an Ed25519 key for rsa-sha256", pkcs8(ed), "but algorithm rsa-sha256 was asked", "rsa-sha256"],
    ["an RSA key for ed25519-sha256", RFC8463_RSA_PKCS1, "but algorithm ed25519-sha256 was asked", "ed25519-sha256"]
  ]

  for (const [name, key, expected, algorithm] of cases) {
    it.effect(name, () =>
      Effect.gen(function*() {
        const reason = yield* reasonOf(
          Dkim.signer({ domain: "example.org", selector: "s", privateKey: Redacted.make(key), algorithm })
        )
        assert.include(reason, expected)
        assert.include(reason, "DKIM private key")
        for (const part of secretParts(key)) assert.notInclude(reason, part)
      }))
  }

  it.effect("accepted: PKCS#8 Ed25519 from node:crypto; the signer shows no key", () =>
    Effect.gen(function*() {
      const signer = yield* Dkim.signer({
        domain: "Example.ORG.",
        selector: "S1",
        privateKey: Redacted.make(pkcs8(ed))
      })
      assert.strictEqual(signer.dnsName, "s1._domainkey.example.org")
      const shown = JSON.stringify(signer) + String(Object.keys(signer))
      for (const part of secretParts(pkcs8(ed))) assert.notInclude(shown, part)
      assert.isTrue(Dkim.isSigner(signer))
    }))

  const optionCases: ReadonlyArray<readonly [string, Partial<Dkim.SignerOptions>, string]> = [
    ["a domain with a space", { domain: "exa mple.org" }, "is not a domain name"],
    ["an IDN not in A-labels", { domain: "bücher.example" }, "A-label"],
    ["a selector with a slash", { selector: "a/b" }, "not a valid selector"],
    ["headers without From", { headers: ["Subject", "To"] }, "must include From"],
    ["a header name with a colon", { oversign: ["X:Y"] }, "invalid header field name"],
    ["an identity at another domain", { identity: "ann@example.com" }, "at the domain example.org"],
    ["an identity with a semicolon", { identity: "a;b@example.org" }, "must be an address"],
    ["tags after an identity's domain", { identity: "u@x; l=0; z=.example.org" }, "must be an address"],
    ["a space in an identity's domain", { identity: "u@a .example.org" }, "must be an address"],
    ["an unknown canonicalization", { canonicalization: "relaxed" as any }, "expected simple/simple"],
    ["expiresIn without t=", { timestamp: false, expiresIn: "1 hour" }, "needs the timestamp"],
    ["a zero expiresIn", { expiresIn: 0 }, "positive"],
    // from JavaScript: each a typed failure (they were defects)
    ["a domain that is not a string", { domain: 5 as any }, "DKIM domain: not a string"],
    ["no selector", { selector: undefined as any }, "DKIM selector: not a string"],
    ["a private key not Redacted", { privateKey: "-----BEGIN PRIVATE KEY-----" as any }, "not a Redacted value"]
  ]
  for (const [name, options, expected] of optionCases) {
    it.effect(name, () =>
      Effect.gen(function*() {
        assert.include(yield* reasonOf(edSigner(options)), expected)
      }))
  }

  it.effect("Dkim.generateKey gives keys that signer accepts, with matching records", () =>
    Effect.gen(function*() {
      for (const algorithm of ["rsa-sha256", "ed25519-sha256"] as const) {
        const { privateKey, publicKey } = yield* Dkim.generateKey(algorithm)
        const signer = yield* Dkim.signer({ domain: "example.org", selector: "g", privateKey })
        assert.strictEqual(signer.algorithm, algorithm)
        assert.isTrue(signer.dnsRecord.endsWith(`; p=${publicKey}`))
        assert.strictEqual(String(privateKey), "<redacted>")
      }
    }))
})

describe("Dkim.sign with Message.make and a Stream attachment", () => {
  it.live("replay: the composed Stream gives the same bytes again, and mailauth verifies what is sent", () =>
    Effect.gen(function*() {
      const signer = yield* edSigner({ domain: "football.example.com", selector: "brisbane" })
      const message = yield* Message.make({
        from: "reports@football.example.com",
        to: "ops@example.net",
        subject: "Nightly report",
        text: "See the attachment.",
        attachments: [{
          filename: "report.csv",
          content: Stream.fromIterable(Array.from({ length: 2000 }, (_, i) => `${i},row ${i}\r\n`)).pipe(
            Stream.map((row) => encoder.encode(row))
          )
        }]
      })
      const signed = yield* Dkim.sign(message, signer, { streamBody: "replay" })
      assert.isFalse(signed.body instanceof Uint8Array)
      const wire = yield* Message.toBytes(signed)
      const verdicts = yield* mailauth(wire, { [signer.dnsName]: signer.dnsRecord })
      assert.deepStrictEqual(verdicts.map((v) => v.result), ["pass"])
    }))
})

describe("Dkim.sign with a file as the body", () => {
  it.scopedLive("replay: a file Stream (FileSystem.stream) reads the file twice and verifies", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* fs.makeTempFileScoped()
      const lines = Array.from({ length: 5000 }, (_, i) => `line ${i}  with  spaces\t\n`).join("")
      yield* fs.writeFileString(path, `From: a@football.example.com\nTo: b@example.net\nSubject: file\n\n${lines}`)
      // the header section parsed from the file's start; the body read from the file on each run
      const head = yield* Message.parse(yield* fs.readFile(path).pipe(Effect.map((b) => b.subarray(0, 80))))
      const offset = BigInt(encoder.encode("From: a@football.example.com\nTo: b@example.net\nSubject: file\n\n").length)
      const body = fs.stream(path, { offset, chunkSize: 4096 }).pipe(Stream.orDie)
      const signer = yield* edSigner({ domain: "football.example.com", selector: "brisbane" })
      const signed = yield* Dkim.sign({ headers: head.headers, body }, signer, { streamBody: "replay" })
      const wire = yield* Message.toBytes(signed)
      assert.isTrue(decoder.decode(wire).endsWith("line 4999  with  spaces\t\r\n"))
      const verdicts = yield* mailauth(wire, { [signer.dnsName]: signer.dnsRecord })
      assert.deepStrictEqual(verdicts.map((v) => v.result), ["pass"])
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
