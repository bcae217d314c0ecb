import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import * as OAuthBearer from "../../src/internal/sasl/oauthBearer.js"
import * as XOAuth2 from "../../src/internal/sasl/xoauth2.js"
import { assertNoSecretInReasons, bytes, expectLeft, expectRight, fromBase64, text } from "./_helpers.js"

const rfcToken = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
const xoauth2 = (options: XOAuth2.Options) => expectRight(XOAuth2.make(options))
const oauthBearer = (options: OAuthBearer.Options) => expectRight(OAuthBearer.make(options))

describe("XOAUTH2", () => {
  it("matches Google's documented initial response", () => {
    assert.strictEqual(XOAuth2.mechanism, "XOAUTH2")
    const session = xoauth2({
      username: "someuser@example.com",
      token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    })
    assert.deepStrictEqual(
      session.initial(),
      fromBase64(
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
      )
    )
    assert.isTrue(Either.isRight(session.complete()))
    assert.isUndefined(session.serverError())
  })

  it("records the error JSON and answers with an empty response", () => {
    const session = xoauth2({ username: "someuser@example.com", token: "tok-9f8e7d" })
    session.initial()
    const raw = "{\"status\":\"401\",\"schemes\":\"Bearer\",\"scope\":\"https://mail.google.com/\"}"
    assert.deepStrictEqual(expectRight(session.respond(bytes(raw))), new Uint8Array(0))
    assert.deepStrictEqual(session.serverError(), {
      raw,
      status: "401",
      schemes: "Bearer",
      scope: "https://mail.google.com/"
    })
    expectLeft(session.respond(bytes(raw)))
  })

  it("keeps a challenge that is not JSON as raw text", () => {
    const session = xoauth2({ username: "u", token: "tok-9f8e7d" })
    session.initial()
    expectRight(session.respond(bytes("not json")))
    assert.deepStrictEqual(session.serverError(), { raw: "not json" })
  })

  it("refuses ^A (the field separator) and other control characters in the user name and the token", () => {
    const cases: ReadonlyArray<readonly [XOAuth2.Options, string]> = [
      [
        { username: "u\u0001auth=Bearer EVIL", token: "tok-9f8e7d" },
        "user name contains ^A (U+0001), the XOAUTH2 field separator"
      ],
      [{ username: "u\r\n", token: "tok-9f8e7d" }, "user name contains CR (U+000D), a control character"],
      [{ username: "u", token: "tok-9f8e7d\u0001auth=Bearer EVIL" }, "token contains ^A"],
      [{ username: "u", token: "tok-9f8e7d\n" }, "token contains LF"]
    ]
    for (const [options, expected] of cases) {
      const reason = expectLeft(XOAuth2.make(options))
      assert.include(reason, `XOAUTH2: the ${expected}`)
      assert.notInclude(reason, "EVIL")
    }
    assert.strictEqual(XOAuth2.validateIdentity({ username: "u\u0001" })?.startsWith("XOAUTH2: the user name"), true)
    assert.isUndefined(XOAuth2.validateIdentity({ username: "someuser@example.com" }))
  })

  it("answers an empty first challenge with the initial response", () => {
    const session = xoauth2({ username: "u", token: "tok-9f8e7d" })
    assert.strictEqual(
      text(expectRight(session.respond(new Uint8Array(0)))),
      "user=u\u0001auth=Bearer tok-9f8e7d\u0001\u0001"
    )
    assert.isUndefined(session.serverError())
  })
})

describe("OAUTHBEARER (RFC 7628)", () => {
  it("matches the §4.1 initial response (IMAP, port 143)", () => {
    assert.strictEqual(OAuthBearer.mechanism, "OAUTHBEARER")
    const session = oauthBearer({
      username: "user@example.com",
      token: rfcToken,
      host: "server.example.com",
      port: 143
    })
    assert.deepStrictEqual(
      session.initial(),
      fromBase64(
        "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
      )
    )
    assert.isTrue(Either.isRight(session.complete()))
  })

  it("matches the §4.4 initial response (SMTP, port 587)", () => {
    const session = oauthBearer({
      username: "user@example.com",
      token: rfcToken,
      host: "server.example.com",
      port: 587
    })
    assert.deepStrictEqual(
      session.initial(),
      fromBase64(
        "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
      )
    )
  })

  it("escapes the user and omits host and port when not given", () => {
    const session = oauthBearer({ username: "a,b=c@example.com", token: "tok-9f8e7d" })
    assert.strictEqual(text(session.initial()), "n,a=a=2Cb=3Dc@example.com,\u0001auth=Bearer tok-9f8e7d\u0001\u0001")
  })

  it("refuses ^A and control characters in the user name, the host and the token; escapes , and = in the user", () => {
    const cases: ReadonlyArray<readonly [OAuthBearer.Options, string]> = [
      [
        { username: "u\u0001auth=Bearer EVIL", token: "tok-9f8e7d" },
        "user name contains ^A (U+0001), the OAUTHBEARER field separator"
      ],
      [{ username: "u\u0000", token: "tok-9f8e7d" }, "user name contains NUL"],
      [{ username: "u", token: "tok-9f8e7d", host: "mx\u0001auth=Bearer EVIL" }, "host contains ^A"],
      [{ username: "u", token: "tok-9f8e7d\u0001auth=Bearer EVIL" }, "token contains ^A"]
    ]
    for (const [options, expected] of cases) {
      const reason = expectLeft(OAuthBearer.make(options))
      assert.include(reason, `OAUTHBEARER: the ${expected}`)
      assert.notInclude(reason, "EVIL")
    }
    assert.isDefined(OAuthBearer.validateIdentity({ username: "u", host: "mx\r\n" }))
    assert.strictEqual(
      text(oauthBearer({ username: "u,a=EVIL", token: "tok-9f8e7d" }).initial()),
      "n,a=u=2Ca=3DEVIL,\u0001auth=Bearer tok-9f8e7d\u0001\u0001"
    )
  })

  it("records the §4.3 error JSON and answers with a single 0x01", () => {
    const session = oauthBearer({ username: "user@example.com", token: rfcToken, host: "server.example.com" })
    session.initial()
    const challenge = fromBase64(
      "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0="
    )
    assert.deepStrictEqual(expectRight(session.respond(challenge)), Uint8Array.of(1))
    assert.deepStrictEqual(session.serverError(), {
      raw:
        "{\"status\":\"invalid_token\",\"scope\":\"example_scope\",\"openid-configuration\":\"https://example.com/.well-known/openid-configuration\"}",
      status: "invalid_token",
      scope: "example_scope"
    })
    expectLeft(session.respond(challenge))
  })

  it("records the §4.4 SMTP error JSON", () => {
    const session = oauthBearer({ username: "user@example.com", token: rfcToken, port: 587 })
    session.initial()
    const challenge = fromBase64(
      "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmV4YW1wbGUuY29tLyJ9"
    )
    assert.deepStrictEqual(expectRight(session.respond(challenge)), Uint8Array.of(1))
    const error = session.serverError()
    assert.strictEqual(error?.status, "invalid_token")
    assert.strictEqual(error?.schemes, "bearer")
    assert.strictEqual(error?.scope, "https://mail.example.com/")
  })

  it("no Left reason contains a token", () => assertNoSecretInReasons())
})
