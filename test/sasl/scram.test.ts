import { assert, describe, it, vi } from "@effect/vitest"
import { Either } from "effect"
import * as Scram from "../../src/internal/sasl/scram.js"
import type { SaslSession } from "../../src/internal/sasl/types.js"
import { assertNoSecretInReasons, bytes, expectLeft, expectRight, run, text } from "./_helpers.js"

const sha1 = {
  nonce: "fyko+d2lbbFgONRv9qkxdawL",
  serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
}

const sha256 = {
  nonce: "rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal:
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
}

const sha1Session = (options: Partial<Scram.Options> = {}): SaslSession =>
  expectRight(Scram.make({ hash: "SHA-1", username: "user", password: "pencil", nonce: sha1.nonce, ...options }))

/** A SHA-1 session that has sent its client-final message (RFC 5802 §5). */
const afterClientFinal = async (): Promise<SaslSession> => {
  const session = sha1Session()
  session.initial()
  assert.strictEqual(text(expectRight(await run(session.respond(bytes(sha1.serverFirst))))), sha1.clientFinal)
  return session
}

describe("SCRAM (RFC 5802, RFC 7677)", () => {
  it("names the mechanisms", () => {
    assert.deepStrictEqual(Scram.mechanisms, { "SHA-1": "SCRAM-SHA-1", "SHA-256": "SCRAM-SHA-256" })
  })

  it("SCRAM-SHA-1: RFC 5802 §5 example", async () => {
    const session = sha1Session()
    assert.strictEqual(text(session.initial()), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    assert.strictEqual(text(expectRight(await run(session.respond(bytes(sha1.serverFirst))))), sha1.clientFinal)
    expectLeft(session.complete())
    assert.deepStrictEqual(expectRight(await run(session.respond(bytes(sha1.serverFinal)))), new Uint8Array(0))
    assert.isTrue(Either.isRight(session.complete()))
    assert.isUndefined(session.serverError())
  })

  it("SCRAM-SHA-256: RFC 7677 §3 example", async () => {
    const session = expectRight(
      Scram.make({ hash: "SHA-256", username: "user", password: "pencil", nonce: sha256.nonce })
    )
    assert.strictEqual(text(session.initial()), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert.strictEqual(text(expectRight(await run(session.respond(bytes(sha256.serverFirst))))), sha256.clientFinal)
    assert.deepStrictEqual(expectRight(await run(session.respond(bytes(sha256.serverFinal)))), new Uint8Array(0))
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("answers an empty first challenge with the client-first message (AUTH sent without one)", async () => {
    const session = sha1Session()
    assert.strictEqual(
      text(expectRight(await run(session.respond(new Uint8Array(0))))),
      "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    )
    assert.strictEqual(text(expectRight(await run(session.respond(bytes(sha1.serverFirst))))), sha1.clientFinal)
    expectRight(await run(session.respond(bytes(sha1.serverFinal))))
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("generates a fresh random nonce by default", () => {
    const first = text(expectRight(Scram.make({ hash: "SHA-256", username: "user", password: "pencil" })).initial())
    const second = text(expectRight(Scram.make({ hash: "SHA-256", username: "user", password: "pencil" })).initial())
    assert.match(first!, /^n,,n=user,r=[A-Za-z0-9+/]{24}$/)
    assert.notStrictEqual(first, second)
  })

  it("rejects a wrong server signature, and complete() then fails", async () => {
    const session = await afterClientFinal()
    const reason = expectLeft(await run(session.respond(bytes("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="))))
    assert.include(reason, "server signature mismatch")
    expectLeft(session.complete())
    expectLeft(await run(session.respond(bytes(sha1.serverFinal))))
  })

  it("rejects a server signature that is not base64 or has the wrong length", async () => {
    expectLeft(await run((await afterClientFinal()).respond(bytes("v=not base64!"))))
    expectLeft(await run((await afterClientFinal()).respond(bytes("v=rmF9pqV8S7suAoZWja4dJRkF"))))
  })

  it("complete() fails after a 235 without v=", async () => {
    const reason = expectLeft((await afterClientFinal()).complete())
    assert.include(reason, "server signature")
  })

  it("reports a server error (e=) with its value", async () => {
    const session = await afterClientFinal()
    assert.include(expectLeft(await run(session.respond(bytes("e=invalid-proof")))), "invalid-proof")
    expectLeft(session.complete())
  })

  it("accepts extensions after the server signature", async () => {
    const session = await afterClientFinal()
    expectRight(await run(session.respond(bytes(`${sha1.serverFinal},x=ext`))))
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("rejects a server nonce that does not extend the client nonce", async () => {
    const session = sha1Session()
    session.initial()
    expectLeft(
      await run(session.respond(bytes("r=fyko+d2lbbFgONRv9qkxdawX3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")))
    )
    expectLeft(session.complete())
    const same = sha1Session()
    same.initial()
    expectLeft(await run(same.respond(bytes(`r=${sha1.nonce},s=QSXCR+Q6sek8bf92,i=4096`))))
  })

  it("rejects an iteration count below the minimum, above the maximum or malformed", async () => {
    const serverFirst = (i: string) => bytes(`r=${sha1.nonce}abc,s=QSXCR+Q6sek8bf92,i=${i}`)
    const respond = (i: string, options: Partial<Scram.Options> = {}) => {
      const session = sha1Session(options)
      session.initial()
      return run(session.respond(serverFirst(i)))
    }
    assert.include(expectLeft(await respond("4095")), "4095")
    expectLeft(await respond("0"))
    expectLeft(await respond("-1"))
    expectLeft(await respond("04096"))
    expectLeft(await respond("4096x"))
    expectLeft(await respond("99999999999"))
    expectLeft(await respond("2000000"))
    expectRight(await respond("1024", { minIterations: 1024 }))
    expectLeft(await respond("8192", { maxIterations: 5000 }))
  })

  it("rejects malformed server-first messages", async () => {
    const cases = [
      "garbage",
      "",
      `m=required,r=${sha1.nonce}abc,s=QSXCR+Q6sek8bf92,i=4096`,
      `r=${sha1.nonce}abc,s=not base64!,i=4096`,
      `r=${sha1.nonce}abc,s=,i=4096`,
      `r=${sha1.nonce}abc,i=4096,s=QSXCR+Q6sek8bf92`,
      `r=${sha1.nonce}abc,s=QSXCR+Q6sek8bf92`,
      "e=other-error"
    ]
    for (const serverFirst of cases) {
      const session = sha1Session()
      session.initial()
      expectLeft(await run(session.respond(bytes(serverFirst))))
    }
    const session = sha1Session()
    session.initial()
    assert.include(expectLeft(await run(session.respond(bytes(cases[2])))), "mandatory extension")
  })

  it("accepts extensions after the iteration count", async () => {
    const session = sha1Session()
    session.initial()
    const response = text(expectRight(await run(session.respond(bytes(`${sha1.serverFirst},x=ext`)))))
    assert.match(response!, /^c=biws,r=fyko\+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=/)
    assert.notStrictEqual(response, sha1.clientFinal)
  })

  it("rejects a challenge that is not UTF-8, or one out of turn", async () => {
    const session = sha1Session()
    session.initial()
    expectLeft(await run(session.respond(Uint8Array.of(0x72, 0x3d, 0xff))))
    const early = sha1Session()
    expectLeft(await run(early.respond(bytes(sha1.serverFirst))))
  })

  it("SASLprep: a soft hyphen in the password is mapped to nothing", async () => {
    const session = sha1Session({ password: "pen\u00ADcil" })
    session.initial()
    assert.strictEqual(text(expectRight(await run(session.respond(bytes(sha1.serverFirst))))), sha1.clientFinal)
    expectRight(await run(session.respond(bytes(sha1.serverFinal))))
  })

  it("SASLprep: a prohibited character in the password is a Left from make", () => {
    const reason = expectLeft(Scram.make({ hash: "SHA-256", username: "user", password: "bell\u0007pw" }))
    assert.include(reason, "SASLprep")
  })

  it("prepares and escapes the username", () => {
    const session = sha1Session({ username: "u=s,er\u00A0x" })
    assert.strictEqual(text(session.initial()), `n,,n=u=3Ds=2Cer x,r=${sha1.nonce}`)
    expectLeft(Scram.make({ hash: "SHA-1", username: "bad\u0007user", password: "pencil" }))
  })

  it("rejects an invalid client nonce", () => {
    expectLeft(Scram.make({ hash: "SHA-1", username: "user", password: "pencil", nonce: "a,b" }))
    expectLeft(Scram.make({ hash: "SHA-1", username: "user", password: "pencil", nonce: "" }))
  })

  it("sends an authzid in the GS2 header and in c=", async () => {
    const session = sha1Session({ authzid: "ad=min" })
    assert.strictEqual(text(session.initial()), `n,a=ad=3Dmin,n=user,r=${sha1.nonce}`)
    const clientFinal = text(expectRight(await run(session.respond(bytes(sha1.serverFirst)))))
    assert.isTrue(clientFinal!.startsWith(`c=${Buffer.from("n,a=ad=3Dmin,").toString("base64")},r=`))
  })

  it("a step changes nothing until its Effect runs", async () => {
    const session = sha1Session()
    session.initial()
    session.respond(bytes("garbage")) // never run: the session is not failed
    assert.strictEqual(text(expectRight(await run(session.respond(bytes(sha1.serverFirst))))), sha1.clientFinal)
  })

  it("a Web Crypto rejection is a failure with the error's name only, and complete() then fails", async () => {
    const spy = vi.spyOn(globalThis.crypto.subtle, "deriveBits").mockRejectedValueOnce(
      new DOMException("pencil is not a good password", "OperationError")
    )
    try {
      const session = sha1Session()
      session.initial()
      const reason = expectLeft(await run(session.respond(bytes(sha1.serverFirst))))
      assert.strictEqual(reason, "SCRAM-SHA-1: Web Crypto could not compute the proof (OperationError)")
      expectLeft(session.complete())
      expectLeft(await run(session.respond(bytes(sha1.serverFinal))))
    } finally {
      spy.mockRestore()
    }
  })

  it("no crypto.subtle is a failure, not a defect", async () => {
    const session = sha1Session()
    session.initial()
    vi.stubGlobal("crypto", undefined)
    try {
      assert.include(expectLeft(await run(session.respond(bytes(sha1.serverFirst)))), "(TypeError)")
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it("no Left reason contains a password", () => assertNoSecretInReasons())
})
