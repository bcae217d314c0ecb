/**
 * Server faults over the scripted transport: disconnections, malformed and over-long replies,
 * stalls (on the TestClock), a silent server at close, and replies cut into chunks or merged.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, TestClock } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import {
  connectOptions,
  ehloReply,
  guard,
  makeServer,
  modes,
  plainError,
  plainReply,
  type Server,
  utf8
} from "./support.js"

const QUIT = { expect: "QUIT", reply: "221 2.0.0 bye" }
const MESSAGE = "Subject: hi\r\n\r\nhello"
const BLOCK = "Subject: hi\r\n\r\nhello\r\n.\r\n"

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))) : "success"

/** Runs `f` on a session; returns its exit, whether the session was closed after it, and the server. */
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

/** Forks `f` on a session, moves the test clock by `steps` (in order), then joins. */
const runTimed = <A>(
  script: ScriptedTransport.Script,
  f: (smtp: SmtpConnection.Service) => Effect.Effect<A, unknown>,
  options: SmtpClient.Options,
  before: SmtpClient.Options["timeout"],
  after: SmtpClient.Options["timeout"]
) =>
  Effect.gen(function*() {
    const server = yield* makeServer(script)
    const fiber = yield* Effect.fork(
      Effect.scoped(
        Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(options)
          const exit = yield* Effect.exit(f(smtp))
          return { exit, closed: yield* smtp.isClosed }
        })
      ).pipe(Effect.provide(server.layer))
    )
    if (before !== undefined) yield* TestClock.adjust(before)
    const early = yield* Fiber.poll(fiber)
    if (after !== undefined) yield* TestClock.adjust(after)
    const { closed, exit } = yield* Fiber.join(fiber)
    return { exit, closed, server, doneEarly: Option.isSome(early) }
  })

const clean = (server: Server) => assert.deepStrictEqual(server.connection(0).mismatches(), [])

describe("the server goes away", () => {
  it.effect("closes in the middle of the EHLO reply: SmtpServerDisconnected, no QUIT", () =>
    guard(
      Effect.gen(function*() {
        const { closed, exit, server } = yield* run(
          { steps: [{ expect: "EHLO client.test", reply: ["250-mx.test\r\n250-SI"], close: true }] },
          (smtp) => smtp.ehloOrHeloIfNeeded
        )
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpServerDisconnected",
          during: "waiting for the reply to EHLO"
        })
        assert.isTrue(closed)
        assert.strictEqual(server.written(), "EHLO client.test\r\n")
        clean(server)
      }),
      "mid-reply"
    ))

  for (const mode of modes) {
    it.effect(`${mode}: closes right after MAIL without a reply: SmtpServerDisconnected, no RSET, no QUIT`, () =>
      guard(
        Effect.gen(function*() {
          const { closed, exit, server } = yield* run(
            {
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode) },
                { expect: "MAIL FROM:<a@x.test>", close: true }
              ]
            },
            (smtp) => smtp.sendmail("a@x.test", ["b@x.test", "c@x.test"], MESSAGE)
          )
          assert.deepStrictEqual(failure(exit), {
            _tag: "SmtpServerDisconnected",
            during: "waiting for the reply to MAIL"
          })
          assert.isTrue(closed)
          assert.strictEqual(
            server.written(),
            mode === "pipelined" ?
              "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n" :
              "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\n"
          )
          clean(server)
        }),
        "close after MAIL"
      ))

    it.effect(`${mode}: closes right after its 354: SmtpServerDisconnected, no QUIT`, () =>
      guard(
        Effect.gen(function*() {
          const { closed, exit, server } = yield* run(
            {
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode) },
                { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
                { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
                { expect: "DATA", reply: "354 go", close: true }
              ]
            },
            (smtp) => smtp.sendmail("a@x.test", "b@x.test", MESSAGE)
          )
          const error = failure(exit) as { _tag: string; during: string }
          assert.strictEqual(error._tag, "SmtpServerDisconnected")
          assert.isTrue(closed)
          assert.notInclude(server.written(), "QUIT")
          clean(server)
        }),
        "close after 354"
      ))
  }

  it.effect("closes while idle: the next command fails with SmtpServerDisconnected", () =>
    guard(
      Effect.gen(function*() {
        const { closed, exit, server } = yield* run(
          { steps: [{ expect: "NOOP", reply: "250 ok", close: true }] },
          (smtp) => Effect.zipRight(smtp.noop, smtp.rset)
        )
        const error = failure(exit) as { _tag: string; during: string }
        assert.strictEqual(error._tag, "SmtpServerDisconnected")
        assert.include(["sending RSET", "waiting for the reply to RSET"], error.during)
        assert.isTrue(closed)
        assert.notInclude(server.written(), "QUIT")
      }),
      "idle close"
    ))
})

describe("broken replies", () => {
  for (
    const [name, reply, line] of [
      ["no code", "hello", "hello"],
      ["a code out of range", "999 what", "999 what"],
      ["codes that differ between lines", "250-first\r\n251 second", undefined],
      ["no separator after the code", "250x", undefined]
    ] as const
  ) {
    it.effect(`a malformed reply (${name}): SmtpProtocolError, the connection closed, no QUIT`, () =>
      guard(
        Effect.gen(function*() {
          const { closed, exit, server } = yield* run(
            { steps: [{ expect: "NOOP", reply }] },
            (smtp) => smtp.noop
          )
          const error = failure(exit) as { _tag: string; reason: string; line?: string }
          assert.strictEqual(error._tag, "SmtpProtocolError")
          assert.match(error.reason, /^Malformed reply/)
          if (line !== undefined) assert.strictEqual(error.line, line)
          assert.isTrue(closed)
          assert.strictEqual(server.written(), "NOOP\r\n")
        }),
        name
      ))
  }

  const long = (n: number) => `250 ${"x".repeat(n - 6)}\r\n`
  it.effect("a reply line of exactly 8192 bytes (CRLF included) is accepted", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* run(
          { steps: [{ expect: "NOOP", reply: long(8192) }, QUIT] },
          (smtp) => smtp.noop
        )
        assert.strictEqual(Exit.isSuccess(exit) ? exit.value.text.length : -1, 8186)
        assert.strictEqual(server.written(), "NOOP\r\nQUIT\r\n")
      }),
      "8192"
    ))

  for (
    const [name, reply] of [
      ["8193 bytes in one chunk", long(8193)],
      ["9000 bytes in one chunk", long(9000)],
      ["8193 bytes split over chunks", [long(8193).slice(0, 5000), long(8193).slice(5000)]],
      ["no line end after 8193 bytes", [`250 ${"x".repeat(8189)}`]]
    ] as const
  ) {
    it.effect(`a reply line over 8192 bytes (${name}): SmtpResponseException 500 "Line too long."`, () =>
      guard(
        Effect.gen(function*() {
          const { closed, exit, server } = yield* run({ steps: [{ expect: "NOOP", reply }] }, (smtp) => smtp.noop)
          assert.deepStrictEqual(failure(exit), { _tag: "SmtpResponseException", code: 500, text: "Line too long." })
          assert.isTrue(closed)
          assert.strictEqual(server.written(), "NOOP\r\n")
        }),
        name
      ))
  }
})

describe("stalls (TestClock)", () => {
  it.effect("a stalled NOOP with timeout 5 s: SmtpTimeout at 5 s, not before; closed, no QUIT", () =>
    guard(
      Effect.gen(function*() {
        const { closed, doneEarly, exit, server } = yield* runTimed(
          { steps: [{ expect: "NOOP" }] },
          (smtp) => smtp.noop,
          { ...connectOptions, timeout: "5 seconds" },
          "4999 millis",
          "1 milli"
        )
        assert.isFalse(doneEarly)
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpTimeout",
          phase: "waiting for the reply to NOOP",
          timeoutMillis: 5000
        })
        assert.isTrue(closed)
        assert.strictEqual(server.written(), "NOOP\r\n")
        assert.isTrue(server.connection(0).clientClosed())
      }),
      "noop stall"
    ))

  for (const mode of modes) {
    it.effect(`${mode}: sendmail stalled at RCPT with timeout 5 s: SmtpTimeout naming RCPT`, () =>
      guard(
        Effect.gen(function*() {
          const { closed, exit, server } = yield* runTimed(
            {
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode) },
                { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
                { expect: "RCPT TO:<b@x.test>" },
                // pipelined, DATA went with the RCPT: the stalled server does not answer it either
                ...(mode === "pipelined" ? [{ expect: "DATA" }] : [])
              ]
            },
            (smtp) => smtp.sendmail("a@x.test", "b@x.test", MESSAGE),
            { ...connectOptions, timeout: "5 seconds" },
            undefined,
            "5 seconds"
          )
          assert.deepStrictEqual(failure(exit), {
            _tag: "SmtpTimeout",
            phase: "waiting for the reply to RCPT",
            timeoutMillis: 5000
          })
          assert.isTrue(closed)
          assert.notInclude(server.written(), "QUIT")
        }),
        "rcpt stall"
      ))
  }

  it.effect("a stalled greeting with timeout 5 s: SmtpTimeout naming the greeting", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* runTimed(
          { greeting: [], steps: [] },
          () => Effect.void,
          { ...connectOptions, timeout: "5 seconds" },
          undefined,
          "5 seconds"
        ).pipe(Effect.catchAllDefect(Effect.die), Effect.exit, Effect.map((exit) => ({ exit, server: undefined })))
        assert.isUndefined(server)
        // connect itself fails: the error surfaces from the forked scoped effect
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        assert.deepStrictEqual(plainError(error), {
          _tag: "SmtpTimeout",
          phase: "waiting for the reply to <greeting>",
          timeoutMillis: 5000
        })
      }),
      "greeting stall"
    ))

  for (
    const [name, steps, timeoutMillis] of [
      ["MAIL waits 5 minutes", [{ expect: "MAIL FROM:<a@x.test>" }], 300_000],
      [
        "DATA waits 2 minutes",
        [{ expect: "MAIL FROM:<a@x.test>", reply: "250 ok" }, { expect: "RCPT TO:<b@x.test>", reply: "250 ok" }, {
          expect: "DATA"
        }],
        120_000
      ],
      [
        "the end of data waits 10 minutes",
        [
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: BLOCK }
        ],
        600_000
      ]
    ] as const
  ) {
    it.effect(`without a timeout option, RFC 5321 limits: ${name}`, () =>
      guard(
        Effect.gen(function*() {
          const { doneEarly, exit } = yield* runTimed(
            { steps: [{ expect: "EHLO client.test", reply: ehloReply("unpipelined") }, ...steps] },
            (smtp) => smtp.sendmail("a@x.test", "b@x.test", MESSAGE),
            connectOptions,
            `${timeoutMillis - 1} millis`,
            "1 milli"
          )
          assert.isFalse(doneEarly)
          const error = failure(exit) as { _tag: string; timeoutMillis: number; cause?: unknown }
          // after the final dot, a timeout means the message may have been accepted
          const timeout = error._tag === "SmtpDeliveryUnknown" ? error.cause as typeof error : error
          assert.strictEqual(error._tag, steps.length === 4 ? "SmtpDeliveryUnknown" : "SmtpTimeout")
          assert.strictEqual(timeout._tag, "SmtpTimeout")
          assert.strictEqual(timeout.timeoutMillis, timeoutMillis)
        }),
        name
      ))
  }

  for (
    const [name, options, wait] of [
      ["the default closeTimeout (5 s)", connectOptions, "5 seconds"],
      ["closeTimeout: 1 second", { ...connectOptions, closeTimeout: "1 second" }, "1 second"],
      ["timeout: 2 seconds caps the close", { ...connectOptions, timeout: "2 seconds" }, "2 seconds"]
    ] as const
  ) {
    it.effect(`closing the Scope against a silent server does not hang: ${name}`, () =>
      guard(
        Effect.gen(function*() {
          const { doneEarly, exit, server } = yield* runTimed(
            { steps: [{ expect: "NOOP", reply: "250 ok" }, { expect: "QUIT" }] },
            (smtp) => smtp.noop,
            options,
            undefined,
            wait
          )
          assert.isFalse(doneEarly)
          assert.isTrue(Exit.isSuccess(exit))
          assert.strictEqual(server.written(), "NOOP\r\nQUIT\r\n")
          assert.isTrue(server.connection(0).clientClosed())
          clean(server)
        }),
        name
      ))
  }
})

describe("replies and chunks", () => {
  it.effect("an EHLO reply split across chunks: [\"250-mx\", \".test\\r\\n250 PIPELINING\\r\\n\"]", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* run(
          { steps: [{ expect: "EHLO client.test", reply: ["250-mx", ".test\r\n250 PIPELINING\r\n"] }, QUIT] },
          (smtp) =>
            Effect.gen(function*() {
              const reply = plainReply(yield* smtp.ehlo())
              return { reply, pipelining: yield* smtp.hasExtn("pipelining") }
            })
        )
        assert.deepStrictEqual(Exit.getOrElse(exit, () => undefined), {
          reply: { code: 250, text: "mx.test\nPIPELINING" },
          pipelining: true
        })
        clean(server)
      }),
      "split ehlo"
    ))

  it.effect("a reply split at every byte, bare LF line ends, a UTF-8 character split", () =>
    guard(
      Effect.gen(function*() {
        const bytes = utf8("250-mx.test grüßt\n250 SIZE 100\n")
        const chunks = Array.from(bytes, (b) => new Uint8Array([b]))
        const { exit, server } = yield* run(
          { steps: [{ expect: "EHLO client.test", reply: chunks }, QUIT] },
          (smtp) => Effect.map(smtp.ehlo(), plainReply)
        )
        assert.deepStrictEqual(Exit.getOrElse(exit, () => undefined), { code: 250, text: "mx.test grüßt\nSIZE 100" })
        clean(server)
      }),
      "bytewise"
    ))

  it.effect("pipelined: the replies to MAIL and both RCPTs in one chunk", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* run(
          {
            steps: [
              { expect: "EHLO client.test", reply: ["250-mx.test\r\n", "250 PIPELINING\r\n"] },
              { expect: "MAIL FROM:<a@x.test>", reply: ["250 2.1.0 ok\r\n250 2.1.5 b ok\r\n550 5.1.1 no c\r\n"] },
              { expect: "RCPT TO:<b@x.test>" },
              { expect: "RCPT TO:<c@x.test>" },
              { expect: "DATA", reply: ["354 go", " ahead\r\n"] },
              { expect: BLOCK, reply: ["250 2.0.0 queued\r\n"] },
              QUIT
            ]
          },
          (smtp) => smtp.sendmail("a@x.test", ["b@x.test", "c@x.test"], MESSAGE)
        )
        assert.isTrue(Exit.isSuccess(exit))
        if (Exit.isSuccess(exit)) {
          assert.deepStrictEqual(Object.keys(exit.value), ["c@x.test"])
          assert.deepStrictEqual(plainReply(exit.value["c@x.test"]), { code: 550, text: "5.1.1 no c" })
        }
        assert.strictEqual(
          server.written(),
          "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n" +
            `${BLOCK}QUIT\r\n`
        )
        clean(server)
      }),
      "merged replies"
    ))

  it.effect("a multi-line reply whose lines arrive in separate chunks with a pause between", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [{ expect: "HELP", reply: ["214-one\r\n", "214-two\r\n", "214 three\r\n"] }, QUIT]
        })
        const reply = yield* Effect.scoped(
          Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            yield* server.hold((chunk) => chunk.startsWith("214-two"))
            const fiber = yield* Effect.fork(smtp.help())
            for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
            assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
            yield* server.release
            return yield* Fiber.join(fiber)
          })
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainReply(reply), { code: 214, text: "one\ntwo\nthree" })
        clean(server)
      }),
      "paused lines"
    ))
})
