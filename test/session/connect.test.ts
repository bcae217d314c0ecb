/**
 * SmtpClient.connect over the scripted transport: the greeting, host/port parsing, option
 * checks and refused connections.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Option } from "effect"
import { SmtpClient, SmtpTransport } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import { connectOptions, guard, makeServer, plainError, plainReply, utf8 } from "./support.js"

const QUIT = { expect: "QUIT", reply: "221 2.0.0 bye" }

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))) : "success"

const connectWith = (options: SmtpClient.Options, ...scripts: ReadonlyArray<ScriptedTransport.Script>) =>
  Effect.gen(function*() {
    const server = yield* makeServer(...scripts)
    const exit = yield* Effect.exit(
      Effect.scoped(Effect.map(SmtpClient.connect(options), (smtp) => plainReply(smtp.greeting)))
    ).pipe(Effect.provide(server.layer))
    return { exit, server }
  })

describe("connect: the greeting", () => {
  it.effect("220: the session, with the greeting; QUIT when the Scope closes", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* connectWith(connectOptions, { steps: [QUIT] })
        assert.deepStrictEqual(Exit.getOrElse(exit, () => undefined), { code: 220, text: "mx.test ESMTP scripted" })
        assert.strictEqual(server.written(), "QUIT\r\n")
        assert.isTrue(server.connection(0).clientClosed())
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "220"
    ))

  it.effect("554 greeting: SmtpConnectError with code, text and enhanced code; nothing written, closed", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* connectWith(connectOptions, {
          greeting: "554 5.7.1 no service for you",
          steps: []
        })
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpConnectError",
          address: "mx.test:25",
          code: 554,
          text: "5.7.1 no service for you",
          enhancedCode: "5.7.1"
        })
        assert.strictEqual(server.written(), "")
        assert.isTrue(server.connection(0).clientClosed())
      }),
      "554"
    ))

  it.effect("421 multi-line greeting: SmtpConnectError with the joined text", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* connectWith(connectOptions, {
          greeting: "421-mx.test busy\r\n421 try later",
          steps: []
        })
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpConnectError",
          address: "mx.test:25",
          code: 421,
          text: "mx.test busy\ntry later"
        })
        assert.strictEqual(server.written(), "")
      }),
      "421"
    ))

  it.effect("a multi-line greeting split over several chunks (inside a line, inside a UTF-8 character)", () =>
    guard(
      Effect.gen(function*() {
        const e = utf8("é")
        const { exit, server } = yield* connectWith(connectOptions, {
          greeting: ["22", "0-mx.test caf", e.subarray(0, 1), e.subarray(1), "\r\n220", " ESMTP ready\r", "\n"],
          steps: [QUIT]
        })
        assert.deepStrictEqual(Exit.getOrElse(exit, () => undefined), {
          code: 220,
          text: "mx.test café\nESMTP ready"
        })
        assert.strictEqual(server.written(), "QUIT\r\n")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "split greeting"
    ))

  it.effect("the session works after a split greeting", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          greeting: ["220-first\r\n", "220 second\r\n"],
          steps: [{ expect: "NOOP", reply: "250 ok" }, QUIT]
        })
        const reply = yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.noop)
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainReply(reply), { code: 250, text: "ok" })
        assert.strictEqual(server.written(), "NOOP\r\nQUIT\r\n")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "after split greeting"
    ))

  it.effect("localHostname is the EHLO name", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({ steps: [{ expect: "EHLO my.host.test", reply: "250 ok" }, QUIT] })
        yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect({ ...connectOptions, localHostname: "my.host.test" }),
            (smtp) => smtp.ehloOrHeloIfNeeded
          )
        ).pipe(Effect.provide(server.layer))
        assert.strictEqual(server.written(), "EHLO my.host.test\r\nQUIT\r\n")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "local hostname"
    ))
})

describe("connect: options", () => {
  it.effect("without a localHostname the transport's lookup is started before the dial; with one, never", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer(
          { steps: [{ expect: "EHLO client.test", reply: "250 mx.test" }, QUIT] },
          { steps: [{ expect: "EHLO given.test", reply: "250 mx.test" }, QUIT] }
        )
        const calls: Array<string> = []
        // the scripted transport, recording when its lookup is started and when it dials
        const recording = Layer.effect(
          SmtpTransport.SmtpTransport,
          Effect.map(SmtpTransport.SmtpTransport, (transport) => ({
            ...transport,
            prefetchLocalHostname: () => calls.push("prefetch"),
            connect: (options: SmtpTransport.ConnectOptions) => {
              calls.push("connect")
              return transport.connect(options)
            }
          }))
        ).pipe(Layer.provide(server.layer))
        yield* Effect.scoped(Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.ehlo()))
          .pipe(Effect.provide(recording))
        assert.deepStrictEqual(calls, ["prefetch", "connect"])
        yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect({ ...connectOptions, localHostname: "given.test" }), (smtp) => smtp.ehlo())
        ).pipe(Effect.provide(recording))
        assert.deepStrictEqual(calls, ["prefetch", "connect", "connect"])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.deepStrictEqual(server.connection(1).mismatches(), [])
      }),
      "prefetch"
    ))

  it.effect("\"host:port\" is split when no port is given", () =>
    guard(
      Effect.gen(function*() {
        const { exit, server } = yield* connectWith({ host: "mx.test:2525", security: "none" }, { steps: [QUIT] })
        assert.isTrue(Exit.isSuccess(exit))
        const options = server.connection(0).connectOptions
        assert.strictEqual(options.host, "mx.test")
        assert.strictEqual(options.port, 2525)
      }),
      "host:port"
    ))

  it.effect("the address in SmtpConnectError is host:port as parsed", () =>
    guard(
      Effect.gen(function*() {
        const { exit } = yield* connectWith({ host: "mx.test:2525", security: "none" }, {
          greeting: "554 no",
          steps: []
        })
        assert.deepStrictEqual(failure(exit), {
          _tag: "SmtpConnectError",
          address: "mx.test:2525",
          code: 554,
          text: "no"
        })
      }),
      "address"
    ))

  it.effect("an explicit port wins over \"host:port\" (the host is left alone, as smtplib)", () =>
    guard(
      Effect.gen(function*() {
        const { server } = yield* connectWith({ host: "mx.test:2525", port: 587, security: "none" }, {
          steps: [QUIT]
        })
        const options = server.connection(0).connectOptions
        assert.strictEqual(options.host, "mx.test:2525")
        assert.strictEqual(options.port, 587)
      }),
      "explicit port"
    ))

  it.effect("an IPv6 literal (several colons) is not split; defaults are localhost:25", () =>
    guard(
      Effect.gen(function*() {
        const { server } = yield* connectWith({ host: "::1", security: "none" }, { steps: [QUIT] }, { steps: [QUIT] })
        assert.strictEqual(server.connection(0).connectOptions.host, "::1")
        assert.strictEqual(server.connection(0).connectOptions.port, 25)
        const second = yield* Effect.scoped(SmtpClient.connect({ security: "none" })).pipe(
          Effect.provide(server.layer),
          Effect.exit
        )
        assert.isTrue(Exit.isSuccess(second))
        assert.strictEqual(server.connection(1).connectOptions.host, "localhost")
        assert.strictEqual(server.connection(1).connectOptions.port, 25)
      }),
      "ipv6"
    ))

  it.effect("the timeout goes to the transport; 30 s by default", () =>
    guard(
      Effect.gen(function*() {
        const { server } = yield* connectWith(
          { ...connectOptions, timeout: "7 seconds" },
          { steps: [QUIT] },
          { steps: [QUIT] }
        )
        assert.strictEqual(Duration.toMillis(server.connection(0).connectOptions.timeout), 7000)
        yield* Effect.scoped(SmtpClient.connect(connectOptions)).pipe(Effect.provide(server.layer))
        assert.strictEqual(Duration.toMillis(server.connection(1).connectOptions.timeout), 30000)
      }),
      "timeout option"
    ))

  it.effect("sourceAddress goes to the transport", () =>
    guard(
      Effect.gen(function*() {
        const { server } = yield* connectWith(
          { ...connectOptions, sourceAddress: { host: "192.0.2.7", port: 40000 } },
          { steps: [QUIT] }
        )
        assert.deepStrictEqual(server.connection(0).connectOptions.sourceAddress, { host: "192.0.2.7", port: 40000 })
      }),
      "source address"
    ))

  for (
    const [name, options] of [
      ["a non-numeric port in \"host:port\"", { host: "mx.test:smtp" }],
      ["an empty port in \"host:\"", { host: "mx.test:" }],
      ["a port over 65535 in \"host:port\"", { host: "mx.test:70000" }],
      ["a port over 65535", { host: "mx.test", port: 65536 }],
      ["a fractional port", { host: "mx.test", port: 25.5 }],
      ["timeout: 0", { host: "mx.test", timeout: 0 }],
      ["timeout: \"0 seconds\"", { host: "mx.test", timeout: "0 seconds" }],
      ["timeout: Duration.zero", { host: "mx.test", timeout: Duration.zero }]
    ] as const
  ) {
    it.effect(`${name}: SmtpInvalidInput, no connection`, () =>
      guard(
        Effect.gen(function*() {
          const { exit, server } = yield* connectWith({ ...options, security: "none" }, { steps: [] })
          assert.strictEqual((failure(exit) as { _tag: string })._tag, "SmtpInvalidInput")
          assert.strictEqual(server.scripted.connections().length, 0)
        }),
        name
      ))
  }

  it.effect("a refused connection: SmtpConnectError with the address and the cause", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({ refuse: true, steps: [] })
        const exit = yield* Effect.exit(Effect.scoped(SmtpClient.connect(connectOptions))).pipe(
          Effect.provide(server.layer)
        )
        assert.deepStrictEqual(failure(exit), { _tag: "SmtpConnectError", address: "mx.test:25" })
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        assert.instanceOf((error as { cause?: unknown } | undefined)?.cause, Error)
        assert.include(String((error as { cause?: Error }).cause?.message), "ECONNREFUSED")
        assert.strictEqual(server.written(), "")
      }),
      "refused"
    ))
})
