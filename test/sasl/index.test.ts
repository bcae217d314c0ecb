import { assert, describe, it } from "@effect/vitest"
import * as Sasl from "../../src/internal/sasl/index.js"
import { assertNoSecretInReasons, bytes, expectLeft, expectRight, text } from "./_helpers.js"

describe("Sasl.choose", () => {
  it("orders the advertised mechanisms by preference, case-insensitively, without duplicates", () => {
    assert.deepStrictEqual(Sasl.preferenceOrder, ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"])
    assert.deepStrictEqual(
      Sasl.choose(["login", "PLAIN", "XOAUTH2", "cram-md5", "SCRAM-SHA-1", "PLAIN", "GSSAPI"]),
      ["SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"]
    )
    assert.deepStrictEqual(Sasl.choose(["GSSAPI", "XOAUTH2"]), [])
    assert.deepStrictEqual(Sasl.choose([]), [])
  })

  it("takes a custom order", () => {
    assert.deepStrictEqual(
      Sasl.choose(["PLAIN", "XOAUTH2", "OAUTHBEARER"], ["OAUTHBEARER", "XOAUTH2"]),
      ["OAUTHBEARER", "XOAUTH2"]
    )
    assert.deepStrictEqual(Sasl.choose(["PLAIN", "LOGIN"], ["LOGIN", "PLAIN"]), ["LOGIN", "PLAIN"])
  })
})

describe("Sasl.forPassword", () => {
  const credentials = { username: "user", password: "pencil" }

  it("starts each password mechanism by name", () => {
    const plain = expectRight(Sasl.forPassword("plain", credentials))
    assert.strictEqual(text(plain.initial()), "\u0000user\u0000pencil")
    const login = expectRight(Sasl.forPassword("LOGIN", credentials))
    assert.strictEqual(text(login.initial()), "user")
    assert.strictEqual(text(expectRight(login.respond(bytes("Password:")))), "pencil")
    const cram = expectRight(Sasl.forPassword("CRAM-MD5", credentials))
    assert.isUndefined(cram.initial())
    assert.match(text(expectRight(cram.respond(bytes("<1.2@x>"))))!, /^user [0-9a-f]{32}$/)
    for (const name of ["SCRAM-SHA-1", "scram-sha-256"]) {
      const scram = expectRight(Sasl.forPassword(name, credentials))
      assert.match(text(scram.initial())!, /^n,,n=user,r=/)
    }
  })

  it("passes the authzid to PLAIN and SCRAM, and refuses it for LOGIN and CRAM-MD5", () => {
    const withAuthzid = { ...credentials, authzid: "admin" }
    assert.strictEqual(
      text(expectRight(Sasl.forPassword("PLAIN", withAuthzid)).initial()),
      "admin\u0000user\u0000pencil"
    )
    assert.match(text(expectRight(Sasl.forPassword("SCRAM-SHA-256", withAuthzid)).initial())!, /^n,a=admin,n=user,/)
    expectLeft(Sasl.forPassword("LOGIN", withAuthzid))
    expectLeft(Sasl.forPassword("CRAM-MD5", withAuthzid))
  })

  it("fails for other mechanisms and for passwords SASLprep rejects", () => {
    expectLeft(Sasl.forPassword("XOAUTH2", credentials))
    expectLeft(Sasl.forPassword("GSSAPI", credentials))
    expectLeft(Sasl.forPassword("SCRAM-SHA-1", { username: "user", password: "bell\u0007pw" }))
    assert.strictEqual(
      text(expectRight(Sasl.forPassword("PLAIN", { username: "user", password: "bell\u0007pw" })).initial()),
      "\u0000user\u0000bell\u0007pw"
    )
  })

  it("refuses credentials a mechanism cannot carry, naming the field, never the value", () => {
    const nulUser = { username: "user\u0000admin", password: "pencil" }
    for (const name of ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"]) {
      const reason = expectLeft(Sasl.forPassword(name, nulUser))
      assert.include(reason, `${name}: the user name`)
      assert.notInclude(reason, "admin")
    }
    assert.include(expectLeft(Sasl.forPassword("SCRAM-SHA-1", { ...credentials, authzid: "ad\u0000min" })), "authzid")
    assert.include(expectLeft(Sasl.forPassword("CRAM-MD5", { username: "a b", password: "pencil" })), "space")
    expectRight(Sasl.forPassword("PLAIN", { username: "a b", password: "pencil" }))
  })

  it("isSafeInClear: only the challenge-response mechanisms (SCRAM-*, CRAM-MD5)", () => {
    for (const name of ["SCRAM-SHA-1", "scram-sha-256", "SCRAM-SHA-512-PLUS", "CRAM-MD5", "cram-md5"]) {
      assert.isTrue(Sasl.isSafeInClear(name), name)
    }
    for (const name of ["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "X-CUSTOM", "GSSAPI", "DIGEST-MD5", "SCRAM"]) {
      assert.isFalse(Sasl.isSafeInClear(name), name)
    }
  })

  it("re-exports the mechanism modules", () => {
    assert.deepStrictEqual(
      [
        Sasl.Plain.mechanism,
        Sasl.Login.mechanism,
        Sasl.CramMd5.mechanism,
        Sasl.XOAuth2.mechanism,
        Sasl.OAuthBearer.mechanism,
        Sasl.Scram.mechanisms["SHA-256"]
      ],
      ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256"]
    )
  })

  it("no Left reason contains a password", () => assertNoSecretInReasons())
})
