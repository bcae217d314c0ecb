import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as CramMd5 from "../../src/internal/sasl/cramMd5.js"
import * as Login from "../../src/internal/sasl/login.js"
import * as Plain from "../../src/internal/sasl/plain.js"
import { assertNoSecretInReasons, bytes, expectLeft, expectRight, text } from "./_helpers.js"

describe("PLAIN (RFC 4616)", () => {
  it("initial response is authzid NUL username NUL password", () => {
    assert.strictEqual(Plain.mechanism, "PLAIN")
    const session = Plain.make({ username: "tim", password: "tanstaaftanstaaf" })
    assert.deepStrictEqual(session.initial(), bytes("\u0000tim\u0000tanstaaftanstaaf"))
    assert.isTrue(Either.isRight(session.complete()))
    assert.isUndefined(session.serverError())
  })

  it("carries an authzid and encodes UTF-8", () => {
    const session = Plain.make({ username: "jürgen", password: "s3cret-pw", authzid: "admin" })
    const initial = session.initial()
    assert.deepStrictEqual(initial, bytes("admin\u0000jürgen\u0000s3cret-pw"))
    assert.strictEqual(initial?.length, "admin".length + 1 + 7 + 1 + 9)
  })

  it("answers an empty first challenge with the initial response (AUTH sent without one)", () => {
    const session = Plain.make({ username: "tim", password: "s3cret-pw" })
    assert.strictEqual(text(expectRight(session.respond(new Uint8Array(0)))), "\u0000tim\u0000s3cret-pw")
    expectLeft(session.respond(new Uint8Array(0)))
  })

  it("aborts on a challenge after the initial response", () => {
    const session = Plain.make({ username: "tim", password: "s3cret-pw" })
    session.initial()
    expectLeft(session.respond(bytes("what?")))
  })
})

describe("LOGIN", () => {
  it("answers by call count, whatever the prompts say", () => {
    assert.strictEqual(Login.mechanism, "LOGIN")
    const session = Login.make({ username: "tim", password: "s3cret-pw" })
    assert.isUndefined(session.initial())
    assert.strictEqual(text(expectRight(session.respond(bytes("Password:")))), "tim")
    assert.strictEqual(text(expectRight(session.respond(bytes("Username:")))), "s3cret-pw")
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("aborts on a third challenge", () => {
    const session = Login.make({ username: "tim", password: "s3cret-pw" })
    expectRight(session.respond(bytes("Username:")))
    expectRight(session.respond(bytes("Password:")))
    expectLeft(session.respond(bytes("Password:")))
  })

  it("encodes UTF-8", () => {
    const session = Login.make({ username: "jürgen", password: "pässwörd" })
    assert.deepStrictEqual(expectRight(session.respond(new Uint8Array(0))), bytes("jürgen"))
    assert.deepStrictEqual(expectRight(session.respond(new Uint8Array(0))), bytes("pässwörd"))
  })
})

describe("CRAM-MD5 (RFC 2195)", () => {
  it("matches the RFC 2195 example", () => {
    assert.strictEqual(CramMd5.mechanism, "CRAM-MD5")
    const session = CramMd5.make({ username: "tim", password: "tanstaaftanstaaf" })
    assert.isUndefined(session.initial())
    const response = session.respond(bytes("<1896.697170952@postoffice.reston.mci.net>"))
    assert.strictEqual(text(expectRight(response)), "tim b913a602c7eda7a495b4e6e7334d3890")
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("aborts on an empty challenge and on a second challenge", () => {
    const session = CramMd5.make({ username: "tim", password: "tanstaaftanstaaf" })
    expectLeft(session.respond(new Uint8Array(0)))
    expectRight(session.respond(bytes("<1.2@x>")))
    expectLeft(session.respond(bytes("<1.2@x>")))
  })

  it("no Left reason contains a password", () => assertNoSecretInReasons())
})
