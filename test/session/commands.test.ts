/**
 * The smtplib-style commands of a session over the scripted transport, byte-exact: EHLO/HELO and
 * what they leave in the session, docmd, NOOP, RSET, VRFY, EXPN, HELP, MAIL, RCPT, DATA, QUIT.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Logger, LogLevel, Option, TestClock } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import { ScriptedTransport } from "../../src/testing/index.js"
import { connectOptions, guard, makeServer, plainError, plainReply, type Server } from "./support.js"

const QUIT = { expect: "QUIT", reply: "221 2.0.0 bye" }
const EHLO_REPLY = "250-mx.test Hello client.test\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n" +
  "250-AUTH=XOAUTH2\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 PIPELINING"

/** Runs `f` on a session with the given script; the Scope is closed before returning. */
const session = <A>(
  steps: ReadonlyArray<ScriptedTransport.Step>,
  f: (smtp: SmtpConnection.Service, server: Server) => Effect.Effect<A, unknown>
) =>
  Effect.gen(function*() {
    const server = yield* makeServer({ steps })
    const result = yield* Effect.scoped(
      Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => f(smtp, server))
    ).pipe(Effect.provide(server.layer))
    return { result, server }
  })

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))) : "success"

const clean = (server: Server) => {
  assert.deepStrictEqual(server.connection(0).mismatches(), [])
  assert.strictEqual(server.connection(0).remaining(), 0)
}

describe("ehlo, helo and the session's knowledge", () => {
  it.effect("before any EHLO: no features, not ESMTP, no replies; the greeting is kept", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session([QUIT], (smtp) =>
          Effect.gen(function*() {
            return {
              greeting: plainReply(smtp.greeting),
              doesEsmtp: yield* smtp.doesEsmtp,
              features: Array.from(yield* smtp.esmtpFeatures),
              ehloResp: yield* smtp.ehloResp,
              heloResp: yield* smtp.heloResp,
              pipelining: yield* smtp.hasExtn("pipelining")
            }
          }))
        assert.deepStrictEqual(result.greeting, { code: 220, text: "mx.test ESMTP scripted" })
        assert.isFalse(result.doesEsmtp)
        assert.deepStrictEqual(result.features, [])
        assert.isTrue(Option.isNone(result.ehloResp))
        assert.isTrue(Option.isNone(result.heloResp))
        assert.isFalse(result.pipelining)
        assert.strictEqual(server.written(), "QUIT\r\n")
        clean(server)
      }),
      "before ehlo"
    ))

  it.effect("ehlo(): features (lower-case keys, AUTH lines accumulate), hasExtn case-insensitive, extnParams", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [{ expect: "EHLO client.test", reply: EHLO_REPLY }, QUIT],
          (smtp) =>
            Effect.gen(function*() {
              const reply = yield* smtp.ehlo()
              return {
                reply: plainReply(reply),
                features: Object.fromEntries(yield* smtp.esmtpFeatures),
                doesEsmtp: yield* smtp.doesEsmtp,
                ehloResp: yield* smtp.ehloResp,
                heloResp: yield* smtp.heloResp,
                has: [
                  yield* smtp.hasExtn("PIPELINING"),
                  yield* smtp.hasExtn("pipelining"),
                  yield* smtp.hasExtn("Size"),
                  yield* smtp.hasExtn("8bitmime"),
                  yield* smtp.hasExtn("starttls"),
                  yield* smtp.hasExtn("smtputf8")
                ],
                size: yield* smtp.extnParams("size"),
                sizeUpper: yield* smtp.extnParams("SIZE"),
                eightBit: yield* smtp.extnParams("8BITMIME"),
                missing: yield* smtp.extnParams("chunking")
              }
            })
        )
        const text = "mx.test Hello client.test\nSIZE 10240000\n8BITMIME\nAUTH PLAIN LOGIN\nAUTH=XOAUTH2\n" +
          "ENHANCEDSTATUSCODES\nDSN\nPIPELINING"
        assert.deepStrictEqual(result.reply, { code: 250, text })
        assert.deepStrictEqual(result.features, {
          size: "10240000",
          "8bitmime": "",
          auth: " PLAIN LOGIN XOAUTH2",
          enhancedstatuscodes: "",
          dsn: "",
          pipelining: ""
        })
        assert.isTrue(result.doesEsmtp)
        assert.strictEqual(Option.getOrUndefined(result.ehloResp), text)
        assert.isTrue(Option.isNone(result.heloResp))
        assert.deepStrictEqual(result.has, [true, true, true, true, false, false])
        assert.strictEqual(Option.getOrUndefined(result.size), "10240000")
        assert.strictEqual(Option.getOrUndefined(result.sizeUpper), "10240000")
        assert.strictEqual(Option.getOrUndefined(result.eightBit), "")
        assert.isTrue(Option.isNone(result.missing))
        assert.strictEqual(server.written(), "EHLO client.test\r\nQUIT\r\n")
        clean(server)
      }),
      "ehlo"
    ))

  it.effect("ehlo() answered 502 returns the reply without failing; not ESMTP, no features", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [{ expect: "EHLO custom.name", reply: "502 5.5.2 EHLO not implemented" }, QUIT],
          (smtp) =>
            Effect.gen(function*() {
              const reply = yield* smtp.ehlo("custom.name")
              return {
                reply: plainReply(reply),
                doesEsmtp: yield* smtp.doesEsmtp,
                features: (yield* smtp.esmtpFeatures).size,
                ehloResp: yield* smtp.ehloResp
              }
            })
        )
        assert.deepStrictEqual(result.reply, { code: 502, text: "5.5.2 EHLO not implemented" })
        assert.isFalse(result.doesEsmtp)
        assert.strictEqual(result.features, 0)
        assert.strictEqual(Option.getOrUndefined(result.ehloResp), "5.5.2 EHLO not implemented")
        assert.strictEqual(server.written(), "EHLO custom.name\r\nQUIT\r\n")
        clean(server)
      }),
      "ehlo 502"
    ))

  it.effect("a second ehlo() replaces the features", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "EHLO client.test", reply: "250-mx.test\r\n250-STARTTLS\r\n250 SIZE 100" },
            { expect: "EHLO client.test", reply: "250-mx.test\r\n250 AUTH PLAIN" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              yield* smtp.ehlo()
              yield* smtp.ehlo()
              return Object.fromEntries(yield* smtp.esmtpFeatures)
            })
        )
        assert.deepStrictEqual(result, { auth: " PLAIN" })
        clean(server)
      }),
      "second ehlo"
    ))

  it.effect("helo(): HELO with the local name (or the given one), heloResp", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "HELO client.test", reply: "250 mx.test" },
            { expect: "HELO other.test", reply: "501 5.5.4 no" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              const first = plainReply(yield* smtp.helo())
              const resp1 = yield* smtp.heloResp
              const second = plainReply(yield* smtp.helo("other.test"))
              return { first, resp1, second, resp2: yield* smtp.heloResp, doesEsmtp: yield* smtp.doesEsmtp }
            })
        )
        assert.deepStrictEqual(result.first, { code: 250, text: "mx.test" })
        assert.strictEqual(Option.getOrUndefined(result.resp1), "mx.test")
        assert.deepStrictEqual(result.second, { code: 501, text: "5.5.4 no" })
        assert.strictEqual(Option.getOrUndefined(result.resp2), "5.5.4 no")
        assert.isFalse(result.doesEsmtp)
        assert.strictEqual(server.written(), "HELO client.test\r\nHELO other.test\r\nQUIT\r\n")
        clean(server)
      }),
      "helo"
    ))

  it.effect("ehloOrHeloIfNeeded: EHLO 500 falls back to HELO; done once per session", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "EHLO client.test", reply: "500 5.5.1 command unrecognized" },
            { expect: "HELO client.test", reply: "250 mx.test pleased" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              yield* smtp.ehloOrHeloIfNeeded
              yield* smtp.ehloOrHeloIfNeeded
              return {
                doesEsmtp: yield* smtp.doesEsmtp,
                ehloResp: yield* smtp.ehloResp,
                heloResp: yield* smtp.heloResp,
                features: (yield* smtp.esmtpFeatures).size
              }
            })
        )
        assert.isFalse(result.doesEsmtp)
        assert.strictEqual(Option.getOrUndefined(result.ehloResp), "5.5.1 command unrecognized")
        assert.strictEqual(Option.getOrUndefined(result.heloResp), "mx.test pleased")
        assert.strictEqual(result.features, 0)
        assert.strictEqual(server.written(), "EHLO client.test\r\nHELO client.test\r\nQUIT\r\n")
        clean(server)
      }),
      "fallback"
    ))

  it.effect("ehloOrHeloIfNeeded: both refused is SmtpHeloError with the HELO reply", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "EHLO client.test", reply: "500 5.5.1 command unrecognized" },
            { expect: "HELO client.test", reply: "554-5.7.1 you are\r\n554 5.7.1 not welcome" },
            QUIT
          ],
          (smtp) => Effect.exit(smtp.ehloOrHeloIfNeeded)
        )
        assert.deepStrictEqual(failure(result), {
          _tag: "SmtpHeloError",
          code: 554,
          text: "5.7.1 you are\n5.7.1 not welcome",
          enhancedCode: "5.7.1",
          command: "HELO"
        })
        assert.strictEqual(server.written(), "EHLO client.test\r\nHELO client.test\r\nQUIT\r\n")
        clean(server)
      }),
      "helo error"
    ))

  it.effect("ehloOrHeloIfNeeded after an explicit ehlo() does nothing", () =>
    guard(
      Effect.gen(function*() {
        const { server } = yield* session(
          [{ expect: "EHLO client.test", reply: "250 mx.test" }, QUIT],
          (smtp) => Effect.zipRight(smtp.ehlo(), smtp.ehloOrHeloIfNeeded)
        )
        assert.strictEqual(server.written(), "EHLO client.test\r\nQUIT\r\n")
        clean(server)
      }),
      "no second ehlo"
    ))
})

describe("simple commands", () => {
  it.effect("docmd: verb and args joined by a space; the reply whatever its code; multi-line text joined", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "XCLIENT NAME=spike.example ADDR=192.0.2.1", reply: "220-2.0.0 fine\r\n220 2.0.0 really" },
            { expect: "NOOP", reply: "250 2.0.0 ok" },
            { expect: "XFOO", reply: "502 5.5.2 no such command" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              const a = yield* smtp.docmd("XCLIENT", "NAME=spike.example ADDR=192.0.2.1")
              const b = yield* smtp.docmd("NOOP")
              const c = yield* smtp.docmd("XFOO", "")
              return {
                a: plainReply(a),
                aEnhanced: a.enhancedCode,
                aLines: a.lines,
                b: plainReply(b),
                c: plainReply(c)
              }
            })
        )
        assert.deepStrictEqual(result.a, { code: 220, text: "2.0.0 fine\n2.0.0 really" })
        assert.strictEqual(result.aEnhanced, "2.0.0")
        assert.deepStrictEqual(result.aLines, ["2.0.0 fine", "2.0.0 really"])
        assert.deepStrictEqual(result.b, { code: 250, text: "2.0.0 ok" })
        assert.deepStrictEqual(result.c, { code: 502, text: "5.5.2 no such command" })
        assert.strictEqual(
          server.written(),
          "XCLIENT NAME=spike.example ADDR=192.0.2.1\r\nNOOP\r\nXFOO\r\nQUIT\r\n"
        )
        clean(server)
      }),
      "docmd"
    ))

  for (
    const [name, cmd, args] of [
      ["LF in docmd args", "XCLIENT", "NAME=x\nQUIT"],
      ["CRLF in docmd args", "XCLIENT", "NAME=x\r\nRSET"],
      ["CR at the end of docmd args", "NOOP", "x\r"],
      ["LF in the docmd verb", "NOOP\nRSET", undefined]
    ] as const
  ) {
    it.effect(`${name}: SmtpInvalidInput, nothing written`, () =>
      guard(
        Effect.gen(function*() {
          const { result, server } = yield* session([QUIT], (smtp, server) =>
            Effect.gen(function*() {
              const exit = yield* Effect.exit(args === undefined ? smtp.docmd(cmd) : smtp.docmd(cmd, args))
              return { exit, before: server.written() }
            }))
          const error = failure(result.exit) as { _tag: string; reason: string }
          assert.strictEqual(error._tag, "SmtpInvalidInput")
          assert.include(error.reason, "CR or LF")
          assert.strictEqual(result.before, "")
          assert.strictEqual(server.written(), "QUIT\r\n")
          clean(server)
        }),
        name
      ))
  }

  it.effect("noop, rset, help, help(args): replies whatever their code", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "NOOP", reply: "250 2.0.0 ok" },
            { expect: "RSET", reply: "250 2.0.0 flushed" },
            { expect: "HELP", reply: "214-2.0.0 commands:\r\n214 2.0.0 HELO EHLO MAIL" },
            { expect: "HELP MAIL", reply: "504 5.5.4 no help for you" },
            QUIT
          ],
          (smtp) =>
            Effect.all([smtp.noop, smtp.rset, smtp.help(), smtp.help("MAIL")]).pipe(
              Effect.map((replies) => replies.map(plainReply))
            )
        )
        assert.deepStrictEqual(result, [
          { code: 250, text: "2.0.0 ok" },
          { code: 250, text: "2.0.0 flushed" },
          { code: 214, text: "2.0.0 commands:\n2.0.0 HELO EHLO MAIL" },
          { code: 504, text: "5.5.4 no help for you" }
        ])
        assert.strictEqual(server.written(), "NOOP\r\nRSET\r\nHELP\r\nHELP MAIL\r\nQUIT\r\n")
        clean(server)
      }),
      "noop rset help"
    ))

  it.effect("verify and expn send the address only", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "VRFY bob@x", reply: "250 2.1.5 Bob <bob@x>" },
            { expect: "VRFY plain", reply: "252 2.1.5 cannot verify" },
            { expect: "EXPN list@x", reply: "250-2.1.5 <a@x>\r\n250 2.1.5 <b@x>" },
            { expect: "EXPN staff", reply: "550 5.1.1 no such list" },
            QUIT
          ],
          (smtp) =>
            Effect.all([
              smtp.verify("Bob <bob@x>"),
              smtp.verify("plain"),
              smtp.expn("Staff <list@x>"),
              smtp.expn("staff")
            ]).pipe(Effect.map((replies) => replies.map(plainReply)))
        )
        assert.deepStrictEqual(result, [
          { code: 250, text: "2.1.5 Bob <bob@x>" },
          { code: 252, text: "2.1.5 cannot verify" },
          { code: 250, text: "2.1.5 <a@x>\n2.1.5 <b@x>" },
          { code: 550, text: "5.1.1 no such list" }
        ])
        assert.strictEqual(server.written(), "VRFY bob@x\r\nVRFY plain\r\nEXPN list@x\r\nEXPN staff\r\nQUIT\r\n")
        clean(server)
      }),
      "verify expn"
    ))

  for (
    const [name, op] of [
      ["verify, CRLF before a bracketed address", (smtp) => smtp.verify("x\r\nEXPN all <bob@x>")],
      ["expn, LF before a bracketed address", (smtp) => smtp.expn("list\n<list@x>")],
      ["mail, CRLF before a bracketed address", (smtp) => smtp.mail("a@x.test\r\nRCPT TO:<evil@x.test>")],
      ["rcpt, LF after a bracketed address", (smtp) => smtp.rcpt("<b@x.test>\nDATA")],
      ["mail, LF in an option", (smtp) => smtp.mail("a@x.test", ["BODY=7BIT\nRSET"])],
      ["rcpt, a trailing CR", (smtp) => smtp.rcpt("b@x.test\r")]
    ] as const satisfies ReadonlyArray<
      readonly [string, (smtp: SmtpConnection.Service) => Effect.Effect<unknown, unknown>]
    >
  ) {
    it.effect(`${name}: SmtpInvalidInput, nothing written`, () =>
      guard(
        Effect.gen(function*() {
          const { result, server } = yield* session(
            [{ expect: "EHLO client.test", reply: "250-mx.test\r\n250 8BITMIME" }, QUIT],
            (smtp, server) =>
              Effect.gen(function*() {
                yield* smtp.ehlo()
                const before = server.written()
                const exit = yield* Effect.exit(op(smtp))
                return { exit, wrote: server.written().slice(before.length) }
              })
          )
          assert.deepStrictEqual(
            { error: (failure(result.exit) as { _tag: string })._tag, wrote: result.wrote },
            { error: "SmtpInvalidInput", wrote: "" }
          )
          clean(server)
        }),
        name
      ))
  }

  it.effect("verify with a line break: SmtpInvalidInput, nothing written", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session([QUIT], (smtp) => Effect.exit(smtp.verify("bob@x\nEXPN all")))
        assert.strictEqual((failure(result) as { _tag: string })._tag, "SmtpInvalidInput")
        assert.strictEqual(server.written(), "QUIT\r\n")
        clean(server)
      }),
      "verify lf"
    ))
})

describe("mail, rcpt and data", () => {
  it.effect("mail and rcpt options are dropped before EHLO (not ESMTP), sent after; replies whatever their code", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "MAIL FROM:<a@x.test>", reply: "250 2.1.0 ok" },
            { expect: "RCPT TO:<b@x.test>", reply: "550 5.1.1 no b" },
            { expect: "RSET", reply: "250 2.0.0 ok" },
            { expect: "EHLO client.test", reply: "250-mx.test\r\n250-8BITMIME\r\n250 DSN" },
            { expect: "MAIL FROM:<> BODY=8BITMIME RET=HDRS", reply: "250 2.1.0 ok" },
            { expect: "RCPT TO:<b@x.test> NOTIFY=NEVER", reply: "251 2.1.5 forwarded" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              const a = yield* smtp.mail("a@x.test", ["BODY=8BITMIME"])
              const b = yield* smtp.rcpt("Bob <b@x.test>", ["NOTIFY=NEVER"])
              yield* smtp.rset
              yield* smtp.ehlo()
              const c = yield* smtp.mail("<>", ["BODY=8BITMIME", "RET=HDRS"])
              const d = yield* smtp.rcpt("b@x.test", ["NOTIFY=NEVER"])
              return [a, b, c, d].map(plainReply)
            })
        )
        assert.deepStrictEqual(result, [
          { code: 250, text: "2.1.0 ok" },
          { code: 550, text: "5.1.1 no b" },
          { code: 250, text: "2.1.0 ok" },
          { code: 251, text: "2.1.5 forwarded" }
        ])
        assert.strictEqual(
          server.written(),
          "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRSET\r\nEHLO client.test\r\n" +
            "MAIL FROM:<> BODY=8BITMIME RET=HDRS\r\nRCPT TO:<b@x.test> NOTIFY=NEVER\r\nQUIT\r\n"
        )
        clean(server)
      }),
      "mail rcpt options"
    ))

  it.effect("mail with SMTPUTF8 and the extension: UTF-8 commands until RSET", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "EHLO client.test", reply: "250-mx.test\r\n250 SMTPUTF8" },
            { expect: "MAIL FROM:<jörg@x.test> SMTPUTF8", reply: "250 ok" },
            { expect: "RCPT TO:<zoë@x.test>", reply: "250 ok" },
            { expect: "RSET", reply: "250 ok" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              yield* smtp.ehlo()
              yield* smtp.mail("jörg@x.test", ["SMTPUTF8"])
              yield* smtp.rcpt("zoë@x.test")
              yield* smtp.rset
              return yield* Effect.exit(smtp.rcpt("zoë@x.test"))
            })
        )
        assert.strictEqual((failure(result) as { _tag: string })._tag, "SmtpInvalidInput")
        assert.strictEqual(
          server.written(),
          "EHLO client.test\r\nMAIL FROM:<jörg@x.test> SMTPUTF8\r\nRCPT TO:<zoë@x.test>\r\nRSET\r\nQUIT\r\n"
        )
        clean(server)
      }),
      "mail smtputf8"
    ))

  it.effect("mail with SMTPUTF8 without the extension: SmtpNotSupportedError, no MAIL", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [{ expect: "EHLO client.test", reply: "250-mx.test\r\n250 8BITMIME" }, QUIT],
          (smtp) => Effect.zipRight(smtp.ehlo(), Effect.exit(smtp.mail("a@x.test", ["SMTPUTF8"])))
        )
        assert.deepStrictEqual(failure(result), {
          _tag: "SmtpNotSupportedError",
          feature: "SMTPUTF8",
          detail: "the mail options ask for SMTPUTF8"
        })
        assert.strictEqual(server.written(), "EHLO client.test\r\nQUIT\r\n")
        clean(server)
      }),
      "mail smtputf8 unsupported"
    ))

  it.effect("data(): DATA, the dot-stuffed message, CRLF.CRLF; the end-of-data reply whatever its code", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [
            { expect: "DATA", reply: "354 go ahead" },
            { expect: "..one\r\ntwo\r\n.\r\n", reply: "250 2.0.0 queued" },
            { expect: "DATA", reply: "354 go ahead" },
            { expect: "big\r\n.\r\n", reply: "552 5.3.4 too big" },
            QUIT
          ],
          (smtp) =>
            Effect.gen(function*() {
              const a = yield* smtp.data(".one\ntwo")
              const b = yield* smtp.data(new TextEncoder().encode("big\r\n"))
              return [a, b].map(plainReply)
            })
        )
        assert.deepStrictEqual(result, [{ code: 250, text: "2.0.0 queued" }, { code: 552, text: "5.3.4 too big" }])
        assert.strictEqual(
          server.written(),
          "DATA\r\n..one\r\ntwo\r\n.\r\nDATA\r\nbig\r\n.\r\nQUIT\r\n"
        )
        clean(server)
      }),
      "data"
    ))

  it.effect("data(): DATA not answered 354 is SmtpDataError; the message is not sent", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [{ expect: "DATA", reply: "503 5.5.1 need RCPT" }, { expect: "NOOP", reply: "250 ok" }, QUIT],
          (smtp) => Effect.exit(Effect.ensuring(smtp.data("hello"), Effect.ignore(smtp.noop)))
        )
        assert.deepStrictEqual(failure(result), {
          _tag: "SmtpDataError",
          code: 503,
          text: "5.5.1 need RCPT",
          enhancedCode: "5.5.1",
          command: "DATA"
        })
        assert.strictEqual(server.written(), "DATA\r\nNOOP\r\nQUIT\r\n")
        clean(server)
      }),
      "data refused"
    ))

  it.effect("data() with a non-ASCII string: SmtpInvalidInput before DATA", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session([QUIT], (smtp) => Effect.exit(smtp.data("naïve")))
        assert.strictEqual((failure(result) as { _tag: string })._tag, "SmtpInvalidInput")
        assert.strictEqual(server.written(), "QUIT\r\n")
        clean(server)
      }),
      "data non-ascii"
    ))
})

describe("quit and close", () => {
  it.effect("quit: the reply, the connection closed, no second QUIT from the Scope, later operations fail", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session(
          [{ expect: "QUIT", reply: "221 2.0.0 bye" }],
          (smtp) =>
            Effect.gen(function*() {
              const reply = plainReply(yield* smtp.quit)
              return { reply, closed: yield* smtp.isClosed, after: yield* Effect.exit(smtp.noop) }
            })
        )
        assert.deepStrictEqual(result.reply, { code: 221, text: "2.0.0 bye" })
        assert.isTrue(result.closed)
        // the error says why: quit closed the session (not "closed while sending NOOP")
        assert.deepStrictEqual(failure(result.after), {
          _tag: "SmtpServerDisconnected",
          during: "sending NOOP: the session was closed by quit"
        })
        assert.strictEqual(server.written(), "QUIT\r\n")
        assert.isTrue(server.connection(0).clientClosed())
        clean(server)
      }),
      "quit"
    ))

  it.effect("close: no QUIT, neither now nor from the Scope", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* session([], (smtp) =>
          Effect.gen(function*() {
            yield* smtp.close
            return yield* smtp.isClosed
          }))
        assert.isTrue(result)
        assert.strictEqual(server.written(), "")
        assert.isTrue(server.connection(0).clientClosed())
        clean(server)
      }),
      "close"
    ))
})

describe("defaults that fail fast and show themselves", () => {
  it.effect("a server that never greets fails after 30 s by default (TestClock)", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ greeting: [], steps: [] })
      const fiber = yield* Effect.fork(
        Effect.exit(Effect.scoped(SmtpClient.connect({ host: "mx.test", security: "none" }))).pipe(
          Effect.provide(server.layer)
        )
      )
      yield* TestClock.adjust("29 seconds")
      assert.isNull(fiber.unsafePoll(), "still waiting after 29 s")
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(fiber)
      const error = failure(exit) as { _tag: string; phase: string; timeoutMillis: number }
      assert.strictEqual(error._tag, "SmtpTimeout")
      assert.strictEqual(error.timeoutMillis, 30_000)
    }))

  it.effect("debug: 1 shows the transcript at the default minimum log level (Info)", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "NOOP", reply: "250 ok" }, { expect: "QUIT", reply: "221 bye" }]
      })
      const lines: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })
      yield* Effect.scoped(
        Effect.flatMap(SmtpClient.connect({ host: "mx.test", security: "none", debug: 1 }), (smtp) => smtp.noop)
      ).pipe(
        Effect.provide(server.layer),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Info)
      )
      assert.include(lines, "DEBUG C: NOOP")
      assert.include(lines, "DEBUG S: 250 ok")
    }))
})
