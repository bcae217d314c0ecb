/**
 * The messages both verifiers check: signed by `Dkim.sign` with keys made by the test (Web
 * Crypto PKCS#8 RSA and Ed25519, node:crypto PKCS#1 RSA, Dkim.generateKey), every
 * canonicalisation, awkward bodies, several signatures, and the tampered copies that must fail.
 * Each case says which of its signatures (topmost first) must verify.
 */
import { Effect, Redacted, Stream } from "effect"
import { Message } from "effect-smtp"
import * as Dkim from "effect-smtp/Dkim"
import { nodePkcs1Rsa, type Records, webCryptoEd25519, webCryptoRsa } from "./verifiers.js"

export interface Case {
  readonly name: string
  readonly bytes: Uint8Array
  /** per signature, topmost first: must it verify? */
  readonly expected: ReadonlyArray<boolean>
  /** where dkimpy's verdict differs on purpose */
  readonly dkimpy?: ReadonlyArray<boolean>
}

const DOMAIN = "example.org"

const HEADERS = [
  "From: Ann Example <ann@example.org>",
  "To: Bob <bob@example.net>, carol@example.net",
  "Bcc: hidden@example.net",
  "Subject: A subject long enough that the composer of this test folded it over",
  " two lines",
  "Date: Mon, 30 Nov 2026 17:00:00 +0000",
  "Message-ID: <dkim-corpus@example.org>",
  "MIME-Version: 1.0",
  "Content-Type: text/plain; charset=utf-8",
  "Content-Transfer-Encoding: 8bit"
].join("\r\n") + "\r\n\r\n"

const encoder = new TextEncoder()
const concat = (...parts: Array<Uint8Array>) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Bodies that canonicalisation must get right. */
export const BODIES: ReadonlyArray<readonly [string, Uint8Array]> = [
  ["plain", encoder.encode("Hello,\r\n\r\nthis is the body.\r\n")],
  ["trailing blank lines", encoder.encode("Hello\r\n\r\n\r\n\r\n")],
  ["trailing white-space lines", encoder.encode("Hello  \t\r\n \r\n\t\r\n  \r\n")],
  ["no final line break", encoder.encode("no line break at the end")],
  ["empty", new Uint8Array(0)],
  ["only line breaks", encoder.encode("\r\n\r\n\r\n")],
  ["long lines", encoder.encode(`${"x".repeat(998)}\r\n${"word  \t ".repeat(120)}\r\n`)],
  ["8-bit UTF-8", encoder.encode("Grüße, naïve café — 日本語\r\n")],
  ["8-bit Latin-1", concat(encoder.encode("caf"), Uint8Array.of(0xe9), encoder.encode("\r\n\xa0\r\n"))],
  ["dot-leading lines", encoder.encode(".\r\n..two dots\r\n.leading dot\r\n. \r\n")],
  ["lone LF and CR line ends", encoder.encode("unix\nline\n\nmac\rline\r\rmixed\r\n")],
  ["white space runs", encoder.encode("  lead\t and  \t mid   trail  \t\r\n\t\ttabs\r\n")]
]

const CANONICALIZATIONS: ReadonlyArray<Dkim.Canonicalization> = [
  "relaxed/relaxed",
  "relaxed/simple",
  "simple/relaxed",
  "simple/simple"
]

const parse = (head: string, body: Uint8Array) => Message.parse(concat(encoder.encode(head), body))

const wire = <E, R>(message: Message.Message<E, R>) => Message.toBytes(message)

const text = (bytes: Uint8Array) => new TextDecoder("latin1").decode(bytes)
const bytesOf = (latin1: string) => Uint8Array.from(latin1, (c) => c.charCodeAt(0))

/** The keys of the corpus: one signer per kind, and the DNS records of them all. */
export const makeKeys = Effect.gen(function*() {
  const rsa = yield* webCryptoRsa()
  const ed = yield* webCryptoEd25519()
  const pkcs1 = yield* nodePkcs1Rsa()
  const generated = yield* Dkim.generateKey("ed25519-sha256")
  const kinds = [
    ["webcrypto-rsa", rsa.pem, rsa.record],
    ["webcrypto-ed25519", ed.pem, ed.record],
    ["pkcs1-rsa", pkcs1.pem, pkcs1.record],
    ["generated-ed25519", Redacted.value(generated.privateKey), `v=DKIM1; k=ed25519; p=${generated.publicKey}`]
  ] as const
  const records: Record<string, string> = {}
  for (const [selector, , record] of kinds) records[`${selector}._domainkey.${DOMAIN}`] = record
  return { kinds, records: records as Records }
})

/** Every case, signed at the Clock's time. */
export const makeCorpus = Effect.gen(function*() {
  const { kinds, records } = yield* makeKeys
  const cases: Array<Case> = []
  const signerOf = (selector: string, pem: string, canonicalization: Dkim.Canonicalization) =>
    Dkim.signer({ domain: DOMAIN, selector, privateKey: Redacted.make(pem), canonicalization })

  // every key kind × canonicalisation × body
  for (const [selector, pem] of kinds) {
    for (const canonicalization of CANONICALIZATIONS) {
      const signer = yield* signerOf(selector, pem, canonicalization)
      // the signer derives the record the test published independently
      if (records[signer.dnsName] !== signer.dnsRecord) {
        return yield* Effect.dieMessage(`${selector}: dnsRecord differs from the published record`)
      }
      for (const [bodyName, body] of BODIES) {
        const signed = yield* Dkim.sign(yield* parse(HEADERS, body), signer)
        cases.push({
          name: `${selector} ${canonicalization} ${bodyName}`,
          bytes: yield* wire(signed),
          expected: [true]
        })
      }
    }
  }

  const [rsaSelector, rsaPem] = kinds[0]
  const [edSelector, edPem] = kinds[1]
  const [pkcs1Selector, pkcs1Pem] = kinds[2]
  const plain = yield* parse(HEADERS, BODIES[0]![1])

  // re-folded header white space: relaxed survives, simple does not
  for (const canonicalization of CANONICALIZATIONS) {
    const signer = yield* signerOf(rsaSelector, rsaPem, canonicalization)
    const signed = text(yield* wire(yield* Dkim.sign(plain, signer)))
    const refolded = signed
      .replace("Subject: A subject long", "Subject:   A  subject\r\n\tlong")
      .replace("To: Bob <bob@example.net>, carol@example.net", "To: Bob <bob@example.net>,\r\n carol@example.net  ")
    if (refolded === signed) return yield* Effect.dieMessage("refolding changed nothing")
    cases.push({
      name: `re-folded headers, ${canonicalization}`,
      bytes: bytesOf(refolded),
      expected: [canonicalization.startsWith("relaxed/")]
    })
    // white space added to the body: relaxed body canonicalisation survives it
    const body = signed.replace("this is the body.\r\n", "this  is the\tbody.   \r\n\r\n\r\n")
    cases.push({
      name: `body white space changed, ${canonicalization}`,
      bytes: bytesOf(body),
      expected: [canonicalization.endsWith("/relaxed")]
    })
  }

  // tampering
  const rsa = yield* signerOf(rsaSelector, rsaPem, "relaxed/relaxed")
  const signed = text(yield* wire(yield* Dkim.sign(plain, rsa)))
  const afterSignature = signed.indexOf("\r\nFrom:") + 2
  const insert = (field: string) => bytesOf(signed.slice(0, afterSignature) + field + signed.slice(afterSignature))
  cases.push({ name: "untouched", bytes: bytesOf(signed), expected: [true] })
  cases.push({
    name: "a second From added above (over-signed)",
    bytes: insert("From: mallory@evil.example\r\n"),
    expected: [false]
  })
  cases.push({
    name: "a Cc added (absent but over-signed)",
    bytes: insert("Cc: eve@evil.example\r\n"),
    expected: [false]
  })
  cases.push({
    name: "a header that is not signed added (X-Mailer)",
    bytes: insert("X-Mailer: relay\r\n"),
    expected: [true]
  })
  cases.push({ name: "body changed", bytes: bytesOf(signed.replace("the body", "a body")), expected: [false] })
  cases.push({ name: "body appended", bytes: bytesOf(signed + "P.S. buy now\r\n"), expected: [false] })
  cases.push({ name: "Subject changed", bytes: bytesOf(signed.replace("A subject", "The subject")), expected: [false] })

  // without over-signing, a second From added above the first still verifies: why over-signing is the default
  const unprotected = yield* Dkim.signer({
    domain: DOMAIN,
    selector: rsaSelector,
    privateKey: Redacted.make(rsaPem),
    oversign: []
  })
  const weak = text(yield* wire(yield* Dkim.sign(plain, unprotected)))
  const weakAt = weak.indexOf("\r\nFrom:") + 2
  cases.push({
    name: "oversign: [] lets a second From through",
    bytes: bytesOf(weak.slice(0, weakAt) + "From: mallory@evil.example\r\n" + weak.slice(weakAt)),
    expected: [true],
    // dkimpy's verifier over-signs From by itself (its bug #644046), whatever h= says
    dkimpy: [false]
  })
  cases.push({
    name: "oversign: [] lets a second Subject through",
    bytes: bytesOf(weak.slice(0, weakAt) + "Subject: Urgent: new bank details\r\n" + weak.slice(weakAt)),
    expected: [true]
  })
  cases.push({
    name: "a second Subject added above (over-signed)",
    bytes: insert("Subject: Urgent: new bank details\r\n"),
    expected: [false]
  })

  // several signatures on one message, each verifying on its own
  const several = [
    yield* signerOf(edSelector, edPem, "relaxed/relaxed"),
    yield* signerOf(rsaSelector, rsaPem, "relaxed/simple"),
    yield* signerOf(pkcs1Selector, pkcs1Pem, "simple/simple")
  ]
  const multi = yield* wire(yield* Dkim.sign(plain, several))
  cases.push({ name: "three signatures (Ed25519, RSA, PKCS#1 RSA)", bytes: multi, expected: [true, true, true] })
  cases.push({
    name: "three signatures, header white space changed: only the relaxed-header ones hold",
    bytes: bytesOf(text(multi).replace("Subject: A subject", "Subject:  A   subject")),
    expected: [true, true, false]
  })

  // a composed MIME message, t= and x=, Stream bodies
  const composed = yield* Message.make({
    from: "Ann Example <ann@example.org>",
    to: "bob@example.net",
    subject: "Grüße aus Köln",
    text: "Hallo Bob,\n\nschöne Grüße.\n",
    html: "<p>Hallo Bob,</p><p>schöne Grüße.</p>",
    attachments: [{ filename: "data.bin", content: new Uint8Array(3000).map((_, i) => i % 256) }]
  })
  const expiring = yield* Dkim.signer({
    domain: DOMAIN,
    selector: edSelector,
    privateKey: Redacted.make(edPem),
    expiresIn: "1 hour",
    identity: "ann@mail.example.org"
  })
  cases.push({
    name: "Message.make output, x= in an hour, i= at a subdomain",
    bytes: yield* wire(yield* Dkim.sign(composed, expiring)),
    expected: [true]
  })

  const chunks = [...text(BODIES[10]![1]).matchAll(/[\s\S]{1,3}/g)].map((m) => bytesOf(m[0]))
  const streamed = yield* parse(HEADERS, new Uint8Array(0))
  for (const streamBody of ["spool", "replay"] as const) {
    const message: Message.Message = { headers: streamed.headers, body: Stream.fromIterable(chunks) }
    const signedStream = yield* Dkim.sign(message, rsa, { streamBody })
    cases.push({ name: `Stream body, ${streamBody}`, bytes: yield* wire(signedStream), expected: [true] })
  }
  return { cases, records }
})
