/**
 * LMTP (RFC 2033) over the scripted transport, byte-exact: LHLO and no HELO fallback, the
 * connect defaults (port 2003, Unix sockets), and one reply per accepted recipient after the data,
 * in RCPT order, turned into a per-recipient `Delivery`. One table runs on the pipelined and the
 * unpipelined paths; BDAT (CHUNKING) and the timeouts have their own tests.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Exit, Fiber, Option, Stream, TestClock } from "effect"
import { Message, SmtpClient } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import {
  eventually,
  guard,
  makeServer,
  type Mode,
  modes,
  plainError,
  type Server,
  utf8,
  withinRealTime
} from "../session/support.js"
import {
  bdatUnits,
  codeOf,
  encoded,
  failureOf,
  helloReply,
  lmtpOptions,
  type PlainDelivery,
  plainDelivery,
  textOfSize
} from "./support.js"

type Reply = ScriptedTransport.Reply

const MESSAGE = "Subject: hi\r\n\r\nhello"
const BLOCK = "Subject: hi\r\n\r\nhello\r\n.\r\n"
/** The message as one BDAT LAST: CRLF appended, as DATA's terminator would. */
const BDAT_UNIT = "BDAT 22 LAST\r\nSubject: hi\r\n\r\nhello\r\n"
const OK = "250 2.1.0 ok"
const GO = "354 go ahead"
const LHLO = "LHLO client.test"

const b = "b@x.test"
const c = "c@x.test"
const d = "d@x.test"
const rcptLine = (r: string) => `RCPT TO:<${r}>`

const delivered = (recipient: string, code: number, text: string) =>
  ({ recipient, status: "delivered", stage: "data", reply: { code, text } }) as const
const refusedAt = (stage: "rcpt" | "data", recipient: string, code: number, text: string) =>
  ({ recipient, status: "refused", stage, reply: { code, text } }) as const
const unknown = (recipient: string) => ({ recipient, status: "unknown", stage: "data", reply: undefined }) as const

const disconnected = { _tag: "SmtpServerDisconnected", during: "waiting for the reply to <end of data>" }
/** A failure after the end of data: the outcome is unknown, with that failure as the cause. */
const unknownAfter = (
  cause: { readonly _tag: string; readonly during?: string; readonly phase?: string; readonly timeoutMillis?: number }
) => ({
  _tag: "SmtpDeliveryUnknown",
  during: cause.during ?? cause.phase,
  cause
})

interface LmtpCase {
  readonly name: string
  readonly to: ReadonlyArray<string>
  readonly mail?: Reply
  readonly rcpts: ReadonlyArray<Reply>
  /** The reply to DATA on the pipelined path (default 354 when a recipient was accepted, else 503). */
  readonly data?: Reply
  /** The replies after the data (all of them, as the server sends them). */
  readonly finals?: Reply
  /** The server closes the connection after `finals`. */
  readonly closeAfterFinals?: boolean
  readonly outcome: { readonly delivery: PlainDelivery } | { readonly error: Record<string, unknown> }
}

const cases: ReadonlyArray<LmtpCase> = [
  {
    name: "mixed results: delivered, refused at RCPT (550), refused after the data (552), in the given order",
    to: [b, c, d],
    rcpts: [OK, "550 5.1.1 <c@x.test> no such user", OK],
    finals: "250 2.0.0 <b@x.test> delivered\r\n552 5.2.2 <d@x.test> mailbox full",
    outcome: {
      delivery: {
        recipients: [
          delivered(b, 250, "2.0.0 <b@x.test> delivered"),
          refusedAt("rcpt", c, 550, "5.1.1 <c@x.test> no such user"),
          refusedAt("data", d, 552, "5.2.2 <d@x.test> mailbox full")
        ],
        delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" } },
        refused: {
          [c]: { code: 550, text: "5.1.1 <c@x.test> no such user" },
          [d]: { code: 552, text: "5.2.2 <d@x.test> mailbox full" }
        },
        unknown: [],
        interruption: undefined
      }
    }
  },
  {
    name: "the per-recipient replies split across chunks (one cut in mid-line) and multi-line",
    to: [b, c, d],
    rcpts: [OK, OK, OK],
    finals: [
      "250 2.0.0 <b@x.test> deliv",
      "ered\r\n452-4.2.2 <c@x.test> over quota\r\n452 4.2",
      ".2 try later\r\n250 ok d\r\n"
    ],
    outcome: {
      delivery: {
        recipients: [
          delivered(b, 250, "2.0.0 <b@x.test> delivered"),
          refusedAt("data", c, 452, "4.2.2 <c@x.test> over quota\n4.2.2 try later"),
          delivered(d, 250, "ok d")
        ],
        delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" }, [d]: { code: 250, text: "ok d" } },
        refused: { [c]: { code: 452, text: "4.2.2 <c@x.test> over quota\n4.2.2 try later" } },
        unknown: [],
        interruption: undefined
      }
    }
  },
  {
    name: "every recipient delivered",
    to: [b, c],
    rcpts: [OK, OK],
    finals: "250 2.0.0 <b@x.test> ok\r\n250 2.0.0 <c@x.test> ok",
    outcome: {
      delivery: {
        recipients: [delivered(b, 250, "2.0.0 <b@x.test> ok"), delivered(c, 250, "2.0.0 <c@x.test> ok")],
        delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> ok" }, [c]: { code: 250, text: "2.0.0 <c@x.test> ok" } },
        refused: {},
        unknown: [],
        interruption: undefined
      }
    }
  },
  {
    name: "all accepted at RCPT, all refused after the data: SmtpRecipientsRefused with the data replies",
    to: [b, c],
    rcpts: [OK, OK],
    finals: "552 5.2.2 <b@x.test> mailbox full\r\n450 4.2.0 <c@x.test> try later",
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: {
          [b]: encoded(552, "5.2.2 <b@x.test> mailbox full"),
          [c]: encoded(450, "4.2.0 <c@x.test> try later")
        }
      }
    }
  },
  {
    name: "one refused at RCPT, the other after the data: SmtpRecipientsRefused lists both",
    to: [b, c],
    rcpts: ["550 5.1.1 no b", OK],
    finals: "552 5.2.2 <c@x.test> mailbox full",
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: { [b]: encoded(550, "5.1.1 no b"), [c]: encoded(552, "5.2.2 <c@x.test> mailbox full") }
      }
    }
  },
  {
    name: "all refused at RCPT: SmtpRecipientsRefused, the DATA reply consumed, RSET",
    to: [b, c],
    rcpts: ["550 5.1.1 no b", "550 5.1.1 no c"],
    data: "503 5.5.1 no valid recipients",
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: { [b]: encoded(550, "5.1.1 no b"), [c]: encoded(550, "5.1.1 no c") }
      }
    }
  },
  {
    name: "sender refused: SmtpSenderRefused, RSET",
    to: [b],
    mail: "550 5.7.1 not you",
    rcpts: ["503 5.5.1 need MAIL"],
    data: "503 5.5.1 need RCPT",
    outcome: {
      error: {
        _tag: "SmtpSenderRefused",
        code: 550,
        text: "5.7.1 not you",
        enhancedCode: "5.7.1",
        command: "MAIL",
        sender: "a@x.test"
      }
    }
  },
  {
    name: "the server closes after the first per-recipient reply: it keeps its result, the rest are unknown",
    to: [b, c, d],
    rcpts: [OK, OK, OK],
    finals: "250 2.0.0 <b@x.test> delivered",
    closeAfterFinals: true,
    outcome: {
      delivery: {
        recipients: [delivered(b, 250, "2.0.0 <b@x.test> delivered"), unknown(c), unknown(d)],
        delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" } },
        refused: {},
        unknown: [c, d],
        interruption: unknownAfter(disconnected)
      }
    }
  },
  {
    name: "refused at RCPT, then the server closes before any reply after the data: refused + unknown, none delivered",
    to: [b, c, d],
    rcpts: ["550 5.1.1 no b", OK, OK],
    finals: [],
    closeAfterFinals: true,
    outcome: {
      delivery: {
        recipients: [refusedAt("rcpt", b, 550, "5.1.1 no b"), unknown(c), unknown(d)],
        delivered: {},
        refused: { [b]: { code: 550, text: "5.1.1 no b" } },
        unknown: [c, d],
        interruption: unknownAfter(disconnected)
      }
    }
  },
  {
    name: "421 as the first per-recipient reply: that recipient refused with it, the rest unknown",
    to: [b, c],
    rcpts: [OK, OK],
    finals: "421 4.3.2 shutting down",
    closeAfterFinals: true,
    outcome: {
      delivery: {
        recipients: [refusedAt("data", b, 421, "4.3.2 shutting down"), unknown(c)],
        delivered: {},
        refused: { [b]: { code: 421, text: "4.3.2 shutting down" } },
        unknown: [c],
        interruption: unknownAfter(disconnected)
      }
    }
  }
]

const isAccepted = (reply: Reply) => codeOf(reply) === 250 || codeOf(reply) === 251

/** The script for a case in a mode, and the client's flights. */
const build = (mode: Mode, c: LmtpCase) => {
  const mail = c.mail ?? OK
  const failed = codeOf(mail) !== 250 || !c.rcpts.some(isAccepted)
  const data = c.data ?? (failed ? "503 5.5.1 no valid recipients" : GO)
  const steps: Array<ScriptedTransport.Step> = [{ expect: LHLO, reply: helloReply(mode) }]
  const flights: Array<string> = [`${LHLO}\r\n`]
  const lines = ["MAIL FROM:<a@x.test>", ...c.to.map(rcptLine)]
  let closed = false
  const finals = () => {
    flights.push(BLOCK)
    steps.push({ expect: BLOCK, reply: c.finals ?? [], ...(c.closeAfterFinals === true ? { close: true } : {}) })
    closed = c.closeAfterFinals === true
  }
  if (mode === "pipelined") {
    flights.push([...lines, "DATA"].map((l) => `${l}\r\n`).join(""))
    steps.push({ expect: lines[0], reply: mail })
    c.to.forEach((_, i) => steps.push({ expect: lines[i + 1], reply: c.rcpts[i] }))
    steps.push({ expect: "DATA", reply: data })
    if (failed) {
      flights.push("RSET\r\n")
      steps.push({ expect: "RSET", reply: "250 2.0.0 reset" })
    } else finals()
  } else {
    flights.push(`${lines[0]}\r\n`)
    steps.push({ expect: lines[0], reply: mail })
    if (codeOf(mail) === 250) {
      c.to.forEach((_, i) => {
        flights.push(`${lines[i + 1]}\r\n`)
        steps.push({ expect: lines[i + 1], reply: c.rcpts[i] })
      })
    }
    if (failed) {
      flights.push("RSET\r\n")
      steps.push({ expect: "RSET", reply: "250 2.0.0 reset" })
    } else {
      flights.push("DATA\r\n")
      steps.push({ expect: "DATA", reply: GO })
      finals()
    }
  }
  if (!closed) {
    flights.push("QUIT\r\n")
    steps.push({ expect: "QUIT", reply: "221 2.0.0 bye" })
  }
  return { steps, flights, written: flights.join(""), closed }
}

const runCase = (mode: Mode, c: LmtpCase, onServer: (server: Server) => void = () => {}) =>
  Effect.gen(function*() {
    const plan = build(mode, c)
    const server = yield* makeServer({ steps: plan.steps })
    onServer(server)
    const { closed, exit } = yield* Effect.scoped(
      Effect.gen(function*() {
        const lmtp = yield* SmtpClient.connect(lmtpOptions)
        const exit = yield* Effect.exit(lmtp.sendmail("a@x.test", c.to, MESSAGE))
        return { exit, closed: yield* lmtp.isClosed }
      })
    ).pipe(Effect.provide(server.layer))
    return { plan, server, exit, closed }
  })

const view = (exit: Exit.Exit<Parameters<typeof plainDelivery>[0], unknown>) =>
  Exit.isSuccess(exit) ? { delivery: plainDelivery(exit.value) } : { error: failureOf(exit) }

describe("LMTP sendmail: one table, pipelined and unpipelined", () => {
  for (const mode of modes) {
    describe(mode, () => {
      for (const c of cases) {
        it.effect(c.name, () => {
          let seen: Server | undefined
          return guard(
            Effect.gen(function*() {
              const { closed, exit, plan, server } = yield* runCase(mode, c, (s) => {
                seen = s
              })
              assert.deepStrictEqual(view(exit), c.outcome)
              assert.strictEqual(server.written(), plan.written)
              assert.deepStrictEqual(server.flights(), plan.flights)
              assert.deepStrictEqual(server.connection(0).mismatches(), [])
              assert.strictEqual(server.connection(0).remaining(), 0)
              assert.strictEqual(closed, plan.closed)
              assert.notInclude(server.written(), "EHLO")
              assert.notInclude(server.written(), "HELO ")
            }),
            () => `${mode}: ${c.name} (the client wrote ${JSON.stringify(seen?.written() ?? "")})`
          )
        })
      }
    })
  }

  it.effect("every case gives the same Delivery or error on both paths", () =>
    Effect.gen(function*() {
      const outcome = (mode: Mode, c: LmtpCase) =>
        runCase(mode, c).pipe(
          Effect.map(({ exit }) => view(exit)),
          (effect) => withinRealTime(effect, 1000),
          Effect.map(Option.getOrElse(() => "hung" as const))
        )
      for (const c of cases) {
        assert.deepStrictEqual(yield* outcome("pipelined", c), yield* outcome("unpipelined", c), c.name)
      }
    }))
})

describe("LMTP: LHLO and connecting", () => {
  it.effect("sendmail sends LHLO first (never EHLO or HELO)", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: helloReply("unpipelined") },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 2.0.0 <b@x.test> delivered" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const delivery = yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect(lmtpOptions), (lmtp) => lmtp.sendmail("a@x.test", b, MESSAGE))
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainDelivery(delivery).recipients, [
          delivered(b, 250, "2.0.0 <b@x.test> delivered")
        ])
        assert.strictEqual(
          server.written(),
          `${LHLO}\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "lhlo on sendmail"
    ))

  it.effect("connect with the default security sends LHLO at connect (STARTTLS check); sendmail does not repeat it", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: helloReply("pipelined") },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 2.0.0 <b@x.test> delivered" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const { delivery, lhloSeenAtConnect } = yield* Effect.scoped(
          Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect({ protocol: "lmtp", host: "mx.test" })
            const lhloSeenAtConnect = server.written()
            return { lhloSeenAtConnect, delivery: yield* lmtp.sendmail("a@x.test", b, MESSAGE) }
          })
        ).pipe(Effect.provide(server.layer))
        assert.strictEqual(lhloSeenAtConnect, `${LHLO}\r\n`)
        assert.deepStrictEqual(Object.keys(delivery.delivered), [b])
        assert.strictEqual(
          server.written(),
          `${LHLO}\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "lhlo at connect"
    ))

  it.effect("ehlo() on an LMTP session sends LHLO and records the extensions", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: helloReply("pipelined", ["CHUNKING", "8BITMIME"]) },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const seen = yield* Effect.scoped(
          Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect(lmtpOptions)
            const reply = yield* lmtp.ehlo()
            return {
              code: reply.code,
              esmtp: yield* lmtp.doesEsmtp,
              chunking: yield* lmtp.hasExtn("chunking"),
              pipelining: yield* lmtp.hasExtn("PIPELINING")
            }
          })
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(seen, { code: 250, esmtp: true, chunking: true, pipelining: true })
        assert.strictEqual(server.written(), `${LHLO}\r\nQUIT\r\n`)
      }),
      "ehlo is lhlo"
    ))

  it.effect("LHLO refused (500): SmtpHeloError, and no HELO fallback is written", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: "500 5.5.1 what?" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const exit = yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect(lmtpOptions), (lmtp) => Effect.exit(lmtp.sendmail("a@x.test", b, MESSAGE)))
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(failureOf(exit), {
          _tag: "SmtpHeloError",
          code: 500,
          text: "5.5.1 what?",
          enhancedCode: "5.5.1",
          command: "LHLO"
        })
        assert.strictEqual(server.written(), `${LHLO}\r\nQUIT\r\n`)
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "no helo fallback"
    ))

  it.effect("LHLO refused at connect (default security): connect fails with SmtpHeloError, no HELO", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: "502 5.5.2 not here" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const exit = yield* Effect.scoped(Effect.exit(SmtpClient.connect({ protocol: "lmtp", host: "mx.test" }))).pipe(
          Effect.provide(server.layer)
        )
        assert.deepStrictEqual(failureOf(exit), {
          _tag: "SmtpHeloError",
          code: 502,
          text: "5.5.2 not here",
          enhancedCode: "5.5.2",
          command: "LHLO"
        })
        assert.notInclude(server.written(), "HELO")
        assert.strictEqual(server.written(), `${LHLO}\r\nQUIT\r\n`)
      }),
      "no helo fallback at connect"
    ))

  it.effect("the default port is 2003 (smtplib's LMTP_PORT); an explicit port and host:port win", () =>
    guard(
      Effect.gen(function*() {
        // only the connect options matter here: the sessions are not scripted
        const server = yield* makeServer({ steps: [], strict: false }, { steps: [], strict: false }, {
          steps: [],
          strict: false
        })
        const open = (options: SmtpClient.LmtpOptions) =>
          Effect.scoped(Effect.asVoid(SmtpClient.connect(options))).pipe(Effect.provide(server.layer))
        yield* open(lmtpOptions)
        yield* open({ ...lmtpOptions, port: 24 })
        yield* open({ protocol: "lmtp", host: "mx.test:2424", security: "none" })
        const seen = [0, 1, 2].map((i) => {
          const o = server.connection(i).connectOptions
          return { host: o.host, port: o.port, path: o.path }
        })
        assert.deepStrictEqual(seen, [
          { host: "mx.test", port: 2003, path: undefined },
          { host: "mx.test", port: 24, path: undefined },
          { host: "mx.test", port: 2424, path: undefined }
        ])
      }),
      "default port"
    ))

  it.effect("an absolute path as host, or the path option, connects to a Unix socket (plaintext, LHLO by sendmail)", () =>
    guard(
      Effect.gen(function*() {
        const script = {
          steps: [
            { expect: LHLO, reply: helloReply("pipelined") },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 2.0.0 <b@x.test> delivered" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        }
        const server = yield* makeServer(script, script)
        const send = (options: SmtpClient.LmtpOptions) =>
          Effect.scoped(
            Effect.flatMap(SmtpClient.connect(options), (lmtp) => lmtp.sendmail("a@x.test", b, MESSAGE))
          ).pipe(Effect.provide(server.layer))
        // no `security`: a Unix socket defaults to "none", so connect sends nothing
        const viaHost = yield* send({ protocol: "lmtp", host: "/var/run/dovecot/lmtp" })
        const viaPath = yield* send({ protocol: "lmtp", path: "/run/lmtp.sock" })
        assert.deepStrictEqual(Object.keys(viaHost.delivered), [b])
        assert.deepStrictEqual(Object.keys(viaPath.delivered), [b])
        assert.strictEqual(server.connection(0).connectOptions.path, "/var/run/dovecot/lmtp")
        assert.strictEqual(server.connection(1).connectOptions.path, "/run/lmtp.sock")
        assert.isUndefined(server.connection(0).connectOptions.tls)
        for (const i of [0, 1]) {
          assert.strictEqual(
            server.written(i),
            `${LHLO}\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
          )
          assert.deepStrictEqual(server.connection(i).mismatches(), [])
        }
      }),
      "unix socket"
    ))
})

describe("LMTP: a stalled server after the first per-recipient reply (TestClock)", () => {
  /** Forks the sendmail, waits until the data went out, then moves the clock. */
  const stalled = (options: {
    readonly features: ReadonlyArray<string>
    readonly dataSteps: ReadonlyArray<ScriptedTransport.Step>
    readonly timeout?: Duration.DurationInput
    readonly before: Duration.DurationInput
    readonly after: Duration.DurationInput
    readonly lastUnit: string
  }) =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: LHLO, reply: helloReply("pipelined", options.features) },
          { expect: "MAIL FROM:<a@x.test>", reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: "RCPT TO:<c@x.test>", reply: OK },
          { expect: "RCPT TO:<d@x.test>", reply: OK },
          ...options.dataSteps
        ]
      })
      const result = yield* Effect.scoped(
        Effect.gen(function*() {
          const lmtp = yield* SmtpClient.connect(
            options.timeout === undefined ? lmtpOptions : { ...lmtpOptions, timeout: options.timeout }
          )
          const fiber = yield* Effect.fork(lmtp.sendmail("a@x.test", [b, c, d], MESSAGE))
          yield* eventually(() => server.connection(0).units().includes(options.lastUnit), "the data was written")
          // let the client read the first per-recipient reply and start waiting for the second
          for (let i = 0; i < 20; i++) {
            yield* Effect.yieldNow()
            yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))
          }
          yield* TestClock.adjust(options.before)
          for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
          const early = fiber.unsafePoll()
          yield* TestClock.adjust(options.after)
          const exit = yield* Fiber.await(fiber)
          return { early, exit, closed: yield* lmtp.isClosed }
        })
      ).pipe(Effect.provide(server.layer))
      return { ...result, server }
    })

  const expected = (timeoutMillis: number, verb: string): PlainDelivery => ({
    recipients: [delivered(b, 250, "2.0.0 <b@x.test> delivered"), unknown(c), unknown(d)],
    delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" } },
    refused: {},
    unknown: [c, d],
    interruption: unknownAfter({ _tag: "SmtpTimeout", phase: `waiting for the reply to ${verb}`, timeoutMillis })
  })

  it.effect("DATA, default limits: after 10 minutes (RFC 5321's wait after the final dot) the rest are unknown", () =>
    guard(
      Effect.gen(function*() {
        const { closed, early, exit, server } = yield* stalled({
          features: [],
          dataSteps: [
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 2.0.0 <b@x.test> delivered" }
          ],
          before: "599 seconds",
          after: "2 seconds",
          lastUnit: BLOCK
        })
        assert.isNull(early, "still waiting after 599 s")
        assert.deepStrictEqual(view(exit), { delivery: expected(600_000, "<end of data>") })
        assert.isTrue(closed, "a timed-out connection is closed")
        assert.strictEqual(
          server.written(),
          `${LHLO}\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n` +
            `DATA\r\n${BLOCK}`
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "stall after data"
    ))

  it.effect("the `timeout` option bounds the wait for each per-recipient reply", () =>
    guard(
      Effect.gen(function*() {
        const { early, exit } = yield* stalled({
          features: [],
          dataSteps: [
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 2.0.0 <b@x.test> delivered" }
          ],
          timeout: "30 seconds",
          before: "29 seconds",
          after: "2 seconds",
          lastUnit: BLOCK
        })
        assert.isNull(early)
        assert.deepStrictEqual(view(exit), { delivery: expected(30_000, "<end of data>") })
      }),
      "stall with timeout"
    ))

  it.effect("BDAT LAST with the `timeout` option: the rest unknown with SmtpTimeout", () =>
    guard(
      Effect.gen(function*() {
        const { early, exit, server } = yield* stalled({
          features: ["CHUNKING"],
          dataSteps: [{ expect: BDAT_UNIT, reply: "250 2.0.0 <b@x.test> delivered" }],
          timeout: "30 seconds",
          before: "29 seconds",
          after: "2 seconds",
          lastUnit: BDAT_UNIT
        })
        assert.isNull(early)
        assert.deepStrictEqual(view(exit), { delivery: expected(30_000, "BDAT") })
        assert.strictEqual(
          server.written(),
          `${LHLO}\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n` +
            BDAT_UNIT
        )
      }),
      "stall after bdat"
    ))

  it.effect("BDAT LAST, default limits: the per-recipient replies get the 10 minutes of the end of data too", () =>
    guard(
      Effect.gen(function*() {
        const { early, exit } = yield* stalled({
          features: ["CHUNKING"],
          dataSteps: [{ expect: BDAT_UNIT, reply: "250 2.0.0 <b@x.test> delivered" }],
          before: "599 seconds",
          after: "2 seconds",
          lastUnit: BDAT_UNIT
        })
        // the reply to BDAT LAST is the end of the data: the server delivers before it answers
        // (Dovecot writes the mailbox first), as after DATA's final dot
        assert.isNull(early, "still waiting after 599 s (the end-of-data limit is 10 minutes)")
        assert.deepStrictEqual(view(exit), { delivery: expected(600_000, "BDAT") })
      }),
      "stall after bdat, default limit"
    ))
})

describe("LMTP with CHUNKING (LHLO advertises PIPELINING and CHUNKING)", () => {
  const chunkingHello = helloReply("pipelined", ["CHUNKING"])

  it.effect("one flight MAIL, RCPT..., BDAT n LAST with the message; the per-recipient replies after the LAST", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: chunkingHello },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<c@x.test>", reply: "550 5.1.1 <c@x.test> no such user" },
            { expect: "RCPT TO:<d@x.test>", reply: OK },
            { expect: BDAT_UNIT, reply: "250 2.0.0 <b@x.test> delivered\r\n552 5.2.2 <d@x.test> mailbox full" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const delivery = yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect(lmtpOptions), (lmtp) => lmtp.sendmail("a@x.test", [b, c, d], MESSAGE))
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainDelivery(delivery), (cases[0].outcome as { delivery: PlainDelivery }).delivery)
        assert.deepStrictEqual(server.flights(), [
          `${LHLO}\r\n`,
          "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n" + BDAT_UNIT,
          "QUIT\r\n"
        ])
        assert.notInclude(server.written(), "DATA")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.strictEqual(server.connection(0).remaining(), 0)
      }),
      "lmtp bdat one flight"
    ))

  it.effect("the per-recipient replies may come one chunk at a time, and before the client asks for them", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: chunkingHello },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<c@x.test>", reply: OK },
            { expect: BDAT_UNIT, reply: ["250 2.0.0 <b@x.test> ok\r\n", "250 2.0.0 <c@x.test> ok\r\n"] },
            { expect: "NOOP", reply: "250 2.0.0 noop" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const { delivery, noop } = yield* Effect.scoped(
          Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect(lmtpOptions)
            const delivery = yield* lmtp.sendmail("a@x.test", [b, c], MESSAGE)
            // the second reply must not be left over for the next command
            const noop = yield* lmtp.noop
            return { delivery, noop }
          })
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainDelivery(delivery).recipients, [
          delivered(b, 250, "2.0.0 <b@x.test> ok"),
          delivered(c, 250, "2.0.0 <c@x.test> ok")
        ])
        assert.strictEqual(noop.text, "2.0.0 noop")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "lmtp bdat replies split"
    ))

  it.effect("one flight, the server closes after the first per-recipient reply: delivered, then unknown", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: chunkingHello },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<c@x.test>", reply: OK },
            { expect: "RCPT TO:<d@x.test>", reply: OK },
            { expect: BDAT_UNIT, reply: "250 2.0.0 <b@x.test> delivered", close: true }
          ]
        })
        const exit = yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect(lmtpOptions),
            (lmtp) => Effect.exit(lmtp.sendmail("a@x.test", [b, c, d], MESSAGE))
          )
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(view(exit), {
          delivery: {
            recipients: [delivered(b, 250, "2.0.0 <b@x.test> delivered"), unknown(c), unknown(d)],
            delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" } },
            refused: {},
            unknown: [c, d],
            interruption: unknownAfter({ _tag: "SmtpServerDisconnected", during: "waiting for the reply to BDAT" })
          }
        })
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "lmtp bdat one flight closed"
    ))

  it.effect("all refused at RCPT with BDAT in the flight: SmtpRecipientsRefused, the BDAT's 554 consumed, RSET", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: chunkingHello },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: "550 5.1.1 no b" },
            { expect: "RCPT TO:<c@x.test>", reply: "550 5.1.1 no c" },
            { expect: BDAT_UNIT, reply: "554 5.5.1 no valid recipients" },
            { expect: "RSET", reply: "250 2.0.0 reset" },
            { expect: "NOOP", reply: "250 2.0.0 noop" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const { exit, noop } = yield* Effect.scoped(
          Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect(lmtpOptions)
            const exit = yield* Effect.exit(lmtp.sendmail("a@x.test", [b, c], MESSAGE))
            return { exit, noop: yield* lmtp.noop }
          })
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(failureOf(exit), {
          _tag: "SmtpRecipientsRefused",
          recipients: { [b]: encoded(550, "5.1.1 no b"), [c]: encoded(550, "5.1.1 no c") }
        })
        assert.strictEqual(noop.text, "2.0.0 noop")
        assert.deepStrictEqual(server.flights(), [
          `${LHLO}\r\n`,
          `MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n${BDAT_UNIT}`,
          "RSET\r\n",
          "NOOP\r\n",
          "QUIT\r\n"
        ])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "lmtp bdat all refused"
    ))

  it.effect("a Stream message over 256 KiB: BDAT chunks of 256 KiB, the last marked LAST, replies after it", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(600 * 1024)
        const units = bdatUnits(content, [262144, 262144, 600 * 1024 - 2 * 262144])
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: chunkingHello },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<c@x.test>", reply: "550 5.1.1 no c" },
            { expect: "RCPT TO:<d@x.test>", reply: OK },
            { expect: units[0], reply: "250 2.0.0 262144 octets received" },
            { expect: units[1], reply: "250 2.0.0 262144 octets received" },
            { expect: units[2], reply: "250 2.0.0 <b@x.test> delivered\r\n552 5.2.2 <d@x.test> mailbox full" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const delivery = yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect(lmtpOptions),
            (lmtp) => lmtp.sendmail("a@x.test", [b, c, d], Stream.succeed(content))
          )
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainDelivery(delivery), {
          recipients: [
            delivered(b, 250, "2.0.0 <b@x.test> delivered"),
            refusedAt("rcpt", c, 550, "5.1.1 no c"),
            refusedAt("data", d, 552, "5.2.2 <d@x.test> mailbox full")
          ],
          delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" } },
          refused: {
            [c]: { code: 550, text: "5.1.1 no c" },
            [d]: { code: 552, text: "5.2.2 <d@x.test> mailbox full" }
          },
          unknown: [],
          interruption: undefined
        })
        // MAIL and RCPT first, the chunks only once the RCPT replies are known
        assert.strictEqual(
          server.flights()[1],
          "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n"
        )
        assert.strictEqual(
          server.written(),
          `${LHLO}\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n` +
            units.join("") + "QUIT\r\n"
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.strictEqual(server.connection(0).remaining(), 0)
      }),
      "lmtp bdat stream"
    ))

  it.effect("a Stream message closed mid-replies after BDAT LAST: delivered, then unknown", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(300 * 1024)
        const units = bdatUnits(content, [262144, 300 * 1024 - 262144])
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: chunkingHello },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<c@x.test>", reply: OK },
            { expect: units[0], reply: "250 2.0.0 262144 octets received" },
            { expect: units[1], reply: "250 2.0.0 <b@x.test> delivered", close: true }
          ]
        })
        const delivery = yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect(lmtpOptions),
            (lmtp) => lmtp.sendmail("a@x.test", [b, c], Stream.succeed(content))
          )
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainDelivery(delivery), {
          recipients: [delivered(b, 250, "2.0.0 <b@x.test> delivered"), unknown(c)],
          delivered: { [b]: { code: 250, text: "2.0.0 <b@x.test> delivered" } },
          refused: {},
          unknown: [c],
          interruption: unknownAfter({ _tag: "SmtpServerDisconnected", during: "waiting for the reply to BDAT" })
        })
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "lmtp bdat stream closed"
    ))
})

describe("LMTP sendMessage", () => {
  for (const chunking of [false, true]) {
    it.effect(`returns a Delivery too (${chunking ? "BDAT" : "DATA"})`, () =>
      guard(
        Effect.gen(function*() {
          const text = "From: Ann <a@x.test>\r\nTo: b@x.test, c@x.test\r\nSubject: s\r\n\r\nHello\r\n"
          const message = yield* Message.parse(text)
          const data = chunking ? [{ expect: `BDAT ${text.length} LAST\r\n${text}` }] : [
            { expect: "DATA", reply: GO },
            { expect: `${text}.\r\n` }
          ]
          const finals = "250 2.0.0 <b@x.test> delivered\r\n452 4.2.2 <c@x.test> over quota"
          const server = yield* makeServer({
            steps: [
              { expect: LHLO, reply: helloReply("pipelined", chunking ? ["CHUNKING"] : []) },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: OK },
              { expect: "RCPT TO:<c@x.test>", reply: OK },
              ...data.slice(0, -1),
              { ...data[data.length - 1], reply: finals },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const delivery = yield* Effect.scoped(
            Effect.flatMap(SmtpClient.connect(lmtpOptions), (lmtp) => lmtp.sendMessage(message))
          ).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(plainDelivery(delivery).recipients, [
            delivered(b, 250, "2.0.0 <b@x.test> delivered"),
            refusedAt("data", c, 452, "4.2.2 <c@x.test> over quota")
          ])
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
          assert.strictEqual(server.connection(0).remaining(), 0)
        }),
        "sendMessage"
      ))
  }
})

describe("LMTP: replies follow the successful RCPT commands, not the addresses", () => {
  it.effect("a recipient given twice gets two replies (RFC 2033 §4.2): each RCPT keeps its own result", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: helloReply("pipelined") },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 2.0.0 first copy delivered\r\n552 5.2.2 second copy: mailbox full" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const delivery = yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect(lmtpOptions), (lmtp) => lmtp.sendmail("a@x.test", [b, b], MESSAGE))
        ).pipe(Effect.provide(server.layer))
        // the first reply must not be lost (the results are keyed by address in the library)
        assert.deepStrictEqual(plainDelivery(delivery).recipients, [
          delivered(b, 250, "2.0.0 first copy delivered"),
          refusedAt("data", b, 552, "5.2.2 second copy: mailbox full")
        ])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "duplicate recipient"
    ))
})

describe("LMTP: the session after a Delivery", () => {
  it.effect("two deliveries in a row on one connection (pipelined), each with its own per-recipient replies", () =>
    guard(
      Effect.gen(function*() {
        const tx = (from: string, finals: Reply) => [
          { expect: `MAIL FROM:<${from}>`, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: "RCPT TO:<c@x.test>", reply: OK },
          { expect: "DATA", reply: GO },
          { expect: BLOCK, reply: finals }
        ]
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: helloReply("pipelined") },
            ...tx("a1@x.test", "250 ok b1\r\n552 full c1"),
            ...tx("a2@x.test", "452 later b2\r\n250 ok c2"),
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const [first, second] = yield* Effect.scoped(
          Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect(lmtpOptions)
            const first = yield* lmtp.sendmail("a1@x.test", [b, c], MESSAGE)
            const second = yield* lmtp.sendmail("a2@x.test", [b, c], utf8(MESSAGE))
            return [first, second] as const
          })
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(plainDelivery(first).recipients, [
          delivered(b, 250, "ok b1"),
          refusedAt("data", c, 552, "full c1")
        ])
        assert.deepStrictEqual(plainDelivery(second).recipients, [
          refusedAt("data", b, 452, "later b2"),
          delivered(c, 250, "ok c2")
        ])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.strictEqual(server.connection(0).remaining(), 0)
      }),
      "two in a row"
    ))

  it.effect("after a disconnect mid-replies the session is closed: the next operation fails, nothing is written", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: LHLO, reply: helloReply("pipelined") },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "RCPT TO:<c@x.test>", reply: OK },
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: "250 ok b", close: true }
          ]
        })
        const { after, delivery } = yield* Effect.scoped(
          Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect(lmtpOptions)
            const delivery = yield* lmtp.sendmail("a@x.test", [b, c], MESSAGE)
            return { delivery, after: yield* Effect.exit(lmtp.noop) }
          })
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(delivery.unknown, [c])
        assert.isUndefined(delivery.delivered[c])
        assert.deepStrictEqual(plainError(delivery.interruption), unknownAfter(disconnected))
        assert.deepStrictEqual(failureOf(after), { _tag: "SmtpServerDisconnected", during: "sending NOOP" })
        assert.isFalse(server.written().includes("NOOP"))
      }),
      "closed after"
    ))
})
