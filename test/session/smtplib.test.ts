/**
 * Where smtplib's behaviour was followed or deliberately left, over the scripted transport,
 * byte-exact: reply codes 100..599 (a greeting that is not 220, 1yz replies), the raw bytes of a
 * reply that is not UTF-8, a reply cut off by the end of the stream, and a timeout that bounds a
 * whole reply.
 */
import type { Socket } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import { SmtpClient, type SmtpConnection, SmtpTransport } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import { connectOptions, eventually, guard, makeServer, plainError, plainReply } from "./support.js"

const QUIT = { expect: "QUIT", reply: "221 2.0.0 bye" }

/** One byte per character (U+0000..U+00FF): the ISO-8859-1 encoding. */
const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))) : "success"

/** Runs `f` on a session; its exit, whether the session was closed after it, and the server. */
const run = <A>(
  script: ScriptedTransport.Script,
  f: (smtp: SmtpConnection.Service) => Effect.Effect<A, unknown>,
  options: SmtpClient.Options = connectOptions
) =>
  Effect.gen(function*() {
    const server = yield* makeServer(script)
    const { closed, exit } = yield* Effect.scoped(
      Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(options)
        const exit = yield* Effect.exit(f(smtp))
        return { exit, closed: yield* smtp.isClosed }
      })
    ).pipe(Effect.provide(server.layer))
    return { exit, closed, server }
  })

describe("reply codes 100..599", () => {
  it.effect("a 199 greeting: SmtpConnectError with its code and text, nothing written, closed", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({ greeting: "199 no hello for you!", steps: [] })
        const exit = yield* Effect.exit(Effect.scoped(SmtpClient.connect(connectOptions))).pipe(
          Effect.provide(server.layer)
        )
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpConnectError",
          address: "mx.test:25",
          code: 199,
          text: "no hello for you!"
        })
        assert.strictEqual(server.written(), "")
        assert.isTrue(server.connection(0).clientClosed())
      }),
      "199 greeting"
    ))

  it.effect("a 1yz reply to NOOP or docmd is returned as a reply; the session goes on", () =>
    guard(
      Effect.gen(function*() {
        const { closed, exit, server } = yield* run(
          {
            steps: [
              { expect: "NOOP", reply: "199 wait" },
              { expect: "XWAIT", reply: "100-a\r\n100 b" },
              { expect: "NOOP", reply: "250 ok" },
              QUIT
            ]
          },
          (smtp) =>
            Effect.map(
              Effect.all([smtp.noop, smtp.docmd("XWAIT"), smtp.noop]),
              (replies) => replies.map((r) => ({ ...plainReply(r), preliminary: r.isPreliminary }))
            )
        )
        assert.deepStrictEqual(Exit.getOrElse(exit, () => undefined), [
          { code: 199, text: "wait", preliminary: true },
          { code: 100, text: "a\nb", preliminary: true },
          { code: 250, text: "ok", preliminary: false }
        ])
        assert.isFalse(closed)
        assert.strictEqual(server.written(), "NOOP\r\nXWAIT\r\nNOOP\r\nQUIT\r\n")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "1yz to noop"
    ))

  it.effect("sendmail: MAIL answered 1yz is SmtpSenderRefused (smtplib accepts only 250), then RSET", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* run(
          {
            steps: [
              { expect: "EHLO client.test", reply: "250 mx.test" },
              { expect: "MAIL FROM:<a@x.test>", reply: "150 go on" },
              { expect: "RSET", reply: "250 ok" },
              QUIT
            ]
          },
          (smtp) => smtp.sendmail("a@x.test", ["b@x.test"], "Subject: hi\r\n\r\nhello")
        )
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpSenderRefused",
          code: 150,
          text: "go on",
          command: "MAIL",
          sender: "a@x.test"
        })
        assert.strictEqual(server.written(), "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRSET\r\nQUIT\r\n")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "mail 1yz"
    ))

  it.effect("sendmail: RCPT answered 1yz is a refused recipient", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* run(
          {
            steps: [
              { expect: "EHLO client.test", reply: "250 mx.test" },
              { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
              { expect: "RCPT TO:<b@x.test>", reply: "150 hmm" },
              { expect: "RCPT TO:<c@x.test>", reply: "250 ok" },
              { expect: "DATA", reply: "354 go" },
              { expect: "Subject: hi\r\n\r\nhello\r\n.\r\n", reply: "250 queued" },
              QUIT
            ]
          },
          (smtp) => smtp.sendmail("a@x.test", ["b@x.test", "c@x.test"], "Subject: hi\r\n\r\nhello")
        )
        assert.deepStrictEqual(
          Exit.getOrElse(Exit.map(exit, (refused) => Object.keys(refused).map((k) => [k, refused[k].code])), () => []),
          [["b@x.test", 150]]
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "rcpt 1yz"
    ))
})

describe("raw bytes of a reply", () => {
  it.effect("a Latin-1 NOOP reply: the text has U+FFFD, the raw bytes are as received and decode as Latin-1", () =>
    guard(
      Effect.gen(function*() {
        // "250-2.0.0 Grüße\r\n250 2.0.0 ÿþ ok\r\n" in ISO-8859-1
        const wire = latin1("250-2.0.0 Gr\xfc\xdfe\r\n250 2.0.0 \xff\xfe ok\r\n")
        const { exit, server } = yield* run(
          { steps: [{ expect: "NOOP", reply: [wire.subarray(0, 14), wire.subarray(14)] }, QUIT] },
          (smtp) => smtp.noop
        )
        assert.isTrue(Exit.isSuccess(exit))
        const reply = Exit.isSuccess(exit) ? exit.value : undefined
        assert.strictEqual(reply?.code, 250)
        assert.deepStrictEqual(reply?.lines, ["2.0.0 Gr\uFFFD\uFFFDe", "2.0.0 \uFFFD\uFFFD ok"])
        assert.deepStrictEqual(reply?.raw, wire)
        assert.deepStrictEqual(reply?.decodeLines(new TextDecoder("latin1")), ["2.0.0 Grüße", "2.0.0 ÿþ ok"])
        assert.strictEqual(reply?.enhancedCode, "2.0.0")
        assert.strictEqual(server.written(), "NOOP\r\nQUIT\r\n")
      }),
      "latin-1 noop"
    ))

  it.effect("the greeting keeps its raw bytes too", () =>
    guard(
      Effect.gen(function*() {
        const greeting = latin1("220 mx.test caf\xe9\r\n")
        const { exit } = yield* run({ greeting: [greeting], steps: [QUIT] }, (smtp) => Effect.succeed(smtp.greeting))
        const reply = Exit.isSuccess(exit) ? exit.value : undefined
        assert.strictEqual(reply?.text, "mx.test caf\uFFFD")
        assert.deepStrictEqual(reply?.raw, greeting)
        assert.strictEqual(reply?.decodeText(new TextDecoder("latin1")), "mx.test café")
      }),
      "latin-1 greeting"
    ))
})

describe("deliberate differences", () => {
  it.effect("a last reply line cut off by the end of the stream is a disconnection (smtplib returns it)", () =>
    guard(
      Effect.gen(function*() {
        const { closed, exit, server } = yield* run(
          { steps: [{ expect: "NOOP", reply: ["250 ok"], close: true }] },
          (smtp) => smtp.noop
        )
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpServerDisconnected",
          during: "waiting for the reply to NOOP"
        })
        assert.isTrue(closed)
        assert.strictEqual(server.written(), "NOOP\r\n")
      }),
      "cut off"
    ))

  /** A session with timeout 5 s running HELP, whose reply the test hands to the client's reader. */
  const helpWithInjectedReply = Effect.gen(function*() {
    // the reply to HELP is injected by the test, and what follows is not scripted
    const server = yield* makeServer({ steps: [{ expect: "HELP" }], strict: false })
    let handler: ((chunk: Uint8Array) => unknown) | undefined
    const inner = yield* Effect.provide(SmtpTransport.SmtpTransport, server.layer)
    const wrap = (connection: SmtpTransport.Connection): SmtpTransport.Connection => ({
      ...connection,
      socket: {
        ...connection.socket,
        run: (h: (chunk: Uint8Array) => unknown, o?: unknown) => {
          handler = h
          return (connection.socket.run as (h: unknown, o: unknown) => unknown)(h, o)
        }
      } as Socket.Socket
    })
    const layer = Layer.succeed(
      SmtpTransport.SmtpTransport,
      SmtpTransport.SmtpTransport.of({ ...inner, connect: (options) => Effect.map(inner.connect(options), wrap) })
    )
    const fiber = yield* Effect.fork(
      Effect.scoped(
        Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "5 seconds" })
          const exit = yield* Effect.exit(smtp.help())
          return { exit, closed: yield* smtp.isClosed }
        })
      ).pipe(Effect.provide(layer))
    )
    // the greeting has been read and HELP written: the next bytes are the reply to HELP
    yield* eventually(() => handler !== undefined && server.written() === "HELP\r\n", "HELP written")
    const inject = (text: string) => Effect.sync(() => handler?.(new TextEncoder().encode(text)))
    return { fiber, inject, server }
  })

  it.effect("the timeout bounds a whole reply: bytes arriving within it do not extend it (smtplib's is per read)", () =>
    guard(
      Effect.gen(function*() {
        const { fiber, inject, server } = yield* helpWithInjectedReply
        yield* inject("214-one\r\n")
        yield* TestClock.adjust("3 seconds")
        yield* inject("214-two\r\n")
        yield* TestClock.adjust("1999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "not before 5 s")
        yield* TestClock.adjust("1 milli")
        const { closed, exit } = yield* Fiber.join(fiber)
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpTimeout",
          phase: "waiting for the reply to HELP",
          timeoutMillis: 5000
        })
        assert.isTrue(closed)
        assert.strictEqual(server.written(), "HELP\r\n")
      }),
      "whole reply timeout"
    ))

  it.effect("the same reply completed within the timeout is the result (the bytes do reach the reader)", () =>
    guard(
      Effect.gen(function*() {
        const { fiber, inject } = yield* helpWithInjectedReply
        yield* inject("214-one\r\n")
        yield* TestClock.adjust("3 seconds")
        yield* inject("214 two\r\n")
        yield* TestClock.adjust("1999 millis")
        const { closed, exit } = yield* Fiber.join(fiber)
        assert.deepStrictEqual(Exit.map(exit, plainReply), Exit.succeed({ code: 214, text: "one\ntwo" }))
        assert.isFalse(closed)
      }),
      "whole reply in time"
    ))
})
