import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as CramMd5 from "../../src/internal/sasl/cramMd5.js"
import * as Login from "../../src/internal/sasl/login.js"
import * as Plain from "../../src/internal/sasl/plain.js"
import { assertNoSecretInReasons, bytes, expectLeft, expectRight, text } from "./_helpers.js"

const plain = (options: Plain.Options) => expectRight(Plain.make(options))
const login = (options: Login.Options) => expectRight(Login.make(options))
const cramMd5 = (options: CramMd5.Options) => expectRight(CramMd5.make(options))

describe("PLAIN (RFC 4616)", () => {
  it("initial response is authzid NUL username NUL password", () => {
    assert.strictEqual(Plain.mechanism, "PLAIN")
    const session = plain({ username: "tim", password: "tanstaaftanstaaf" })
    assert.deepStrictEqual(session.initial(), bytes("\u0000tim\u0000tanstaaftanstaaf"))
    assert.isTrue(Either.isRight(session.complete()))
    assert.isUndefined(session.serverError())
  })

  it("carries an authzid and encodes UTF-8", () => {
    const session = plain({ username: "jürgen", password: "s3cret-pw", authzid: "admin" })
    const initial = session.initial()
    assert.deepStrictEqual(initial, bytes("admin\u0000jürgen\u0000s3cret-pw"))
    assert.strictEqual(initial?.length, "admin".length + 1 + 7 + 1 + 9)
  })

  it("answers an empty first challenge with the initial response (AUTH sent without one)", () => {
    const session = plain({ username: "tim", password: "s3cret-pw" })
    assert.strictEqual(text(expectRight(session.respond(new Uint8Array(0)))), "\u0000tim\u0000s3cret-pw")
    expectLeft(session.respond(new Uint8Array(0)))
  })

  it("aborts on a challenge after the initial response, empty or not", () => {
    for (const challenge of ["what?", ""]) {
      const session = plain({ username: "tim", password: "s3cret-pw" })
      session.initial()
      assert.include(expectLeft(session.respond(bytes(challenge))), "after the initial response")
    }
  })

  it("refuses NUL in any field and control characters in the user name and authzid; names the field only", () => {
    const cases: ReadonlyArray<readonly [Plain.Options, string]> = [
      [{ username: "tim\u0000admin", password: "s3cret-pw" }, "user name"],
      [{ username: "tim", password: "s3cret-pw", authzid: "admin\u0000x" }, "authzid"],
      [{ username: "tim", password: "s3cret-pw\u0000x" }, "password"],
      [{ username: "tim\r\nx", password: "s3cret-pw" }, "user name"],
      [{ username: "tim", password: "s3cret-pw", authzid: "ad\tmin" }, "authzid"]
    ]
    for (const [options, field] of cases) {
      const reason = expectLeft(Plain.make(options))
      assert.include(reason, `PLAIN: the ${field} contains`)
      assert.notInclude(reason, "tim")
    }
    assert.include(expectLeft(Plain.make(cases[0][0])), "NUL (U+0000), the PLAIN field separator")
    // a BEL in the password is not PLAIN's business (base64 carries it)
    expectRight(Plain.make({ username: "tim", password: "bell\u0007pw" }))
  })
})

describe("LOGIN", () => {
  it("the initial response is the user name; then Password: gets the password", () => {
    assert.strictEqual(Login.mechanism, "LOGIN")
    const session = login({ username: "tim", password: "s3cret-pw" })
    assert.strictEqual(text(session.initial()), "tim")
    assert.strictEqual(text(expectRight(session.respond(bytes("Password:")))), "s3cret-pw")
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("answers the prompt asked, not the position: Password: first gets the password", () => {
    const session = login({ username: "tim", password: "s3cret-pw" })
    assert.strictEqual(text(expectRight(session.respond(bytes("Password:")))), "s3cret-pw")
    assert.strictEqual(text(expectRight(session.respond(bytes("Username:")))), "tim")
    expectLeft(session.respond(bytes("Username:")))
  })

  it("recognises the usual spellings, case-insensitively, and prompts base64-encoded twice", () => {
    for (
      const user of [
        "Username:",
        "username",
        "User Name",
        "USER NAME:",
        "user",
        "VXNlcm5hbWU6",
        " Username: ",
        "User Name\u0000"
      ]
    ) {
      assert.strictEqual(Login.prompt(bytes(user)), "user", user)
    }
    for (const password of ["Password:", "password", "PASSWORD:", "UGFzc3dvcmQ6", "Password\u0000"]) {
      assert.strictEqual(Login.prompt(bytes(password)), "password", password)
    }
    for (const other of ["", "Who are you?", "Passport:", "Usernames", "not base64!"]) {
      assert.isUndefined(Login.prompt(bytes(other)), other)
    }
  })

  it("empty or unrecognised prompts go by position: the user name, then the password (smtplib)", () => {
    const session = login({ username: "tim", password: "s3cret-pw" })
    assert.strictEqual(text(expectRight(session.respond(new Uint8Array(0)))), "tim")
    assert.strictEqual(text(expectRight(session.respond(bytes("Secret?")))), "s3cret-pw")
    const afterInitial = login({ username: "tim", password: "s3cret-pw" })
    afterInitial.initial()
    assert.strictEqual(text(expectRight(afterInitial.respond(bytes("Secret?")))), "s3cret-pw")
  })

  it("a server that ignores the initial response may ask for the user name once more", () => {
    const session = login({ username: "tim", password: "s3cret-pw" })
    session.initial()
    assert.strictEqual(text(expectRight(session.respond(bytes("Username:")))), "tim")
    expectLeft(session.respond(bytes("Username:")))
  })

  it("aborts on a challenge after the password: the password is never sent twice", () => {
    for (const prompt of ["Password:", "Username:", "Again:", ""]) {
      const session = login({ username: "tim", password: "s3cret-pw" })
      expectRight(session.respond(bytes("Username:")))
      expectRight(session.respond(bytes("Password:")))
      assert.include(expectLeft(session.respond(bytes(prompt))), "after the password", prompt)
    }
  })

  it("encodes UTF-8", () => {
    const session = login({ username: "jürgen", password: "pässwörd" })
    assert.deepStrictEqual(expectRight(session.respond(new Uint8Array(0))), bytes("jürgen"))
    assert.deepStrictEqual(expectRight(session.respond(new Uint8Array(0))), bytes("pässwörd"))
  })

  it("refuses control characters in the user name and NUL in the password", () => {
    assert.include(
      expectLeft(Login.make({ username: "tim\r\nRSET", password: "s3cret-pw" })),
      "LOGIN: the user name contains CR"
    )
    assert.include(
      expectLeft(Login.make({ username: "tim", password: "s3cret-pw\u0000" })),
      "LOGIN: the password contains NUL"
    )
  })
})

describe("CRAM-MD5 (RFC 2195)", () => {
  it("matches the RFC 2195 example", () => {
    assert.strictEqual(CramMd5.mechanism, "CRAM-MD5")
    const session = cramMd5({ username: "tim", password: "tanstaaftanstaaf" })
    assert.isUndefined(session.initial())
    const response = session.respond(bytes("<1896.697170952@postoffice.reston.mci.net>"))
    assert.strictEqual(text(expectRight(response)), "tim b913a602c7eda7a495b4e6e7334d3890")
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("refuses a space or a control character in the user name, NUL in the password", () => {
    assert.include(
      expectLeft(CramMd5.make({ username: "tim smith", password: "tanstaaftanstaaf" })),
      "CRAM-MD5: the user name contains a space (U+0020), the CRAM-MD5 field separator"
    )
    assert.include(expectLeft(CramMd5.make({ username: "tim\n", password: "tanstaaftanstaaf" })), "the user name")
    assert.include(expectLeft(CramMd5.make({ username: "tim", password: "tanstaaf\u0000" })), "the password")
  })

  it("aborts on an empty challenge and on a second challenge", () => {
    const session = cramMd5({ username: "tim", password: "tanstaaftanstaaf" })
    expectLeft(session.respond(new Uint8Array(0)))
    expectRight(session.respond(bytes("<1.2@x>")))
    expectLeft(session.respond(bytes("<1.2@x>")))
  })

  it("no Left reason contains a password", () => assertNoSecretInReasons())
})
