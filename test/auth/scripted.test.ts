import { assert, describe, it } from "@effect/vitest"
import { Data, Effect, Option, Redacted, type Scope } from "effect"
import { SmtpClient, SmtpError, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import type { ScriptedTransport } from "effect-smtp/testing"
import {
  authError,
  b64,
  EHLO,
  followed,
  followedToCancel,
  invalidInput,
  left,
  notSupported,
  oauthBearer,
  oauthErrorJson,
  QUIT,
  rfc2195,
  right,
  scripted,
  tokenProvider,
  unb64,
  xoauth2
} from "./helpers.js"
import * as ScramServer from "./scramServer.js"

const password = Redacted.make("hunter2")
const plainIr = b64("\u0000user\u0000hunter2")
const base64Line = /^[A-Za-z0-9+/]+={0,2}$/

describe("login: the plaintext rule (Go's net/smtp)", () => {
  it.effect("PLAIN/LOGIN in clear to a non-loopback host: SmtpInvalidInput saying how to opt in, nothing after EHLO", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [EHLO("PLAIN LOGIN"), QUIT],
        (smtp, server) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.login("user", password))
            assert.strictEqual(server.written(0), "EHLO client.test\r\n", "nothing was written after EHLO")
            assert.isFalse(yield* smtp.isAuthenticated)
            return error
          })
      )
      followed(record)
      const error = invalidInput(right(result))
      assert.include(error.message, "allowInsecure: true")
      assert.include(error.message, "starttls")
      assert.notInclude(error.message, "hunter2")
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.effect("opt-in with allowInsecure: PLAIN with its initial response (RFC 4954's example)", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("PLAIN LOGIN"),
          { expect: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const reply = yield* smtp.login("test", Redacted.make("1234"), { authzid: "test", allowInsecure: true })
            assert.strictEqual(reply.code, 235)
            assert.isTrue(yield* smtp.isAuthenticated)
          })
      )
      right(result)
      followed(record)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=\r\nQUIT\r\n")
    }))

  it.effect("over security \"starttls\" PLAIN is used without opt-in", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO(undefined, "STARTTLS"),
          { expect: "STARTTLS", reply: "220 2.0.0 Ready to start TLS", tls: true },
          EHLO("PLAIN LOGIN"),
          { expect: `AUTH PLAIN ${plainIr}`, reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password),
        { security: "starttls" }
      )
      assert.strictEqual(right(result).code, 235)
      followed(record)
      assert.isTrue(record.secure())
      assert.strictEqual(
        written,
        `EHLO client.test\r\nSTARTTLS\r\nEHLO client.test\r\nAUTH PLAIN ${plainIr}\r\nQUIT\r\n`
      )
    }))

  it.effect("over implicit TLS LOGIN is used without opt-in", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: `AUTH LOGIN ${b64("user")}`, reply: "334 UGFzc3dvcmQ6" },
          { expect: b64("hunter2"), reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password),
        { security: "tls" }
      )
      right(result)
      followed(record)
    }))

  it.effect("CRAM-MD5 is allowed in clear (RFC 2195's challenge and response)", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("PLAIN LOGIN CRAM-MD5"),
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: b64(rfc2195.response), reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login(rfc2195.user, Redacted.make(rfc2195.password))
      )
      right(result)
      followed(record)
      assert.strictEqual(
        written,
        "EHLO client.test\r\nAUTH CRAM-MD5\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\nQUIT\r\n"
      )
    }))

  it.effect("SCRAM is allowed in clear; PLAIN is still skipped after it fails, and the error is SCRAM's", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("PLAIN SCRAM-SHA-256"),
          {
            expect: /^AUTH SCRAM-SHA-256 [A-Za-z0-9+/]+={0,2}$/,
            reply: "535 5.7.8 Authentication credentials invalid"
          },
          QUIT
        ],
        (smtp) => smtp.login("user", password)
      )
      followed(record)
      const error = authError(left(result))
      assert.strictEqual(error.code, 535)
      assert.deepStrictEqual(error.mechanisms, ["SCRAM-SHA-256"])
      const clientFirst = unb64(record.units()[1].split(" ")[2])
      assert.match(clientFirst, /^n,,n=user,r=[\x21-\x2b\x2d-\x7e]{24}$/)
      assert.notInclude(written, "AUTH PLAIN")
    }))

  it.effect("no mechanism but PLAIN/LOGIN and a server that also offers CRAM-MD5: CRAM-MD5 only", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN PLAIN CRAM-MD5"),
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: base64Line, reply: "535 5.7.8 no" },
          QUIT
        ],
        (smtp) => smtp.login("user", password)
      )
      followed(record)
      assert.deepStrictEqual(authError(left(result)).mechanisms, ["CRAM-MD5"])
    }))
})

describe("login: the exchanges, byte for byte", () => {
  it.effect("PLAIN with initialResponseOk false: AUTH PLAIN, an empty 334, then the base64 line", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("PLAIN"),
          { expect: "AUTH PLAIN", reply: "334 " },
          { expect: plainIr, reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { initialResponseOk: false, allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(written, `EHLO client.test\r\nAUTH PLAIN\r\n${plainIr}\r\nQUIT\r\n`)
    }))

  it.effect("LOGIN with initialResponseOk false: two 334 prompts, the user then the password", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN", reply: "334 VXNlcm5hbWU6" },
          { expect: "dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { initialResponseOk: false, allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH LOGIN\r\ndXNlcg==\r\naHVudGVyMg==\r\nQUIT\r\n")
    }))

  it.effect("LOGIN: a 334 after the password is answered with * and fails", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: `334 ${b64("Again:")}` },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      followedToCancel(record)
      const error = authError(left(result))
      assert.strictEqual(error.code, 501)
      assert.include(error.detail ?? "", "after the password")
    }))

  it.effect("501 to the AUTH line: SmtpAuthenticationError with the code, enhanced code and text", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("PLAIN"),
          { expect: `AUTH PLAIN ${plainIr}`, reply: "501 5.5.2 Syntax error in parameters" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      followed(record)
      const error = authError(left(result))
      assert.strictEqual(error.code, 501)
      assert.strictEqual(error.enhancedCode, "5.5.2")
      assert.strictEqual(error.text, "5.5.2 Syntax error in parameters")
      assert.strictEqual(error.command, "AUTH")
      assert.deepStrictEqual(error.mechanisms, ["PLAIN"])
      assert.include(error.message, "501")
      assert.include(error.message, "PLAIN")
    }))

  it.effect("a challenge that is not base64 is answered with * and fails", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("CRAM-MD5"),
          { expect: "AUTH CRAM-MD5", reply: "334 this is not base64!" },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          QUIT
        ],
        (smtp) => smtp.login("user", password)
      )
      followed(record)
      const error = authError(left(result))
      assert.strictEqual(error.code, 501)
      assert.include(error.detail ?? "", "base64")
      assert.strictEqual(written, "EHLO client.test\r\nAUTH CRAM-MD5\r\n*\r\nQUIT\r\n")
    }))

  it.effect("503 (already authenticated) counts as success, as in smtplib", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("PLAIN"),
          { expect: `AUTH PLAIN ${plainIr}`, reply: "503 5.5.1 Error: already authenticated" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const reply = yield* smtp.login("user", password, { allowInsecure: true })
            assert.strictEqual(reply.code, 503)
            assert.isTrue(yield* smtp.isAuthenticated)
          })
      )
      right(result)
      followed(record)
    }))

  it.effect("a 421 during AUTH stops: no other mechanism is tried on the closed connection", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("PLAIN CRAM-MD5"),
          { expect: "AUTH CRAM-MD5", reply: "421 4.3.2 Shutting down", close: true }
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      followed(record)
      assert.strictEqual(authError(left(result)).code, 421)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH CRAM-MD5\r\n")
    }))
})

describe("login: preference order", () => {
  it.effect("smtplib's three: CRAM-MD5, PLAIN, LOGIN; the last 535 and every mechanism tried", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN PLAIN CRAM-MD5"),
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: base64Line, reply: "535 5.7.8 CRAM-MD5 refused" },
          { expect: `AUTH PLAIN ${plainIr}`, reply: "535 5.7.8 PLAIN refused" },
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "535 5.7.8 LOGIN refused" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.login("user", password, { allowInsecure: true }))
            assert.isFalse(yield* smtp.isAuthenticated)
            return error
          })
      )
      followed(record)
      const error = authError(right(result))
      assert.strictEqual(error.code, 535)
      assert.strictEqual(error.enhancedCode, "5.7.8")
      assert.strictEqual(error.text, "5.7.8 LOGIN refused")
      assert.deepStrictEqual(error.mechanisms, ["CRAM-MD5", "PLAIN", "LOGIN"])
      assert.strictEqual(
        written.split("\r\n").filter((l) => l.startsWith("AUTH")).join("|"),
        `AUTH CRAM-MD5|AUTH PLAIN ${plainIr}|AUTH LOGIN dXNlcg==`
      )
    }))

  it.effect("stops at the first success", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN PLAIN CRAM-MD5"),
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: base64Line, reply: "535 5.7.8 CRAM-MD5 refused" },
          { expect: `AUTH PLAIN ${plainIr}`, reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      assert.strictEqual(right(result).code, 235)
      followed(record)
    }))

  it.effect("SCRAM comes first when advertised: SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5, PLAIN, LOGIN", () =>
    Effect.gen(function*() {
      const refused = "535 5.7.8 no"
      const { record, result } = yield* scripted(
        [
          EHLO("login plain cram-md5 scram-sha-1 SCRAM-SHA-256"),
          { expect: /^AUTH SCRAM-SHA-256 [A-Za-z0-9+/]+={0,2}$/, reply: refused },
          { expect: /^AUTH SCRAM-SHA-1 [A-Za-z0-9+/]+={0,2}$/, reply: refused },
          { expect: "AUTH CRAM-MD5", reply: refused },
          { expect: `AUTH PLAIN ${plainIr}`, reply: refused },
          { expect: "AUTH LOGIN dXNlcg==", reply: refused },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      followed(record)
      assert.deepStrictEqual(authError(left(result)).mechanisms, [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "CRAM-MD5",
        "PLAIN",
        "LOGIN"
      ])
    }))

  it.effect("the order is configurable; mechanisms not advertised are skipped", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN PLAIN CRAM-MD5"),
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "535 5.7.8 LOGIN refused" },
          { expect: `AUTH PLAIN ${plainIr}`, reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) =>
          smtp.login("user", password, {
            mechanisms: ["SCRAM-SHA-1", "LOGIN", "XOAUTH2", "PLAIN"],
            allowInsecure: true
          })
      )
      right(result)
      followed(record)
    }))

  it.effect("an authzid skips the mechanisms that cannot carry it (CRAM-MD5, LOGIN) instead of failing", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN PLAIN CRAM-MD5"),
          { expect: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("test", Redacted.make("1234"), { authzid: "test", allowInsecure: true })
      )
      right(result)
      followed(record)
    }))

  it.effect("no AUTH advertised: SmtpNotSupportedError, nothing written after EHLO", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [EHLO(undefined, "PIPELINING"), QUIT],
        (smtp) => smtp.login("user", password)
      )
      followed(record)
      assert.strictEqual(notSupported(left(result)).feature, "AUTH")
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.effect("a server without ESMTP (EHLO refused, HELO accepted): SmtpNotSupportedError", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          { expect: "EHLO client.test", reply: "502 5.5.1 EHLO not implemented" },
          { expect: "HELO client.test", reply: "250 mx.test" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      followed(record)
      assert.strictEqual(notSupported(left(result)).feature, "AUTH")
      assert.strictEqual(written, "EHLO client.test\r\nHELO client.test\r\nQUIT\r\n")
    }))

  it.effect("no suitable mechanism: SmtpNotSupportedError naming what the server offers", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [EHLO("GSSAPI NTLM"), QUIT],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      followed(record)
      const error = notSupported(left(result))
      assert.include(error.message, "GSSAPI NTLM")
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.effect("the old AUTH= form is read too", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250-AUTH=LOGIN\r\n250 PIPELINING" },
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      right(result)
      followed(record)
    }))
})

describe("login: LOGIN sends its initial response and answers the prompt asked", () => {
  it.effect("initialResponseOk (the default): AUTH LOGIN <base64 user>, then the password to 334 Password:", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      assert.strictEqual(right(result).code, 235)
      followed(record)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH LOGIN dXNlcg==\r\naHVudGVyMg==\r\nQUIT\r\n")
    }))

  it.effect("a server that ignores the initial response and asks Username: gets the user again, then the password", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 VXNlcm5hbWU6" },
          { expect: "dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH LOGIN dXNlcg==\r\ndXNlcg==\r\naHVudGVyMg==\r\nQUIT\r\n")
    }))

  it.effect("without the initial response, a server that prompts Password: first gets the password, not the user", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "334 VXNlcm5hbWU6" },
          { expect: "dXNlcg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { initialResponseOk: false, allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH LOGIN\r\naHVudGVyMg==\r\ndXNlcg==\r\nQUIT\r\n")
    }))

  for (
    const [label, userPrompt, passwordPrompt] of [
      ["\"User Name\" and \"password\" (case-insensitive, no colon)", b64("User Name"), b64("password")],
      ["\"username:\" and \"PASSWORD:\"", b64("username:"), b64("PASSWORD:")],
      ["prompts base64-encoded twice", b64("VXNlcm5hbWU6"), b64("UGFzc3dvcmQ6")],
      ["as aiosmtpd's defaults, \"User Name\\0\" and \"Password\\0\"", b64("User Name\u0000"), b64("Password\u0000")]
    ] as const
  ) {
    it.effect(`prompts spelled ${label}: password first, then the user, each as asked`, () =>
      Effect.gen(function*() {
        const { record, result } = yield* scripted(
          [
            EHLO("LOGIN"),
            { expect: "AUTH LOGIN", reply: `334 ${passwordPrompt}` },
            { expect: "aHVudGVyMg==", reply: `334 ${userPrompt}` },
            { expect: "dXNlcg==", reply: "235 2.7.0 Authentication successful" },
            QUIT
          ],
          (smtp) => smtp.login("user", password, { initialResponseOk: false, allowInsecure: true })
        )
        right(result)
        followed(record)
      }))
  }

  it.effect("empty or unrecognised prompts are answered by position (user, then password), as smtplib", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN", reply: "334 " },
          { expect: "dXNlcg==", reply: `334 ${b64("Secret phrase?")}` },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { initialResponseOk: false, allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(written, "EHLO client.test\r\nAUTH LOGIN\r\ndXNlcg==\r\naHVudGVyMg==\r\nQUIT\r\n")
    }))

  it.effect("after the initial response an unrecognised prompt is the second position: the password", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN dXNlcg==", reply: `334 ${b64("Secret phrase?")}` },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      right(result)
      followed(record)
    }))

  it.effect("asked for the password twice: * (the password is not sent again), the session stays usable", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("LOGIN"),
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          { expect: "NOOP", reply: "250 2.0.0 OK" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.login("user", password, { allowInsecure: true }))
            assert.strictEqual((yield* smtp.noop).code, 250)
            return error
          })
      )
      followed(record)
      const error = authError(right(result))
      assert.strictEqual(error.code, 501)
      assert.include(error.detail ?? "", "password")
      assert.strictEqual(written.split("\r\n").filter((l) => l === "aHVudGVyMg==").length, 1)
    }))
})

describe("login: PLAIN challenged after its initial response (RFC 4954 §4)", () => {
  it.effect("* cancels, the 501 is read, SmtpAuthenticationError says why, and the session stays usable", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [
          EHLO("PLAIN"),
          { expect: `AUTH PLAIN ${plainIr}`, reply: `334 ${b64("and now?")}` },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          { expect: "NOOP", reply: "250 2.0.0 OK" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.login("user", password, { allowInsecure: true }))
            assert.isFalse(yield* smtp.isClosed)
            assert.isFalse(yield* smtp.isAuthenticated)
            assert.strictEqual((yield* smtp.noop).code, 250)
            return error
          })
      )
      followed(record)
      const error = authError(right(result))
      assert.strictEqual(error.code, 501)
      assert.strictEqual(error.enhancedCode, "5.7.0")
      assert.deepStrictEqual(error.mechanisms, ["PLAIN"])
      assert.include(error.detail ?? "", "PLAIN")
      assert.include(error.detail ?? "", "initial response")
      assert.notInclude(error.message, "hunter2")
      assert.strictEqual(written, `EHLO client.test\r\nAUTH PLAIN ${plainIr}\r\n*\r\nNOOP\r\nQUIT\r\n`)
    }))

  it.effect("an empty 334 after the initial response is cancelled the same way", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("PLAIN"),
          { expect: `AUTH PLAIN ${plainIr}`, reply: "334 " },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          { expect: "NOOP", reply: "250 2.0.0 OK" },
          QUIT
        ],
        (smtp) => Effect.zipRight(Effect.flip(smtp.login("user", password, { allowInsecure: true })), smtp.noop)
      )
      assert.strictEqual(right(result).code, 250)
      followed(record)
    }))

  it.effect("login goes on to the next mechanism, as after any refusal", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("PLAIN LOGIN"),
          { expect: `AUTH PLAIN ${plainIr}`, reply: `334 ${b64("and now?")}` },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          { expect: "AUTH LOGIN dXNlcg==", reply: "334 UGFzc3dvcmQ6" },
          { expect: "aHVudGVyMg==", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) => smtp.login("user", password, { allowInsecure: true })
      )
      assert.strictEqual(right(result).code, 235)
      followed(record)
    }))
})

class AuthenticatorFailed extends Data.TaggedError("AuthenticatorFailed")<{ readonly round: number }> {}

/** An authenticator that records what it was called with and answers from a list. */
const recording = (answers: ReadonlyArray<string | Uint8Array | undefined>) => {
  const calls: Array<string | null> = []
  return {
    calls,
    authenticator: (challenge: Option.Option<Uint8Array>) =>
      Effect.sync(() => {
        calls.push(Option.match(challenge, { onNone: () => null, onSome: (b) => Buffer.from(b).toString("utf8") }))
        return answers[Math.min(calls.length - 1, answers.length - 1)]
      })
  }
}

describe("auth(): the custom-mechanism hook", () => {
  // over TLS: the plaintext rule refuses custom mechanisms in clear to mx.test (tested below)
  const tls: SmtpClient.Options = { security: "tls" }

  it.effect("the authenticator gets None first, then each challenge decoded", () =>
    Effect.gen(function*() {
      const auth = recording([undefined, "world", new Uint8Array([0, 1, 255])])
      const { record, result, written } = yield* scripted(
        [
          EHLO("X-TEST"),
          { expect: "AUTH X-TEST", reply: `334 ${b64("hello")}` },
          { expect: b64("world"), reply: `334 ${b64("again")}` },
          { expect: "AAH/", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const reply = yield* smtp.auth("x-test", auth.authenticator)
            assert.strictEqual(reply.code, 235)
            assert.isTrue(yield* smtp.isAuthenticated)
          }),
        tls
      )
      right(result)
      followed(record)
      assert.deepStrictEqual(auth.calls, [null, "hello", "again"])
      assert.strictEqual(written, `EHLO client.test\r\nAUTH X-TEST\r\n${b64("world")}\r\nAAH/\r\nQUIT\r\n`)
    }))

  it.effect("an initial response goes with AUTH; an empty one is sent as =", () =>
    Effect.gen(function*() {
      const withIr = recording(["init"])
      const empty = recording([""])
      const { record, result } = yield* scripted(
        [
          EHLO("X-TEST"),
          { expect: `AUTH X-TEST ${b64("init")}`, reply: "535 5.7.8 no" },
          { expect: "AUTH X-EMPTY =", reply: "235 2.7.0 ok" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.auth("X-TEST", withIr.authenticator))
            yield* smtp.auth("X-EMPTY", empty.authenticator)
            return error
          }),
        tls
      )
      followed(record)
      const error = authError(right(result))
      assert.deepStrictEqual(error.mechanisms, ["X-TEST"])
      assert.deepStrictEqual(withIr.calls, [null])
      assert.deepStrictEqual(empty.calls, [null])
    }))

  it.effect("initialResponseOk false: the authenticator is never called with None", () =>
    Effect.gen(function*() {
      const auth = recording(["answer"])
      const { record, result } = yield* scripted(
        [
          EHLO("X-TEST"),
          { expect: "AUTH X-TEST", reply: "334 " },
          { expect: b64("answer"), reply: "235 2.7.0 ok" },
          QUIT
        ],
        (smtp) => smtp.auth("X-TEST", auth.authenticator, { initialResponseOk: false }),
        tls
      )
      right(result)
      followed(record)
      assert.deepStrictEqual(auth.calls, [""])
    }))

  it.effect("a 334 loop: after 5 challenges the client sends * and fails", () =>
    Effect.gen(function*() {
      const auth = recording([undefined, "again"])
      const challenge = (i: number): ScriptedTransport.Step => ({ expect: b64("again"), reply: `334 ${b64(`c${i}`)}` })
      const { record, result, written } = yield* scripted(
        [
          EHLO("X-LOOP"),
          { expect: "AUTH X-LOOP", reply: `334 ${b64("c1")}` },
          challenge(2),
          challenge(3),
          challenge(4),
          challenge(5),
          challenge(6),
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          QUIT
        ],
        (smtp) => smtp.auth("X-LOOP", auth.authenticator),
        tls
      )
      followed(record)
      const error = authError(left(result))
      assert.strictEqual(error.code, 501)
      assert.include(error.detail ?? "", "5")
      assert.deepStrictEqual(auth.calls, [null, "c1", "c2", "c3", "c4", "c5"])
      assert.strictEqual(written.split("\r\n").filter((l) => l === b64("again")).length, 5)
    }))

  it.effect("an authenticator failing mid-exchange: * is sent, then its own error", () =>
    Effect.gen(function*() {
      let round = 0
      const { record, result, written } = yield* scripted(
        [
          EHLO("X-FAIL"),
          { expect: `AUTH X-FAIL ${b64("init")}`, reply: `334 ${b64("c1")}` },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          QUIT
        ],
        (smtp) =>
          smtp.auth("X-FAIL", (challenge) =>
            Option.isNone(challenge) ?
              Effect.succeed("init") :
              Effect.fail(new AuthenticatorFailed({ round: ++round }))),
        tls
      )
      followed(record)
      const error = left(result)
      assert.instanceOf(error, AuthenticatorFailed)
      // (not deepStrictEqual: Effect attaches the operation's span to an error that crosses it)
      assert.strictEqual((error as AuthenticatorFailed)._tag, "AuthenticatorFailed")
      assert.strictEqual((error as AuthenticatorFailed).round, 1)
      assert.strictEqual(written, `EHLO client.test\r\nAUTH X-FAIL ${b64("init")}\r\n*\r\nQUIT\r\n`)
    }))

  it.effect("an invalid mechanism name is SmtpInvalidInput and nothing is sent", () =>
    Effect.gen(function*() {
      const auth = recording(["x"])
      const { record, result, written } = yield* scripted(
        [EHLO("PLAIN"), QUIT],
        (smtp) => smtp.auth("PLAIN x", auth.authenticator)
      )
      followed(record)
      invalidInput(left(result))
      assert.deepStrictEqual(auth.calls, [])
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))
})

describe("auth(): the plaintext rule holds here too (Go's net/smtp)", () => {
  it.effect("in clear to a non-loopback host: PLAIN, LOGIN, XOAUTH2 and custom names refused, nothing written", () =>
    Effect.gen(function*() {
      for (const name of ["PLAIN", "login", "XOAUTH2", "OAUTHBEARER", "X-CUSTOM", "DIGEST-MD5"]) {
        for (const initialResponseOk of [true, false]) {
          const auth = recording(["\u0000user\u0000hunter2"])
          const { record, result, written } = yield* scripted(
            [EHLO("PLAIN LOGIN XOAUTH2 OAUTHBEARER X-CUSTOM DIGEST-MD5"), QUIT],
            (smtp) => smtp.auth(name, auth.authenticator, { initialResponseOk })
          )
          followed(record)
          const error = invalidInput(left(result))
          assert.include(error.message, `AUTH ${name.toUpperCase()}`)
          assert.include(error.message, "allowInsecure: true")
          assert.notInclude(error.message, "hunter2")
          assert.deepStrictEqual(auth.calls, [], `${name}: the authenticator never ran`)
          assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
        }
      }
    }))

  it.effect("the challenge-response mechanisms (CRAM-MD5, SCRAM-*) go ahead in clear", () =>
    Effect.gen(function*() {
      const cram = recording([undefined, rfc2195.response])
      const scram = recording(["n,,n=user,r=abc"])
      const { record, result } = yield* scripted(
        [
          EHLO("CRAM-MD5 SCRAM-SHA-256"),
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: b64(rfc2195.response), reply: "535 5.7.8 no" },
          { expect: `AUTH SCRAM-SHA-256 ${b64("n,,n=user,r=abc")}`, reply: "535 5.7.8 no" },
          QUIT
        ],
        (smtp) =>
          Effect.zipRight(
            Effect.flip(smtp.auth("CRAM-MD5", cram.authenticator)),
            smtp.auth("scram-sha-256", scram.authenticator)
          )
      )
      followed(record)
      assert.strictEqual(authError(left(result)).code, 535)
    }))

  it.effect("allowInsecure opts in; over TLS, or to loopback, no opt-in is needed", () =>
    Effect.gen(function*() {
      const plain = () => recording(["\u0000user\u0000hunter2"])
      const steps = [
        EHLO("PLAIN"),
        { expect: `AUTH PLAIN ${plainIr}`, reply: "235 2.7.0 ok" },
        QUIT
      ]
      const optIn = yield* scripted(steps, (smtp) => smtp.auth("PLAIN", plain().authenticator, { allowInsecure: true }))
      right(optIn.result)
      followed(optIn.record)
      const tls = yield* scripted(steps, (smtp) => smtp.auth("PLAIN", plain().authenticator), { security: "tls" })
      right(tls.result)
      followed(tls.record)
      const loopback = yield* scripted(steps, (smtp) => smtp.auth("PLAIN", plain().authenticator), {
        host: "127.0.0.1"
      })
      right(loopback.result)
      followed(loopback.record)
    }))
})

describe("loginOAuth2: XOAUTH2 and OAUTHBEARER", () => {
  const user = "someone@example.com"

  it.effect("XOAUTH2: the exact initial response; the token provider runs once on success", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.first")
      const { record, result } = yield* scripted(
        [
          EHLO("XOAUTH2 PLAIN"),
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.first"))}`, reply: "235 2.7.0 Accepted" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            yield* smtp.loginOAuth2(user, tokens.provider)
            assert.isTrue(yield* smtp.isAuthenticated)
          }),
        { security: "tls" }
      )
      right(result)
      followed(record)
      assert.strictEqual(tokens.runs(), 1)
    }))

  it.effect("XOAUTH2: error challenge answered with an empty line, 535, a fresh token, success", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.expired", "ya29.fresh")
      const { record, result, written } = yield* scripted(
        [
          EHLO("XOAUTH2"),
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.expired"))}`, reply: `334 ${b64(oauthErrorJson)}` },
          { expect: "", reply: "535 5.7.8 Username and Password not accepted" },
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.fresh"))}`, reply: "235 2.7.0 Accepted" },
          QUIT
        ],
        (smtp) => smtp.loginOAuth2(user, tokens.provider, { allowInsecure: true })
      )
      assert.strictEqual(right(result).code, 235)
      followed(record)
      assert.strictEqual(tokens.runs(), 2)
      assert.strictEqual(
        written,
        `EHLO client.test\r\nAUTH XOAUTH2 ${b64(xoauth2(user, "ya29.expired"))}\r\n\r\n` +
          `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.fresh"))}\r\nQUIT\r\n`
      )
    }))

  it.effect("XOAUTH2: both tokens rejected: SmtpAuthenticationError with the JSON status, never the token", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.expired", "ya29.also-bad")
      const { record, result } = yield* scripted(
        [
          EHLO("XOAUTH2"),
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.expired"))}`, reply: `334 ${b64(oauthErrorJson)}` },
          { expect: "", reply: "535 5.7.8 Username and Password not accepted" },
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.also-bad"))}`, reply: `334 ${b64(oauthErrorJson)}` },
          { expect: "", reply: "535 5.7.8 Username and Password not accepted" },
          QUIT
        ],
        (smtp) => smtp.loginOAuth2(user, tokens.provider, { allowInsecure: true })
      )
      followed(record)
      assert.strictEqual(tokens.runs(), 2)
      const error = authError(left(result))
      assert.strictEqual(error.code, 535)
      assert.deepStrictEqual(error.mechanisms, ["XOAUTH2"])
      assert.include(error.detail ?? "", "401")
      assert.include(error.message, "401")
      for (const text of [error.message, String(error), JSON.stringify(error)]) {
        assert.notInclude(text, "ya29")
      }
    }))

  it.effect("OAUTHBEARER (preferred when both are offered): exact initial response, error answered AQ==, retry", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.expired", "ya29.fresh")
      const { record, result, written } = yield* scripted(
        [
          EHLO("XOAUTH2 OAUTHBEARER"),
          {
            expect: `AUTH OAUTHBEARER ${b64(oauthBearer(user, "ya29.expired", "mx.test", 25))}`,
            reply: `334 ${b64(oauthErrorJson)}`
          },
          { expect: "AQ==", reply: "535 5.7.8 Authentication credentials invalid" },
          {
            expect: `AUTH OAUTHBEARER ${b64(oauthBearer(user, "ya29.fresh", "mx.test", 25))}`,
            reply: "235 2.7.0 Accepted"
          },
          QUIT
        ],
        (smtp) => smtp.loginOAuth2(user, tokens.provider, { allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(tokens.runs(), 2)
      assert.include(written, "\r\nAQ==\r\n")
    }))

  it.effect("OAUTHBEARER both rejected: the detail names the status and scope", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.expired", "ya29.also-bad")
      const rejected: ReadonlyArray<ScriptedTransport.Step> = [
        { expect: /^AUTH OAUTHBEARER /, reply: `334 ${b64(oauthErrorJson)}` },
        { expect: "AQ==", reply: "535 5.7.8 Authentication credentials invalid" }
      ]
      const { record, result } = yield* scripted(
        [EHLO("OAUTHBEARER"), ...rejected, ...rejected, QUIT],
        (smtp) => smtp.loginOAuth2(user, tokens.provider),
        { security: "tls" }
      )
      followed(record)
      const error = authError(left(result))
      assert.deepStrictEqual(error.mechanisms, ["OAUTHBEARER"])
      assert.include(error.detail ?? "", "status 401")
      assert.include(error.detail ?? "", "https://mail.google.com/")
      assert.notInclude(JSON.stringify(error), "ya29")
    }))

  it.effect("an explicit mechanism wins; a 535 without an error challenge also gets one retry", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.expired", "ya29.fresh")
      const { record, result } = yield* scripted(
        [
          EHLO("OAUTHBEARER XOAUTH2"),
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.expired"))}`, reply: "535 5.7.8 no" },
          { expect: `AUTH XOAUTH2 ${b64(xoauth2(user, "ya29.fresh"))}`, reply: "235 2.7.0 Accepted" },
          QUIT
        ],
        (smtp) => smtp.loginOAuth2(user, tokens.provider, { mechanism: "XOAUTH2", allowInsecure: true })
      )
      right(result)
      followed(record)
      assert.strictEqual(tokens.runs(), 2)
    }))

  it.effect("in clear to a non-loopback host: refused (how to opt in), the provider never runs", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.first")
      const { record, result, written } = yield* scripted(
        [EHLO("XOAUTH2"), QUIT],
        (smtp) => smtp.loginOAuth2(user, tokens.provider)
      )
      followed(record)
      assert.include(invalidInput(left(result)).message, "allowInsecure: true")
      assert.strictEqual(tokens.runs(), 0)
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))

  it.effect("neither mechanism offered: SmtpNotSupportedError", () =>
    Effect.gen(function*() {
      const tokens = tokenProvider("ya29.first")
      const { record, result } = yield* scripted(
        [EHLO("PLAIN LOGIN"), QUIT],
        (smtp) => smtp.loginOAuth2(user, tokens.provider),
        { security: "tls" }
      )
      followed(record)
      notSupported(left(result))
      assert.strictEqual(tokens.runs(), 0)
    }))

  it.effect("the provider's own failure is the error; nothing is sent", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        [EHLO("XOAUTH2"), QUIT],
        (smtp) => smtp.loginOAuth2(user, Effect.fail(new AuthenticatorFailed({ round: 0 }))),
        { security: "tls" }
      )
      followed(record)
      assert.instanceOf(left(result), AuthenticatorFailed)
      assert.strictEqual(written, "EHLO client.test\r\nQUIT\r\n")
    }))
})

describe("isAuthenticated", () => {
  it.effect("true after success, false again after STARTTLS; false after a failure", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("CRAM-MD5", "STARTTLS"),
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: b64(rfc2195.response), reply: "535 5.7.8 no" },
          { expect: "AUTH CRAM-MD5", reply: `334 ${b64(rfc2195.challenge)}` },
          { expect: b64(rfc2195.response), reply: "235 2.7.0 Authentication successful" },
          { expect: "STARTTLS", reply: "220 2.0.0 Ready to start TLS", tls: true },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            assert.isFalse(yield* smtp.isAuthenticated)
            yield* Effect.flip(smtp.login(rfc2195.user, Redacted.make(rfc2195.password)))
            assert.isFalse(yield* smtp.isAuthenticated)
            yield* smtp.login(rfc2195.user, Redacted.make(rfc2195.password))
            assert.isTrue(yield* smtp.isAuthenticated)
            yield* smtp.starttls()
            assert.isTrue(yield* smtp.isSecure)
            assert.isFalse(yield* smtp.isAuthenticated)
          })
      )
      right(result)
      followed(record)
    }))
})

describe("SCRAM-SHA-256 over the scripted transport (server side computed in the test)", () => {
  it.effect("the full exchange, byte for byte: client-first, client-final with the proof, the empty line", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        (ref) => [
          EHLO("SCRAM-SHA-256 PLAIN"),
          ...ScramServer.scriptedSteps(ref, "ok"),
          { expect: "", reply: "235 2.7.0 Authentication successful" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const reply = yield* smtp.login("user", Redacted.make("pencil"))
            assert.strictEqual(reply.code, 235)
            assert.isTrue(yield* smtp.isAuthenticated)
          })
      )
      right(result)
      followed(record)
      const units = record.units()
      const clientFirst = unb64(units[1].split(" ")[2])
      const nonce = /^n,,n=user,r=(.+)$/.exec(clientFirst)?.[1] ?? assert.fail(clientFirst)
      const clientFinal = unb64(units[2])
      assert.match(clientFinal, new RegExp(`^c=biws,r=${nonce.replace(/[+/]/g, "\\$&")}[^,]+,p=[A-Za-z0-9+/]{43}=$`))
      assert.strictEqual(written, `EHLO client.test\r\n${units[1]}\r\n${units[2]}\r\n\r\nQUIT\r\n`)
    }))

  it.effect("a wrong server signature: * is sent, the login fails, PLAIN is not tried after it", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        (ref) => [
          EHLO("SCRAM-SHA-256 PLAIN"),
          ...ScramServer.scriptedSteps(ref, "badSignature"),
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          QUIT
        ],
        (smtp) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.login("user", Redacted.make("pencil"), { allowInsecure: true }))
            assert.isFalse(yield* smtp.isAuthenticated)
            return error
          }),
        {},
        // QUIT or a close after the cancellation: not prescribed (followedToCancel)
        { strict: false }
      )
      followedToCancel(record)
      assert.notInclude(written, "AUTH PLAIN", "no password for a server that failed to prove itself")
      const error = authError(right(result))
      assert.include(error.detail ?? "", "signature")
      assert.deepStrictEqual(error.mechanisms, ["SCRAM-SHA-256"])
    }))

  it.effect("235 without the server signature: an authentication failure and the connection is closed", () =>
    Effect.gen(function*() {
      const { record, result, written } = yield* scripted(
        (ref) => [EHLO("SCRAM-SHA-256 PLAIN"), ...ScramServer.scriptedSteps(ref, "skipFinal")],
        (smtp) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(smtp.login("user", Redacted.make("pencil"), { allowInsecure: true }))
            assert.isFalse(yield* smtp.isAuthenticated)
            assert.isTrue(yield* smtp.isClosed)
            return error
          })
      )
      followed(record)
      const error = authError(right(result))
      assert.strictEqual(error.code, 235)
      assert.include(error.detail ?? "", "signature")
      assert.notInclude(written, "AUTH PLAIN")
      assert.notInclude(written, "QUIT")
    }))

  it.effect("a server-first whose nonce does not extend ours: * and failure", () =>
    Effect.gen(function*() {
      const { record, result } = yield* scripted(
        [
          EHLO("SCRAM-SHA-256"),
          { expect: /^AUTH SCRAM-SHA-256 /, reply: `334 ${b64("r=not-our-nonce,s=c2FsdHNhbHQ=,i=4096")}` },
          { expect: "*", reply: "501 5.7.0 Authentication cancelled" },
          QUIT
        ],
        (smtp) => smtp.login("user", Redacted.make("pencil")),
        {},
        // QUIT or a close after the cancellation: not prescribed (followedToCancel)
        { strict: false }
      )
      followedToCancel(record)
      assert.include(authError(left(result)).detail ?? "", "nonce")
    }))
})

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

const connectRaw = (port: number) =>
  SmtpClient.connect({ host: "127.0.0.1", port, security: "none", localHostname: "client.test" })

describe("SCRAM over TCP (a raw server in the test, node:crypto)", () => {
  it.live("SCRAM-SHA-256 is preferred and succeeds once the server signature is verified", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({ user: "user", password: "pencil", mode: "ok" })
      const smtp = yield* connectRaw(server.port)
      const reply = yield* smtp.login("user", Redacted.make("pencil"))
      assert.strictEqual(reply.code, 235)
      assert.isTrue(yield* smtp.isAuthenticated)
      assert.strictEqual((yield* smtp.noop).text, "2.0.0 OK authenticated")
      assert.strictEqual(server.events.length, 1)
      assert.isTrue(server.events[0].proofValid)
      const lines = server.lines[0]
      assert.match(lines[1], /^AUTH SCRAM-SHA-256 /)
      assert.strictEqual(lines[3], "")
    })))

  it.live("SCRAM-SHA-1 when asked for; initialResponseOk false waits for the empty 334", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({ user: "user", password: "pencil", mode: "ok" })
      const smtp = yield* connectRaw(server.port)
      yield* smtp.login("user", Redacted.make("pencil"), { mechanisms: ["SCRAM-SHA-1"], initialResponseOk: false })
      assert.isTrue(yield* smtp.isAuthenticated)
      assert.strictEqual(server.lines[0][1], "AUTH SCRAM-SHA-1")
      assert.match(server.events[0].clientFirst, /^n,,n=user,r=/)
      assert.isTrue(server.events[0].proofValid)
    })))

  it.live("the password is prepared with SASLprep (a soft hyphen maps to nothing, U+2000 to a space)", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({ user: "user", password: "pen cil", mode: "ok" })
      const smtp = yield* connectRaw(server.port)
      yield* smtp.login("user", Redacted.make("pen\u00AD\u2000cil"))
      assert.isTrue(yield* smtp.isAuthenticated)
    })))

  it.live("a wrong password: 535 for each SCRAM mechanism, the last error", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({ user: "user", password: "pencil", mode: "ok" })
      const smtp = yield* connectRaw(server.port)
      const error = authError(yield* Effect.flip(smtp.login("user", Redacted.make("crayon"))))
      assert.strictEqual(error.code, 535)
      assert.deepStrictEqual(error.mechanisms, ["SCRAM-SHA-256", "SCRAM-SHA-1"])
      assert.deepStrictEqual(server.events.map((e) => e.proofValid), [false, false])
      assert.isFalse(yield* smtp.isClosed)
    })))

  it.live("a wrong server signature: the client sends * and fails", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({
        user: "user",
        password: "pencil",
        mode: "badSignature",
        advertise: "SCRAM-SHA-256"
      })
      const smtp = yield* connectRaw(server.port)
      const error = authError(yield* Effect.flip(smtp.login("user", Redacted.make("pencil"))))
      assert.include(error.detail ?? "", "signature")
      assert.isTrue(server.events[0].proofValid, "the server did accept the proof")
      assert.strictEqual(server.lines[0][3], "*")
      assert.isFalse(yield* smtp.isAuthenticated)
    })))

  it.live("a wrong server signature: the password is not then sent to that server with PLAIN", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({
        user: "user",
        password: "pencil",
        mode: "badSignature",
        advertise: "SCRAM-SHA-256 PLAIN LOGIN"
      })
      const smtp = yield* connectRaw(server.port)
      const error = authError(yield* Effect.flip(smtp.login("user", Redacted.make("pencil"))))
      assert.deepStrictEqual(server.passwordAttempts, [], "PLAIN/LOGIN sent the password to an impostor")
      assert.deepStrictEqual(error.mechanisms, ["SCRAM-SHA-256"])
      assert.include(error.detail ?? "", "signature")
    })))

  it.live("235 without v=: SmtpAuthenticationError and the connection is closed", () =>
    live(Effect.gen(function*() {
      const server = yield* ScramServer.make({
        user: "user",
        password: "pencil",
        mode: "skipFinal",
        advertise: "SCRAM-SHA-256 PLAIN"
      })
      const smtp = yield* connectRaw(server.port)
      const error = authError(yield* Effect.flip(smtp.login("user", Redacted.make("pencil"))))
      assert.strictEqual(error.code, 235)
      assert.include(error.detail ?? "", "signature")
      assert.isTrue(yield* smtp.isClosed)
      assert.isFalse(yield* smtp.isAuthenticated)
      assert.deepStrictEqual(server.passwordAttempts, [])
      const closed = yield* Effect.flip(smtp.noop)
      assert.instanceOf(closed, SmtpError.SmtpServerDisconnected)
    })))
})
