/**
 * SMTP with CHUNKING (RFC 3030) over the scripted transport, byte-exact. When EHLO advertises
 * PIPELINING and CHUNKING, sendmail writes MAIL, every RCPT and `BDAT n LAST` with a message up to
 * 1 MiB in one flight; larger and streamed messages go as BDAT chunks of at most 256 KiB once the
 * RCPT replies are known. Nothing is dot-stuffed; a CRLF is appended when the message does not end
 * with one, so that BDAT delivers what DATA would. Results and errors are those of DATA.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import {
  connectOptions,
  eventually,
  guard,
  makeServer,
  plainRefused,
  type Server,
  utf8,
  withinRealTime
} from "../session/support.js"
import { bdatUnits, codeOf, encoded, failureOf, helloReply, parseBdatUnit, textOfSize } from "./support.js"

type Reply = ScriptedTransport.Reply

const MESSAGE = "Subject: hi\r\n\r\nhello"
const BLOCK = "Subject: hi\r\n\r\nhello\r\n.\r\n"
const BDAT_UNIT = "BDAT 22 LAST\r\nSubject: hi\r\n\r\nhello\r\n"
const OK = "250 2.1.0 ok"
const GO = "354 go ahead"
const QUEUED = "250 2.0.0 queued as 1234"
const BYE421 = "421 4.3.2 service shutting down"
const EHLO = "EHLO client.test"
/** PIPELINING and CHUNKING: BDAT is used. */
const CHUNKING_EHLO = helloReply("pipelined", ["CHUNKING"])

const three = ["b@x.test", "c@x.test", "d@x.test"]

interface ChunkCase {
  readonly name: string
  readonly to: ReadonlyArray<string>
  readonly mail?: Reply
  readonly rcpts: ReadonlyArray<Reply>
  /** The reply to BDAT LAST (and to the final dot on the DATA path). */
  readonly end: Reply
  readonly outcome:
    | { readonly refused: Record<string, { readonly code: number; readonly text: string }> }
    | { readonly error: Record<string, unknown> }
}

const cases: ReadonlyArray<ChunkCase> = [
  {
    name: "success",
    to: ["b@x.test"],
    rcpts: [OK],
    end: QUEUED,
    outcome: { refused: {} }
  },
  {
    name: "some recipients refused: the refused record, the message sent to the others",
    to: three,
    rcpts: [OK, "550 5.1.1 no c", "450 4.2.1 later d"],
    end: QUEUED,
    outcome: {
      refused: { "c@x.test": { code: 550, text: "5.1.1 no c" }, "d@x.test": { code: 450, text: "4.2.1 later d" } }
    }
  },
  {
    name: "all recipients refused: SmtpRecipientsRefused, the BDAT's 554 consumed, RSET",
    to: ["b@x.test", "c@x.test"],
    rcpts: ["550 5.1.1 no b", "550 5.1.1 no c"],
    end: "554 5.5.1 no valid recipients",
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: { "b@x.test": encoded(550, "5.1.1 no b"), "c@x.test": encoded(550, "5.1.1 no c") }
      }
    }
  },
  {
    name: "all recipients refused, the BDAT answered 503: the same",
    to: ["b@x.test"],
    rcpts: ["550 5.1.1 no b"],
    end: "503 5.5.1 bad sequence",
    outcome: { error: { _tag: "SmtpRecipientsRefused", recipients: { "b@x.test": encoded(550, "5.1.1 no b") } } }
  },
  {
    name: "sender refused: SmtpSenderRefused, RSET",
    to: three,
    mail: "550 5.1.8 sender rejected",
    rcpts: ["503 5.5.1 need MAIL", "503 5.5.1 need MAIL", "503 5.5.1 need MAIL"],
    end: "503 5.5.1 need MAIL",
    outcome: {
      error: {
        _tag: "SmtpSenderRefused",
        code: 550,
        text: "5.1.8 sender rejected",
        enhancedCode: "5.1.8",
        command: "MAIL",
        sender: "a@x.test"
      }
    }
  },
  {
    name: "421 on the second RCPT: SmtpRecipientsRefused with the refused so far, no RSET, no QUIT",
    to: three,
    rcpts: ["550 5.1.1 no b", BYE421, OK],
    end: QUEUED,
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: { "b@x.test": encoded(550, "5.1.1 no b"), "c@x.test": encoded(421, "4.3.2 service shutting down") }
      }
    }
  },
  {
    name: "BDAT LAST refused (552): SmtpDataError, RSET",
    to: ["b@x.test"],
    rcpts: [OK],
    end: "552-5.3.4 message too big\r\n552 5.3.4 really",
    outcome: {
      error: {
        _tag: "SmtpDataError",
        code: 552,
        text: "5.3.4 message too big\n5.3.4 really",
        enhancedCode: "5.3.4",
        command: "BDAT"
      }
    }
  },
  {
    name: "421 on BDAT LAST: SmtpDataError, no RSET, no QUIT",
    to: ["b@x.test"],
    rcpts: [OK],
    end: BYE421,
    outcome: {
      error: {
        _tag: "SmtpDataError",
        code: 421,
        text: "4.3.2 service shutting down",
        enhancedCode: "4.3.2",
        command: "BDAT"
      }
    }
  },
  {
    name: "BDAT LAST answered 251 (not 250): SmtpDataError as smtplib does for DATA, RSET",
    to: ["b@x.test"],
    rcpts: [OK],
    end: "251 odd",
    outcome: { error: { _tag: "SmtpDataError", code: 251, text: "odd", command: "BDAT" } }
  }
]

const mailLine = "MAIL FROM:<a@x.test>"
const rcptLine = (r: string) => `RCPT TO:<${r}>`

/** The script and flights for a case with BDAT (`bdat`) or with DATA (`chunking: false`). */
const build = (kind: "bdat" | "data", c: ChunkCase) => {
  const mail = c.mail ?? OK
  const failed = codeOf(mail) !== 250 || !c.rcpts.some((r) => codeOf(r) === 250 || codeOf(r) === 251)
  const steps: Array<ScriptedTransport.Step> = [{ expect: EHLO, reply: CHUNKING_EHLO }]
  const flights: Array<string> = [`${EHLO}\r\n`]
  const lines = [mailLine, ...c.to.map(rcptLine)]
  let closed = false
  const step = (expect: string, reply: Reply) => {
    if (closed) return
    closed = codeOf(reply) === 421
    steps.push(closed ? { expect, reply, close: true } : { expect, reply })
  }
  const rset = () => {
    if (closed) return
    flights.push("RSET\r\n")
    steps.push({ expect: "RSET", reply: "250 2.0.0 reset" })
  }
  if (kind === "bdat") {
    flights.push(lines.map((l) => `${l}\r\n`).join("") + BDAT_UNIT)
    step(lines[0], mail)
    c.to.forEach((_, i) => step(lines[i + 1], c.rcpts[i]))
    step(BDAT_UNIT, c.end)
    if (failed || codeOf(c.end) !== 250) rset()
  } else {
    flights.push([...lines, "DATA"].map((l) => `${l}\r\n`).join(""))
    step(lines[0], mail)
    c.to.forEach((_, i) => step(lines[i + 1], c.rcpts[i]))
    step("DATA", failed ? "503 5.5.1 no valid recipients" : GO)
    if (failed) rset()
    else if (!closed) {
      flights.push(BLOCK)
      step(BLOCK, c.end)
      if (codeOf(c.end) !== 250) rset()
    }
  }
  if (!closed) {
    flights.push("QUIT\r\n")
    steps.push({ expect: "QUIT", reply: "221 2.0.0 bye" })
  }
  return { steps, flights, written: flights.join(""), closed }
}

const runCase = (kind: "bdat" | "data", c: ChunkCase, onServer: (server: Server) => void = () => {}) =>
  Effect.gen(function*() {
    const plan = build(kind, c)
    const server = yield* makeServer({ steps: plan.steps })
    onServer(server)
    const { closed, exit } = yield* Effect.scoped(
      Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(
          kind === "bdat" ? connectOptions : { ...connectOptions, chunking: false }
        )
        const exit = yield* Effect.exit(smtp.sendmail("a@x.test", c.to, MESSAGE))
        return { exit, closed: yield* smtp.isClosed }
      })
    ).pipe(Effect.provide(server.layer))
    return { plan, server, exit, closed }
  })

const view = (exit: Exit.Exit<SmtpConnection.RefusedRecipients, unknown>) =>
  Exit.isSuccess(exit) ? { refused: plainRefused(exit.value) } : { error: failureOf(exit) }

describe("SMTP BDAT: the sendmail table (EHLO with PIPELINING and CHUNKING)", () => {
  for (const c of cases) {
    it.effect(c.name, () => {
      let seen: Server | undefined
      return guard(
        Effect.gen(function*() {
          const { closed, exit, plan, server } = yield* runCase("bdat", c, (s) => {
            seen = s
          })
          assert.deepStrictEqual(view(exit), c.outcome)
          assert.strictEqual(server.written(), plan.written)
          // MAIL, RCPT and BDAT LAST with the message: everything before any reply
          assert.deepStrictEqual(server.flights(), plan.flights)
          assert.notInclude(server.written(), "DATA")
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
          assert.strictEqual(server.connection(0).remaining(), 0)
          assert.strictEqual(closed, plan.closed)
        }),
        () => `${c.name} (the client wrote ${JSON.stringify(seen?.written() ?? "")})`
      )
    })
  }

  it.effect("every case gives the result or error DATA gives (`chunking: false`), BDAT named as the command", () =>
    Effect.gen(function*() {
      const outcome = (kind: "bdat" | "data", c: ChunkCase) =>
        runCase(kind, c).pipe(
          Effect.map(({ exit, plan, server }) => ({
            view: view(exit),
            bytesAsPlanned: server.written() === plan.written,
            mismatches: server.connection(0).mismatches()
          })),
          (effect) => withinRealTime(effect, 1000),
          Effect.map(Option.getOrElse(() => "hung" as const))
        )
      for (const c of cases) {
        const viaBdat = yield* outcome("bdat", c)
        const viaData = yield* outcome("data", c)
        const renamed = JSON.parse(
          JSON.stringify(viaData).replace(/"command":"<end of data>"/g, "\"command\":\"BDAT\"")
        )
        assert.deepStrictEqual(viaBdat, renamed, c.name)
        assert.deepStrictEqual(renamed, { view: c.outcome, bytesAsPlanned: true, mismatches: [] }, c.name)
      }
    }))
})

/** One sendmail of `message` with the given EHLO and script after it; the result as plain data. */
const send = (
  message: SmtpConnection.MessageInput,
  ehlo: string,
  after: ReadonlyArray<ScriptedTransport.Step>,
  options: Partial<SmtpClient.Options> = {}
) =>
  Effect.gen(function*() {
    const server = yield* makeServer({
      steps: [{ expect: EHLO, reply: ehlo }, ...after, { expect: "QUIT", reply: "221 bye" }]
    })
    const exit = yield* Effect.scoped(
      Effect.flatMap(
        SmtpClient.connect({ ...connectOptions, ...options }),
        (smtp) => Effect.exit(smtp.sendmail("a@x.test", "b@x.test", message))
      )
    ).pipe(Effect.provide(server.layer))
    return { server, result: Exit.isSuccess(exit) ? plainRefused(exit.value) : failureOf(exit) as unknown }
  })

describe("SMTP BDAT: the bytes", () => {
  const oneRcpt = (unit: string, end: Reply = QUEUED): ReadonlyArray<ScriptedTransport.Step> => [
    { expect: mailLine, reply: OK },
    { expect: "RCPT TO:<b@x.test>", reply: OK },
    { expect: unit, reply: end }
  ]

  it.effect("BDAT <n> LAST with n the message length when it ends with CRLF; nothing is dot-stuffed", () =>
    guard(
      Effect.gen(function*() {
        const content = "Subject: dots\r\n\r\n.a leading dot\r\n..two\r\n.\r\nlast line\r\n"
        const unit = `BDAT ${content.length} LAST\r\n${content}`
        const { result, server } = yield* send(utf8(content), CHUNKING_EHLO, oneRcpt(unit))
        assert.deepStrictEqual(result, {})
        assert.deepStrictEqual(server.flights(), [
          `${EHLO}\r\n`,
          `${mailLine}\r\nRCPT TO:<b@x.test>\r\n${unit}`,
          "QUIT\r\n"
        ])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "bdat exact"
    ))

  it.effect("a message without a final CRLF: CRLF appended and counted (n = length + 2), as DATA would deliver", () =>
    guard(
      Effect.gen(function*() {
        const content = "Subject: x\r\n\r\n.dot\r\nno final line break"
        const unit = `BDAT ${content.length + 2} LAST\r\n${content}\r\n`
        const viaBdat = yield* send(utf8(content), CHUNKING_EHLO, oneRcpt(unit))
        assert.deepStrictEqual(viaBdat.result, {})
        assert.strictEqual(viaBdat.server.written(), `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\n${unit}QUIT\r\n`)
        assert.deepStrictEqual(viaBdat.server.connection(0).mismatches(), [])
        // DATA delivers the same bytes (after un-stuffing): the CRLF before the final dot
        const viaData = yield* send(utf8(content), CHUNKING_EHLO, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: "DATA", reply: GO },
          { expect: `Subject: x\r\n\r\n..dot\r\nno final line break\r\n.\r\n`, reply: QUEUED }
        ], { chunking: false })
        assert.deepStrictEqual(viaData.result, {})
        assert.deepStrictEqual(viaData.server.connection(0).mismatches(), [])
      }),
      "bdat crlf appended"
    ))

  it.effect("a string message: line endings fixed to CRLF as for DATA, then BDAT of that length", () =>
    guard(
      Effect.gen(function*() {
        const fixed = "Subject: s\r\n\r\nline one\r\nline two\r\n"
        const unit = `BDAT ${fixed.length} LAST\r\n${fixed}`
        const { result, server } = yield* send("Subject: s\n\nline one\rline two", CHUNKING_EHLO, oneRcpt(unit))
        assert.deepStrictEqual(result, {})
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "bdat string"
    ))

  it.effect("an empty message: BDAT 2 LAST with a CRLF", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* send(new Uint8Array(0), CHUNKING_EHLO, oneRcpt("BDAT 2 LAST\r\n\r\n"))
        assert.deepStrictEqual(result, {})
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "bdat empty"
    ))

  it.effect("with SIZE advertised, MAIL carries SIZE=<message length> as with DATA", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* send(MESSAGE, helloReply("pipelined", ["SIZE 1000", "CHUNKING"]), [
          { expect: `${mailLine} SIZE=${MESSAGE.length}`, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: BDAT_UNIT, reply: QUEUED }
        ])
        assert.deepStrictEqual(result, {})
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "bdat size"
    ))

  it.effect("`chunking: false` uses DATA although the server offers CHUNKING (smtplib's behaviour)", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* send(MESSAGE, CHUNKING_EHLO, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: "DATA", reply: GO },
          { expect: BLOCK, reply: QUEUED }
        ], { chunking: false })
        assert.deepStrictEqual(result, {})
        assert.deepStrictEqual(server.flights(), [
          `${EHLO}\r\n`,
          `${mailLine}\r\nRCPT TO:<b@x.test>\r\nDATA\r\n`,
          BLOCK,
          "QUIT\r\n"
        ])
        assert.notInclude(server.written(), "BDAT")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "chunking false"
    ))

  it.effect("CHUNKING without PIPELINING: DATA, one command at a time", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* send(MESSAGE, helloReply("unpipelined", ["CHUNKING"]), [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: "DATA", reply: GO },
          { expect: BLOCK, reply: QUEUED }
        ])
        assert.deepStrictEqual(result, {})
        assert.deepStrictEqual(server.flights(), [
          `${EHLO}\r\n`,
          `${mailLine}\r\n`,
          "RCPT TO:<b@x.test>\r\n",
          "DATA\r\n",
          BLOCK,
          "QUIT\r\n"
        ])
        assert.notInclude(server.written(), "BDAT")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "no pipelining"
    ))

  it.effect("two transactions in a row with BDAT: one flight each", () =>
    guard(
      Effect.gen(function*() {
        const tx = (from: string) => [
          { expect: `MAIL FROM:<${from}>`, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: BDAT_UNIT, reply: QUEUED }
        ]
        const server = yield* makeServer({
          steps: [
            { expect: EHLO, reply: CHUNKING_EHLO },
            ...tx("a1@x.test"),
            ...tx("a2@x.test"),
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          assert.deepStrictEqual(yield* smtp.sendmail("a1@x.test", "b@x.test", MESSAGE), {})
          assert.deepStrictEqual(yield* smtp.sendmail("a2@x.test", "b@x.test", MESSAGE), {})
        })).pipe(Effect.provide(server.layer))
        const flight = (from: string) => `MAIL FROM:<${from}>\r\nRCPT TO:<b@x.test>\r\n${BDAT_UNIT}`
        assert.deepStrictEqual(server.flights(), [`${EHLO}\r\n`, flight("a1@x.test"), flight("a2@x.test"), "QUIT\r\n"])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "two in a row"
    ))
})

describe("SMTP BDAT: streamed and large messages", () => {
  const SIZE = 600 * 1024

  it.effect("a Stream message: MAIL and RCPT first, then BDAT chunks of at most 256 KiB, the last marked LAST", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(SIZE)
        const units = bdatUnits(content, [262144, 262144, SIZE - 2 * 262144])
        const { result, server } = yield* send(Stream.succeed(content), CHUNKING_EHLO, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: units[0], reply: "250 2.0.0 262144 octets" },
          { expect: units[1], reply: "250 2.0.0 262144 octets" },
          { expect: units[2], reply: QUEUED }
        ])
        assert.deepStrictEqual(result, {})
        assert.strictEqual(server.flights()[1], `${mailLine}\r\nRCPT TO:<b@x.test>\r\n`)
        assert.strictEqual(
          server.written(),
          `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\n${units.join("")}QUIT\r\n`
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "stream chunks"
    ))

  it.effect("a Stream in many small pieces: chunks ≤ 256 KiB, only the last LAST, together the message (+CRLF)", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(SIZE)
        // 7000-byte pieces, and no final CRLF: one is appended
        const withoutCrlf = content.subarray(0, content.length - 2)
        const pieces: Array<Uint8Array> = []
        for (let i = 0; i < withoutCrlf.length; i += 7000) pieces.push(withoutCrlf.subarray(i, i + 7000))
        const server = yield* makeServer({
          steps: [
            { expect: EHLO, reply: CHUNKING_EHLO },
            { expect: mailLine, reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            // any number of chunks, each answered 250 (the LAST one too); then the QUIT, answered 250 as well
            ...Array.from(
              { length: 200 },
              () => ({ expect: /^(BDAT \d+( LAST)?\r\n[\s\S]*|QUIT)$/, reply: "250 2.0.0 ok" })
            )
          ],
          // more steps than chunks: the count is not prescribed
          strict: false
        })
        const exit = yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect(connectOptions),
            (smtp) => Effect.exit(smtp.sendmail("a@x.test", "b@x.test", Stream.fromIterable(pieces)))
          )
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(view(exit), { refused: {} })
        const units = server.connection(0).units().map(parseBdatUnit).filter((u) => u !== undefined)
        assert.isAbove(units.length, 1)
        for (const u of units) assert.isAtMost(u.size, 262144)
        assert.deepStrictEqual(units.map((u) => u.last), units.map((_, i) => i === units.length - 1))
        assert.strictEqual(units.map((u) => u.data).join(""), new TextDecoder().decode(content))
        assert.strictEqual(units.reduce((n, u) => n + u.size, 0), SIZE)
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "stream pieces"
    ))

  it.effect("an intermediate chunk refused: SmtpDataError (BDAT), the other chunk replies read, RSET", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(SIZE)
        const units = bdatUnits(content, [262144, 262144, SIZE - 2 * 262144])
        const { result, server } = yield* send(Stream.succeed(content), CHUNKING_EHLO, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: units[0], reply: "552 5.3.4 message too big" },
          { expect: units[1], reply: "503 5.5.1 no transaction" },
          { expect: units[2], reply: "503 5.5.1 no transaction" },
          { expect: "RSET", reply: "250 2.0.0 reset" }
        ])
        assert.deepStrictEqual(result, {
          _tag: "SmtpDataError",
          code: 552,
          text: "5.3.4 message too big",
          enhancedCode: "5.3.4",
          command: "BDAT"
        })
        assert.strictEqual(
          server.written(),
          `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\n${units.join("")}RSET\r\nQUIT\r\n`
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.strictEqual(server.connection(0).remaining(), 0)
      }),
      "intermediate refused"
    ))

  it.effect("a Stream message with every recipient refused: no chunk is written, RSET", () =>
    guard(
      Effect.gen(function*() {
        const { result, server } = yield* send(Stream.succeed(textOfSize(SIZE)), CHUNKING_EHLO, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: "550 5.1.1 no b" },
          { expect: "RSET", reply: "250 2.0.0 reset" }
        ])
        assert.deepStrictEqual(result, {
          _tag: "SmtpRecipientsRefused",
          recipients: { "b@x.test": encoded(550, "5.1.1 no b") }
        })
        assert.strictEqual(server.written(), `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\nRSET\r\nQUIT\r\n`)
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "stream all refused"
    ))

  /** Sends `content` (bytes) holding back every server reply until the client has stopped writing. */
  const sendHeld = (content: Uint8Array, after: ReadonlyArray<ScriptedTransport.Step>) =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [{ expect: EHLO, reply: CHUNKING_EHLO }, ...after, { expect: "QUIT", reply: "221 bye" }]
      })
      const { beforeReplies, refused } = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        yield* smtp.ehlo()
        yield* server.hold(() => true)
        const fiber = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", content))
        yield* eventually(server.holding, "the MAIL reply is held")
        for (let i = 0; i < 20; i++) {
          yield* Effect.yieldNow()
          yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))
        }
        // what the client wrote without any reply to MAIL
        const beforeReplies = server.written()
        yield* server.release
        return { beforeReplies, refused: yield* fiber.await }
      })).pipe(Effect.provide(server.layer))
      return { server, beforeReplies, refused }
    })

  it.effect("a message of exactly 1 MiB goes in the first flight", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(1024 * 1024)
        const unit = bdatUnits(content, [content.length])[0]
        const { beforeReplies, refused, server } = yield* sendHeld(content, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          { expect: unit, reply: QUEUED }
        ])
        assert.deepStrictEqual(view(refused), { refused: {} })
        const flight = `${mailLine}\r\nRCPT TO:<b@x.test>\r\n${unit}`
        assert.isTrue(beforeReplies === `${EHLO}\r\n${flight}`, "the whole message went before any reply")
        assert.isTrue(server.flights()[1] === flight)
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "1 MiB",
      10_000
    ))

  it.effect("a message of 1 MiB + 1 byte waits for the RCPT replies, then goes as 256 KiB chunks", () =>
    guard(
      Effect.gen(function*() {
        const content = textOfSize(1024 * 1024 + 1)
        const units = bdatUnits(content, [262144, 262144, 262144, 262144, 1])
        const { beforeReplies, refused, server } = yield* sendHeld(content, [
          { expect: mailLine, reply: OK },
          { expect: "RCPT TO:<b@x.test>", reply: OK },
          ...units.map((u, i) => ({ expect: u, reply: i === units.length - 1 ? QUEUED : "250 2.0.0 chunk ok" }))
        ])
        assert.deepStrictEqual(view(refused), { refused: {} })
        assert.strictEqual(beforeReplies, `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\n`)
        assert.strictEqual(server.flights()[1], `${mailLine}\r\nRCPT TO:<b@x.test>\r\n`)
        assert.isTrue(
          server.written() === `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\n${units.join("")}QUIT\r\n`,
          "the chunks after the RCPT replies"
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "1 MiB + 1",
      10_000
    ))
})

describe("SMTP BDAT: a dropped connection", () => {
  it.effect("the server closes without answering BDAT LAST: SmtpDeliveryUnknown, no QUIT", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: EHLO, reply: CHUNKING_EHLO },
            { expect: mailLine, reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: BDAT_UNIT, close: true }
          ]
        })
        const exit = yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect(connectOptions),
            (smtp) => Effect.exit(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
          )
        ).pipe(Effect.provide(server.layer))
        // the message may have been accepted: the outcome is unknown, never a retryable disconnection
        assert.deepStrictEqual(failureOf(exit), {
          _tag: "SmtpDeliveryUnknown",
          during: "waiting for the reply to BDAT",
          cause: { _tag: "SmtpServerDisconnected", during: "waiting for the reply to BDAT" }
        })
        assert.strictEqual(server.written(), `${EHLO}\r\n${mailLine}\r\nRCPT TO:<b@x.test>\r\n${BDAT_UNIT}`)
      }),
      "bdat dropped"
    ))
})
