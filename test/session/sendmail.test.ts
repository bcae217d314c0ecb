/**
 * sendmail over the scripted transport, byte-exact, with one table of cases run on the pipelined
 * path (EHLO advertises PIPELINING: MAIL, every RCPT and DATA go in one flight) and on the
 * unpipelined one (each command waits for the previous reply). Results and errors must be the
 * same on both paths; only the flights (and what a pipelined client had already sent) differ.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import {
  connectOptions,
  ehloReply,
  eventually,
  guard,
  makeServer,
  makeServerWith,
  type Mode,
  modes,
  plainError,
  plainRefused,
  type Server,
  utf8,
  wire,
  withinRealTime
} from "./support.js"

type Reply = ScriptedTransport.Reply

interface TxCase {
  readonly name: string
  /** EHLO keywords besides PIPELINING. */
  readonly features?: ReadonlyArray<string>
  readonly from?: string
  readonly to?: string | ReadonlyArray<string>
  readonly message?: SmtpConnection.MessageInput
  readonly options?: SmtpConnection.SendmailOptions
  /** The exact MAIL and RCPT lines, and the exact data block (terminator included). */
  readonly mailLine: string
  readonly rcptLines: ReadonlyArray<string>
  readonly dataBlock: string
  readonly mail: Reply
  readonly rcpts: ReadonlyArray<Reply>
  readonly data?: Reply
  readonly end?: Reply
  /** The reply to the empty message a client sends after an unwanted 354 (pipelined only). */
  readonly abandonedEnd?: Reply
  readonly outcome:
    | { readonly refused: Record<string, { readonly code: number; readonly text: string }> }
    | { readonly error: Record<string, unknown> }
}

const MESSAGE = "Subject: hi\r\n\r\nhello"
const BLOCK = "Subject: hi\r\n\r\nhello\r\n.\r\n"
const OK = "250 2.1.0 ok"
const QUEUED = "250 2.0.0 queued as 1234"
const GO = "354 go ahead"
/** MESSAGE as BDAT: with the CRLF the end of data would have added. */
const BDAT_LAST = `BDAT ${MESSAGE.length + 2} LAST\r\n${MESSAGE}\r\n`
const BYE421 = "421 4.3.2 service shutting down"

const codeOf = (reply: Reply): number => {
  const text = typeof reply === "string" ?
    reply :
    reply.map((c) => (typeof c === "string" ? c : new TextDecoder().decode(c))).join("")
  return Number(text.slice(0, 3))
}

/** A refused recipient's reply as the error encodes it. */
const encoded = (code: number, text: string) => ({ code, lines: text.split("\n") })

/**
 * The script the server plays for a case in a mode, and the client's flights (what it writes
 * between two replies it reads). This is smtplib's sendmail, seen from the server.
 */
const build = (mode: Mode, c: TxCase) => {
  const steps: Array<ScriptedTransport.Step> = [{ expect: "EHLO client.test", reply: ehloReply(mode, c.features) }]
  const flights: Array<Array<string>> = [["EHLO client.test\r\n"]]
  const step = (expect: string, reply: Reply) => {
    const close = codeOf(reply) === 421
    steps.push(close ? { expect, reply, close } : { expect, reply })
    return close
  }
  const rset = () => {
    flights.push(["RSET\r\n"])
    steps.push({ expect: "RSET", reply: "250 2.0.0 reset" })
  }
  const data = c.data ?? GO
  const end = c.end ?? QUEUED
  const units = [c.mailLine, ...c.rcptLines, "DATA"]
  const replies = [c.mail, ...c.rcpts, data]
  let closed = false

  /** After MAIL, RCPTs and DATA have been answered (pipelined) or the client stopped asking. */
  const sendData = () => {
    const dataCode = codeOf(data)
    if (dataCode === 421) {
      closed = true
      return
    }
    if (dataCode !== 354) return rset()
    flights.push([c.dataBlock])
    if (step(c.dataBlock, end)) {
      closed = true
      return
    }
    if (codeOf(end) !== 250) rset()
  }

  if (mode === "pipelined") {
    flights.push(units.map((u) => `${u}\r\n`))
    // the server answers every unit of the flight, unless it closes on the way
    for (let i = 0; i < units.length && !closed; i++) closed = step(units[i], replies[i])
    if (!closed) {
      const rcptCodes = c.rcpts.map(codeOf)
      const failed = codeOf(c.mail) !== 250 || rcptCodes.every((code) => code !== 250 && code !== 251)
      if (failed) {
        if (codeOf(data) === 354) {
          flights.push([".\r\n"])
          step(".\r\n", c.abandonedEnd ?? "554 5.5.1 no valid recipients")
        }
        rset()
      } else {
        const dataCode = codeOf(data)
        if (dataCode === 354) {
          flights.push([c.dataBlock])
          if (step(c.dataBlock, end)) closed = true
          else if (codeOf(end) !== 250) rset()
        } else if (dataCode !== 421) rset()
      }
    }
  } else {
    flights.push([`${c.mailLine}\r\n`])
    if (step(c.mailLine, c.mail)) closed = true
    else if (codeOf(c.mail) !== 250) rset()
    else {
      let accepted = 0
      for (let i = 0; i < c.rcptLines.length && !closed; i++) {
        flights.push([`${c.rcptLines[i]}\r\n`])
        closed = step(c.rcptLines[i], c.rcpts[i])
        const code = codeOf(c.rcpts[i])
        if (code === 250 || code === 251) accepted++
      }
      if (!closed) {
        if (accepted === 0) rset()
        else {
          flights.push(["DATA\r\n"])
          if (step("DATA", data)) closed = true
          else sendData()
        }
      }
    }
  }
  if (!closed) {
    flights.push(["QUIT\r\n"])
    steps.push({ expect: "QUIT", reply: "221 2.0.0 bye" })
  }
  return { steps, flights: flights.map((f) => f.join("")), written: wire(flights), closed }
}

const streamOf = (...parts: ReadonlyArray<string>) => Stream.fromIterable(parts.map(utf8)).pipe(Stream.rechunk(1))

const three = ["b@x.test", "c@x.test", "d@x.test"]
const threeLines = three.map((r) => `RCPT TO:<${r}>`)

const cases: ReadonlyArray<TxCase> = [
  {
    name: "success, one recipient, no SIZE advertised: no SIZE parameter",
    to: "b@x.test",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "success with SIZE advertised: SIZE= is the length after the line-ending fix",
    features: ["SIZE 10240000", "8BITMIME"],
    message: "Subject: hi\n\nhello\n",
    mailLine: "MAIL FROM:<a@x.test> SIZE=22",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "Subject: hi\r\n\r\nhello\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "SIZE without a limit still gets SIZE=",
    features: ["SIZE"],
    mailLine: "MAIL FROM:<a@x.test> SIZE=20",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "three recipients accepted (251 counts as accepted)",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK, "251 2.1.5 user not local; will forward", OK],
    outcome: { refused: {} }
  },
  {
    name: "dot-stuffing of every line that starts with a dot, the final CRLF.CRLF",
    message: ".leading\r\n..two\r\nmid.dle\r\n.\r\nend",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "..leading\r\n...two\r\nmid.dle\r\n..\r\nend\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "a string message that ends with CRLF gets only .CRLF",
    message: "a\r\n",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "a\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "an empty string message is CRLF.CRLF",
    message: "",
    features: ["SIZE 1000"],
    mailLine: "MAIL FROM:<a@x.test> SIZE=0",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "lone LF and lone CR in a string message become CRLF (then dots are stuffed)",
    features: ["SIZE 1000"],
    message: "a\nb\rc\r\nd\n.e\r",
    mailLine: "MAIL FROM:<a@x.test> SIZE=16",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "a\r\nb\r\nc\r\nd\r\n..e\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name:
      "a Uint8Array message is sent unchanged (bare LF and CR stay) but for dot-stuffing (after a bare CR too); SIZE is its length",
    features: ["SIZE 1000"],
    message: utf8("a\nb\r.c\n.d"),
    mailLine: "MAIL FROM:<a@x.test> SIZE=9",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "a\nb\r..c\n..d\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "a Uint8Array message ending with a bare LF still gets CRLF.CRLF",
    message: utf8("x\n"),
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "x\n\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "a Stream message (dots and CRLF at chunk boundaries): no SIZE without options.size",
    features: ["SIZE 1000"],
    message: streamOf("line1\r\n", ".dot\r\nx\r", "\n.y", "\r", "\n"),
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "line1\r\n..dot\r\nx\r\n..y\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "a Stream message with options.size: SIZE= that size",
    features: ["SIZE 1000"],
    message: streamOf("line1\r\n", ".dot\r\nx\r", "\n.y", "\r", "\n"),
    options: { size: 20 },
    mailLine: "MAIL FROM:<a@x.test> SIZE=20",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: "line1\r\n..dot\r\nx\r\n..y\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "mail options after SIZE, rcpt options on every RCPT",
    features: ["SIZE 1000", "8BITMIME", "DSN"],
    to: ["b@x.test", "c@x.test"],
    options: { mailOptions: ["BODY=8BITMIME", "RET=HDRS"], rcptOptions: ["NOTIFY=SUCCESS,FAILURE"] },
    mailLine: "MAIL FROM:<a@x.test> SIZE=20 BODY=8BITMIME RET=HDRS",
    rcptLines: ["RCPT TO:<b@x.test> NOTIFY=SUCCESS,FAILURE", "RCPT TO:<c@x.test> NOTIFY=SUCCESS,FAILURE"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK, OK],
    outcome: { refused: {} }
  },
  {
    name: "display names are dropped from the envelope; an empty sender is <>",
    from: "",
    to: ["Bob <b@x.test>", " <c@x.test> "],
    mailLine: "MAIL FROM:<>",
    rcptLines: ["RCPT TO:<b@x.test>", "RCPT TO:<c@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK, OK],
    outcome: { refused: {} }
  },
  {
    name: "SMTPUTF8 advertised: MAIL carries SMTPUTF8 and the addresses go as UTF-8",
    features: ["8BITMIME", "SMTPUTF8"],
    from: "jörg@exämple.test",
    to: ["zoë@x.test"],
    message: utf8("Subject: é\r\n\r\nété\r\n"),
    options: { mailOptions: ["SMTPUTF8", "BODY=8BITMIME"] },
    mailLine: "MAIL FROM:<jörg@exämple.test> SMTPUTF8 BODY=8BITMIME",
    rcptLines: ["RCPT TO:<zoë@x.test>"],
    dataBlock: "Subject: é\r\n\r\nété\r\n.\r\n",
    mail: OK,
    rcpts: [OK],
    outcome: { refused: {} }
  },
  {
    name: "one of three recipients refused: the record holds it, the message is sent",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK, "550 5.1.1 <c@x.test>: no such user", OK],
    outcome: { refused: { "c@x.test": { code: 550, text: "5.1.1 <c@x.test>: no such user" } } }
  },
  {
    name: "two refused, one with a multi-line reply",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: OK,
    rcpts: ["550-5.1.1 no such user\r\n550 5.1.1 try again never", "450 4.2.0 greylisted", OK],
    outcome: {
      refused: {
        "b@x.test": { code: 550, text: "5.1.1 no such user\n5.1.1 try again never" },
        "c@x.test": { code: 450, text: "4.2.0 greylisted" }
      }
    }
  },
  {
    name: "all recipients refused (DATA refused too): SmtpRecipientsRefused, then RSET",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: OK,
    rcpts: ["550 5.1.1 no b", "553 5.1.3 bad c", "450 4.2.1 later d"],
    data: "554 5.5.1 no valid recipients",
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: {
          "b@x.test": encoded(550, "5.1.1 no b"),
          "c@x.test": encoded(553, "5.1.3 bad c"),
          "d@x.test": encoded(450, "4.2.1 later d")
        }
      }
    }
  },
  {
    name: "all recipients refused, DATA answered 503: SmtpRecipientsRefused, then RSET",
    to: "b@x.test",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: ["550 5.1.1 no b"],
    data: "503 5.5.1 no recipients",
    outcome: { error: { _tag: "SmtpRecipientsRefused", recipients: { "b@x.test": encoded(550, "5.1.1 no b") } } }
  },
  {
    name: "all recipients refused but DATA answered 354: an empty message ends it (pipelined), then RSET",
    to: ["b@x.test", "c@x.test"],
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>", "RCPT TO:<c@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: ["550 5.1.1 no b", "550 5.1.1 no c"],
    data: GO,
    abandonedEnd: "554 5.5.1 no valid recipients",
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: { "b@x.test": encoded(550, "5.1.1 no b"), "c@x.test": encoded(550, "5.1.1 no c") }
      }
    }
  },
  {
    name: "sender refused: SmtpSenderRefused (the caller's sender string), RCPT/DATA replies consumed, RSET",
    from: "Alice <a@x.test>",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: "550 5.1.8 sender rejected",
    rcpts: ["503 5.5.1 need MAIL", "503 5.5.1 need MAIL", "503 5.5.1 need MAIL"],
    data: "503 5.5.1 need RCPT",
    outcome: {
      error: {
        _tag: "SmtpSenderRefused",
        code: 550,
        text: "5.1.8 sender rejected",
        enhancedCode: "5.1.8",
        command: "MAIL",
        sender: "Alice <a@x.test>"
      }
    }
  },
  {
    name: "sender refused with a transient code and no enhanced code",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: "451 try later",
    rcpts: ["503 need MAIL"],
    data: "503 need RCPT",
    outcome: {
      error: { _tag: "SmtpSenderRefused", code: 451, text: "try later", command: "MAIL", sender: "a@x.test" }
    }
  },
  {
    name: "sender refused and DATA answered 354 anyway: an empty message (pipelined), then RSET",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: "550 5.7.1 not you",
    rcpts: [OK],
    data: GO,
    abandonedEnd: "554 5.5.1 no transaction",
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
    name: "421 on MAIL: SmtpSenderRefused, no RSET, no QUIT",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: BYE421,
    rcpts: [OK, OK, OK],
    outcome: {
      error: {
        _tag: "SmtpSenderRefused",
        code: 421,
        text: "4.3.2 service shutting down",
        enhancedCode: "4.3.2",
        command: "MAIL",
        sender: "a@x.test"
      }
    }
  },
  {
    name: "421 on the second RCPT: SmtpRecipientsRefused with the refused so far, no RSET, no QUIT",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: OK,
    rcpts: ["550 5.1.1 no b", BYE421, OK],
    outcome: {
      error: {
        _tag: "SmtpRecipientsRefused",
        recipients: { "b@x.test": encoded(550, "5.1.1 no b"), "c@x.test": encoded(421, "4.3.2 service shutting down") }
      }
    }
  },
  {
    name: "421 on DATA: SmtpDataError, no RSET, no QUIT",
    to: three,
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: threeLines,
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK, OK, OK],
    data: BYE421,
    outcome: {
      error: {
        _tag: "SmtpDataError",
        code: 421,
        text: "4.3.2 service shutting down",
        enhancedCode: "4.3.2",
        command: "DATA"
      }
    }
  },
  {
    name: "421 after the final dot: SmtpDataError, no RSET, no QUIT",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK],
    end: BYE421,
    outcome: {
      error: {
        _tag: "SmtpDataError",
        code: 421,
        text: "4.3.2 service shutting down",
        enhancedCode: "4.3.2",
        command: "<end of data>"
      }
    }
  },
  {
    name: "DATA refused (554): SmtpDataError, RSET",
    to: ["b@x.test", "c@x.test"],
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>", "RCPT TO:<c@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK, "550 5.1.1 no c"],
    data: "554 5.3.0 no data today",
    outcome: {
      error: { _tag: "SmtpDataError", code: 554, text: "5.3.0 no data today", enhancedCode: "5.3.0", command: "DATA" }
    }
  },
  {
    name: "end of data refused (552): SmtpDataError, RSET",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK],
    end: "552-5.3.4 message too big\r\n552 5.3.4 really",
    outcome: {
      error: {
        _tag: "SmtpDataError",
        code: 552,
        text: "5.3.4 message too big\n5.3.4 really",
        enhancedCode: "5.3.4",
        command: "<end of data>"
      }
    }
  },
  {
    name: "end of data answered 251 (not 250): SmtpDataError as smtplib, RSET",
    mailLine: "MAIL FROM:<a@x.test>",
    rcptLines: ["RCPT TO:<b@x.test>"],
    dataBlock: BLOCK,
    mail: OK,
    rcpts: [OK],
    end: "251 odd",
    outcome: { error: { _tag: "SmtpDataError", code: 251, text: "odd", command: "<end of data>" } }
  }
]

/** Runs one sendmail in a scoped session; for a closed session also a NOOP afterwards. */
const runCase = (mode: Mode, c: TxCase, onServer: (server: Server) => void = () => {}) =>
  Effect.gen(function*() {
    const plan = build(mode, c)
    const server = yield* makeServer({ steps: plan.steps })
    onServer(server)
    const result = yield* Effect.scoped(
      Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        const exit = yield* Effect.exit(
          smtp.sendmail(c.from ?? "a@x.test", c.to ?? "b@x.test", c.message ?? MESSAGE, c.options)
        )
        const closed = yield* smtp.isClosed
        const after = closed ? yield* Effect.exit(smtp.noop) : undefined
        return { exit, closed, after }
      })
    ).pipe(Effect.provide(server.layer))
    return { plan, server, ...result }
  })

describe("sendmail: one table, pipelined and unpipelined", () => {
  for (const mode of modes) {
    describe(mode, () => {
      for (const c of cases) {
        it.effect(c.name, () => {
          let seen: Server | undefined
          return guard(
            Effect.gen(function*() {
              const { after, closed, exit, plan, server } = yield* runCase(mode, c, (s) => {
                seen = s
              })
              if ("refused" in c.outcome) {
                if (Exit.isFailure(exit)) assert.fail(`expected success, got ${Cause.pretty(exit.cause)}`)
                else assert.deepStrictEqual(plainRefused(exit.value), c.outcome.refused)
              } else {
                if (Exit.isSuccess(exit)) assert.fail("expected a failure, got success")
                else {assert.deepStrictEqual(
                    plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))),
                    c.outcome.error
                  )}
              }
              assert.strictEqual(server.written(), plan.written)
              assert.deepStrictEqual(server.flights(), plan.flights)
              assert.deepStrictEqual(server.connection(0).mismatches(), [])
              assert.strictEqual(server.connection(0).remaining(), 0)
              assert.strictEqual(closed, plan.closed)
              assert.isTrue(server.connection(0).clientClosed())
              if (plan.closed) {
                assert.isDefined(after)
                if (after !== undefined && Exit.isFailure(after)) {
                  assert.deepStrictEqual(plainError(Option.getOrUndefined(Cause.failureOption(after.cause))), {
                    _tag: "SmtpServerDisconnected",
                    during: "sending NOOP"
                  })
                } else assert.fail("NOOP on a closed session succeeded")
              }
            }),
            () => `${mode}: ${c.name} (the client wrote ${JSON.stringify(seen?.written() ?? "")})`
          )
        })
      }
    })
  }

  it.effect("every case of the table gives the same result or error on both paths", () =>
    Effect.gen(function*() {
      const view = (mode: Mode, c: TxCase) =>
        runCase(mode, c).pipe(
          Effect.map(({ exit }) =>
            Exit.match(exit, {
              onFailure: (cause) => ({ error: plainError(Option.getOrUndefined(Cause.failureOption(cause))) }),
              onSuccess: (refused) => ({ refused: plainRefused(refused) })
            })
          ),
          (effect) => withinRealTime(effect, 1000),
          Effect.map(Option.getOrElse(() => "hung" as const))
        )
      for (const c of cases) {
        assert.deepStrictEqual(yield* view("pipelined", c), yield* view("unpipelined", c), c.name)
      }
    }))
})

const plainSuccess = (mode: Mode) => [
  { expect: "EHLO client.test", reply: ehloReply(mode) },
  { expect: "MAIL FROM:<a@x.test>", reply: OK },
  { expect: "RCPT TO:<b@x.test>", reply: OK },
  { expect: "DATA", reply: GO },
  { expect: BLOCK, reply: QUEUED },
  { expect: "QUIT", reply: "221 bye" }
]

const failureOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))) : "success"

describe("sendmail: input", () => {
  for (const mode of modes) {
    describe(mode, () => {
      it.effect("`to` as a string and as a one-element array write the same bytes", () =>
        guard(
          Effect.gen(function*() {
            const a = yield* makeServer({ steps: plainSuccess(mode) })
            const b = yield* makeServer({ steps: plainSuccess(mode) })
            const send = (to: string | ReadonlyArray<string>) =>
              Effect.scoped(
                Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) => smtp.sendmail("a@x.test", to, MESSAGE))
              )
            assert.deepStrictEqual(yield* send("b@x.test").pipe(Effect.provide(a.layer)), {})
            assert.deepStrictEqual(yield* send(["b@x.test"]).pipe(Effect.provide(b.layer)), {})
            assert.strictEqual(a.written(), b.written())
            assert.strictEqual(
              a.written(),
              `EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
            )
            assert.deepStrictEqual(a.connection(0).mismatches(), [])
            assert.deepStrictEqual(b.connection(0).mismatches(), [])
          }),
          "to"
        ))

      it.effect("an empty `to` array is SmtpInvalidInput and nothing but QUIT is written", () =>
        guard(
          Effect.gen(function*() {
            const server = yield* makeServer({ steps: [{ expect: "QUIT", reply: "221 bye" }] })
            const exit = yield* Effect.scoped(
              Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) =>
                Effect.exit(smtp.sendmail("a@x.test", [], MESSAGE)))
            ).pipe(Effect.provide(server.layer))
            assert.deepStrictEqual(failureOf(exit), {
              _tag: "SmtpInvalidInput",
              reason: "sendmail needs at least one recipient"
            })
            assert.strictEqual(server.written(), "QUIT\r\n")
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "empty to"
        ))

      // what a JavaScript caller may give: a typed failure, not a defect
      for (
        const [what, from, to, reason] of [
          ["a sender", 7, "b@x.test", "The sender address is not a string (nothing was sent)"],
          ["`to`", "a@x.test", undefined, "sendmail needs at least one recipient"]
        ] as const
      ) {
        it.effect(`${what} that is not a string is SmtpInvalidInput and nothing but QUIT is written`, () =>
          guard(
            Effect.gen(function*() {
              const server = yield* makeServer({ steps: [{ expect: "QUIT", reply: "221 bye" }] })
              const exit = yield* Effect.scoped(
                Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) =>
                  Effect.exit(smtp.sendmail(from as unknown as string, to as unknown as string, MESSAGE)))
              ).pipe(Effect.provide(server.layer))
              assert.deepStrictEqual(failureOf(exit), { _tag: "SmtpInvalidInput", reason })
              assert.strictEqual(server.written(), "QUIT\r\n")
            }),
            "not a string"
          ))
      }

      it.effect("a non-ASCII string message is SmtpInvalidInput before anything is written", () =>
        guard(
          Effect.gen(function*() {
            const server = yield* makeServer({ steps: [{ expect: "QUIT", reply: "221 bye" }] })
            const exit = yield* Effect.scoped(
              Effect.flatMap(
                SmtpClient.connect(connectOptions),
                (smtp) => Effect.exit(smtp.sendmail("a@x.test", "b@x.test", "Subject: café\r\n\r\nhi"))
              )
            ).pipe(Effect.provide(server.layer))
            const error = failureOf(exit) as { _tag: string; reason: string }
            assert.strictEqual(error._tag, "SmtpInvalidInput")
            assert.include(error.reason, "index 12")
            assert.strictEqual(server.written(), "QUIT\r\n")
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "non-ascii"
        ))

      const invalid: ReadonlyArray<
        readonly [string, string, string | ReadonlyArray<string>, SmtpConnection.SendmailOptions | undefined]
      > = [
        ["LF in from", "a@x.test\nb", "b@x.test", undefined],
        ["CR in from", "a@x\r.test", "b@x.test", undefined],
        // the address in the last <...> is taken: the line break must not make another sender
        ["CRLF and a bracketed address in from", "a@x.test\r\nRCPT TO:<evil@x.test>", "b@x.test", undefined],
        ["a trailing CRLF in from", "a@x.test\r\n", "b@x.test", undefined],
        ["a trailing LF in a recipient", "a@x.test", ["b@x.test\n"], undefined],
        ["CRLF in the second recipient", "a@x.test", ["b@x.test", "c@x.test\r\nDATA"], undefined],
        ["LF in a mail option", "a@x.test", "b@x.test", { mailOptions: ["BODY=8BITMIME\nRSET"] }],
        ["CR in a rcpt option", "a@x.test", "b@x.test", { rcptOptions: ["NOTIFY=NEVER\r"] }],
        ["NUL in from", "a\0@x.test", "b@x.test", undefined],
        ["a non-ASCII address without SMTPUTF8", "jörg@x.test", "b@x.test", undefined]
      ]
      for (const [name, from, to, options] of invalid) {
        it.effect(`${name}: SmtpInvalidInput, no MAIL written`, () =>
          guard(
            Effect.gen(function*() {
              const server = yield* makeServer({
                steps: [
                  { expect: "EHLO client.test", reply: ehloReply(mode, ["SIZE 1000", "8BITMIME", "DSN"]) },
                  { expect: "QUIT", reply: "221 bye" }
                ]
              })
              const exit = yield* Effect.scoped(
                Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) =>
                  Effect.exit(smtp.sendmail(from, to, MESSAGE, options)))
              ).pipe(Effect.provide(server.layer))
              const error = failureOf(exit) as { _tag: string }
              // one assertion, so that a failure shows what went on the wire
              assert.deepStrictEqual(
                { error: error._tag, written: server.written() },
                { error: "SmtpInvalidInput", written: "EHLO client.test\r\nQUIT\r\n" }
              )
              assert.notInclude(server.written(), "MAIL")
              assert.deepStrictEqual(server.connection(0).mismatches(), [])
            }),
            name
          ))
      }

      it.effect("SMTPUTF8 in mailOptions without the extension: SmtpNotSupportedError, nothing after EHLO", () =>
        guard(
          Effect.gen(function*() {
            const server = yield* makeServer({
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode, ["8BITMIME"]) },
                { expect: "QUIT", reply: "221 bye" }
              ]
            })
            const exit = yield* Effect.scoped(
              Effect.flatMap(
                SmtpClient.connect(connectOptions),
                (smtp) => Effect.exit(smtp.sendmail("jörg@x.test", "b@x.test", MESSAGE, { mailOptions: ["smtputf8"] }))
              )
            ).pipe(Effect.provide(server.layer))
            assert.deepStrictEqual(failureOf(exit), {
              _tag: "SmtpNotSupportedError",
              feature: "SMTPUTF8",
              detail: "the mail options ask for SMTPUTF8"
            })
            assert.strictEqual(server.written(), "EHLO client.test\r\nQUIT\r\n")
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "smtputf8 unsupported"
        ))

      it.effect("SMTPUTF8: the addresses are written as UTF-8 bytes", () =>
        guard(
          Effect.gen(function*() {
            const server = yield* makeServer({
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode, ["SMTPUTF8"]) },
                { expect: "MAIL FROM:<jörg@x.test> SMTPUTF8", reply: OK },
                { expect: "RCPT TO:<δοκιμή@παράδειγμα.test>", reply: OK },
                { expect: "DATA", reply: GO },
                { expect: BLOCK, reply: QUEUED },
                { expect: "QUIT", reply: "221 bye" }
              ]
            })
            yield* Effect.scoped(
              Effect.flatMap(
                SmtpClient.connect(connectOptions),
                (smtp) => smtp.sendmail("jörg@x.test", "δοκιμή@παράδειγμα.test", MESSAGE, { mailOptions: ["SMTPUTF8"] })
              )
            ).pipe(Effect.provide(server.layer))
            const bytes = Array.from(server.bytes())
            const expected = Array.from(
              utf8(
                "EHLO client.test\r\nMAIL FROM:<jörg@x.test> SMTPUTF8\r\nRCPT TO:<δοκιμή@παράδειγμα.test>\r\nDATA\r\n" +
                  `${BLOCK}QUIT\r\n`
              )
            )
            assert.deepStrictEqual(bytes, expected)
            // "ö" is C3 B6 on the wire, not latin-1 F6
            assert.isTrue(bytes.includes(0xc3) && !bytes.includes(0xf6))
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "utf8 bytes"
        ))

      it.effect("a Stream message writes the same bytes as the same content as a Uint8Array", () =>
        guard(
          Effect.gen(function*() {
            const content = "x\r\n.a\r\nb.\r\n..c\n.\r\nlast"
            const steps = [
              { expect: "EHLO client.test", reply: ehloReply(mode) },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: OK },
              { expect: "DATA", reply: GO },
              { expect: "x\r\n..a\r\nb.\r\n...c\n..\r\nlast\r\n.\r\n", reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
            const a = yield* makeServer({ steps })
            const b = yield* makeServer({ steps })
            const send = (message: SmtpConnection.MessageInput) =>
              Effect.scoped(Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) =>
                smtp.sendmail("a@x.test", "b@x.test", message)))
            yield* send(utf8(content)).pipe(Effect.provide(a.layer))
            // split everywhere: one byte per chunk
            yield* send(streamOf(...content.split(""))).pipe(Effect.provide(b.layer))
            assert.strictEqual(b.written(), a.written())
            assert.deepStrictEqual(a.connection(0).mismatches(), [])
            assert.deepStrictEqual(b.connection(0).mismatches(), [])
          }),
          "stream vs bytes"
        ))

      it.effect("a Stream message that fails half-way: its error, the connection closed, no QUIT", () =>
        guard(
          Effect.gen(function*() {
            const server = yield* makeServer({
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode) },
                { expect: "MAIL FROM:<a@x.test>", reply: OK },
                { expect: "RCPT TO:<b@x.test>", reply: OK },
                { expect: "DATA", reply: GO }
              ]
            })
            const message = Stream.concat(Stream.succeed(utf8("first part\r\n")), Stream.fail("disk error" as const))
            const { closed, exit } = yield* Effect.scoped(
              Effect.gen(function*() {
                const smtp = yield* SmtpClient.connect(connectOptions)
                const exit = yield* Effect.exit(smtp.sendmail("a@x.test", "b@x.test", message))
                return { exit, closed: yield* smtp.isClosed }
              })
            ).pipe(Effect.provide(server.layer))
            assert.strictEqual(
              Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : "success",
              "disk error"
            )
            assert.isTrue(closed)
            assert.strictEqual(
              server.written(),
              "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nfirst part\r\n"
            )
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "failing stream"
        ))

      it.effect("two sendmails in a row: one EHLO, two transactions", () =>
        guard(
          Effect.gen(function*() {
            const tx = (from: string) => [
              { expect: `MAIL FROM:<${from}>`, reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: OK },
              { expect: "DATA", reply: GO },
              { expect: BLOCK, reply: QUEUED }
            ]
            const server = yield* makeServer({
              steps: [
                { expect: "EHLO client.test", reply: ehloReply(mode) },
                ...tx("a1@x.test"),
                ...tx("a2@x.test"),
                { expect: "QUIT", reply: "221 bye" }
              ]
            })
            yield* Effect.scoped(
              Effect.gen(function*() {
                const smtp = yield* SmtpClient.connect(connectOptions)
                assert.deepStrictEqual(yield* smtp.sendmail("a1@x.test", "b@x.test", MESSAGE), {})
                assert.deepStrictEqual(yield* smtp.sendmail("a2@x.test", "b@x.test", MESSAGE), {})
              })
            ).pipe(Effect.provide(server.layer))
            const txBytes = (from: string) => `MAIL FROM:<${from}>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}`
            assert.strictEqual(
              server.written(),
              `EHLO client.test\r\n${txBytes("a1@x.test")}${txBytes("a2@x.test")}QUIT\r\n`
            )
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "two in a row"
        ))
    })
  }

  it.effect("after a HELO fallback: no SIZE, no mail or rcpt options (ESMTP only, as smtplib)", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: "EHLO client.test", reply: "500 5.5.1 what?" },
            { expect: "HELO client.test", reply: "250 mx.test" },
            { expect: "MAIL FROM:<a@x.test>", reply: OK },
            { expect: "RCPT TO:<b@x.test>", reply: OK },
            { expect: "DATA", reply: GO },
            { expect: BLOCK, reply: QUEUED },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const refused = yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect(connectOptions),
            (smtp) =>
              smtp.sendmail("a@x.test", "b@x.test", MESSAGE, {
                mailOptions: ["BODY=8BITMIME"],
                rcptOptions: ["NOTIFY=NEVER"],
                size: 20
              })
          )
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(refused, {})
        assert.strictEqual(
          server.written(),
          `EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "helo fallback"
    ))

  it.effect("EHLO and HELO both refused: SmtpHeloError with the HELO reply, no MAIL", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: "EHLO client.test", reply: "500 5.5.1 what?" },
            { expect: "HELO client.test", reply: "501 5.5.4 go away" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const exit = yield* Effect.scoped(
          Effect.flatMap(SmtpClient.connect(connectOptions), (smtp) =>
            Effect.exit(smtp.sendmail("a@x.test", "b@x.test", MESSAGE)))
        ).pipe(Effect.provide(server.layer))
        assert.deepStrictEqual(failureOf(exit), {
          _tag: "SmtpHeloError",
          code: 501,
          text: "5.5.4 go away",
          enhancedCode: "5.5.4",
          command: "HELO"
        })
        assert.strictEqual(server.written(), "EHLO client.test\r\nHELO client.test\r\nQUIT\r\n")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "helo error"
    ))
})

describe("sendmail: concurrency", () => {
  for (const mode of modes) {
    it.effect(`${mode}: two concurrent sendmails on one connection are two whole transactions`, () =>
      guard(
        Effect.gen(function*() {
          const tx = [
            { expect: /^MAIL FROM:<(one|two)@x\.test>$/, reply: OK },
            { expect: /^RCPT TO:<(one|two)-rcpt@x\.test>$/, reply: OK },
            { expect: "DATA", reply: GO },
            { expect: /^body of (one|two)\r\n\.\r\n$/, reply: QUEUED }
          ]
          const server = yield* makeServer({
            steps: [
              { expect: "EHLO client.test", reply: ehloReply(mode) },
              ...tx,
              ...tx,
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const results = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              const send = (who: string) =>
                smtp.sendmail(`${who}@x.test`, `${who}-rcpt@x.test`, streamOf("body ", "of ", who))
              return yield* Effect.all([send("one"), send("two")], { concurrency: 2 })
            })
          ).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(results, [{}, {}])
          const txBytes = (who: string) =>
            `MAIL FROM:<${who}@x.test>\r\nRCPT TO:<${who}-rcpt@x.test>\r\nDATA\r\nbody of ${who}\r\n.\r\n`
          const written = server.written()
          const oneFirst = `EHLO client.test\r\n${txBytes("one")}${txBytes("two")}QUIT\r\n`
          const twoFirst = `EHLO client.test\r\n${txBytes("two")}${txBytes("one")}QUIT\r\n`
          assert.isTrue(written === oneFirst || written === twoFirst, JSON.stringify(written))
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "concurrency"
      ))
  }
})

// with the Socket's writer, and with a write that hands the bytes over at once (NodeSmtpTransport's:
// a pipelined DATA transaction is then one Effect.async, its message written from the reader)
for (const syncWrite of [false, true]) {
  describe(`sendmail: interruption${syncWrite ? " (synchronous write)" : ""}`, () => {
    it.effect("unpipelined: interrupted while waiting for the RCPT reply; the next sendmail sends RSET first", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehloReply("unpipelined") },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: "250 2.1.5 slow ok" },
              { expect: "RSET", reply: "250 2.0.0 reset" },
              { expect: "MAIL FROM:<a2@x.test>", reply: OK },
              { expect: "RCPT TO:<b2@x.test>", reply: OK },
              { expect: "DATA", reply: GO },
              { expect: BLOCK, reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const second = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              yield* server.hold((chunk) => chunk.includes("slow ok"))
              const first = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
              yield* eventually(server.holding, "the RCPT reply is held")
              yield* Fiber.interrupt(first)
              const second = yield* Effect.fork(smtp.sendmail("a2@x.test", "b2@x.test", MESSAGE))
              // the late RCPT reply arrives after RSET went out: it must not be taken for RSET's
              yield* eventually(
                () => server.written().includes("RSET") || server.connection(0).clientClosed(),
                "RSET written (or the connection closed)"
              )
              yield* server.release
              return yield* Fiber.join(second)
            })
          ).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(second, {})
          assert.strictEqual(
            server.written(),
            "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRSET\r\n" +
              `MAIL FROM:<a2@x.test>\r\nRCPT TO:<b2@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
          )
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "interrupt unpipelined"
      ))

    it.effect("unpipelined: the late reply arrives before the next sendmail; RSET, then success", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehloReply("unpipelined") },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: "250 2.1.5 slow ok" },
              { expect: "RSET", reply: "250 2.0.0 reset" },
              { expect: "MAIL FROM:<a2@x.test>", reply: OK },
              { expect: "RCPT TO:<b2@x.test>", reply: OK },
              { expect: "DATA", reply: GO },
              { expect: BLOCK, reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const second = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              yield* server.hold((chunk) => chunk.includes("slow ok"))
              const first = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
              yield* eventually(server.holding, "the RCPT reply is held")
              yield* Fiber.interrupt(first)
              yield* server.release
              return yield* smtp.sendmail("a2@x.test", "b2@x.test", MESSAGE)
            })
          ).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(second, {})
          assert.strictEqual(
            server.written(),
            "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRSET\r\n" +
              `MAIL FROM:<a2@x.test>\r\nRCPT TO:<b2@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
          )
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "interrupt unpipelined, reply first"
      ))

    it.effect("BDAT in one flight: interrupted while waiting, the RCPT refused; the next sendmail sends RSET first", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehloReply("pipelined", ["CHUNKING"]) },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: "550 5.1.1 slow no" },
              { expect: BDAT_LAST, reply: "554 5.5.1 no valid recipients" },
              { expect: "RSET", reply: "250 2.0.0 reset" },
              { expect: "MAIL FROM:<a2@x.test>", reply: OK },
              { expect: "RCPT TO:<b2@x.test>", reply: OK },
              { expect: BDAT_LAST, reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const second = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              yield* server.hold((chunk) => chunk.includes("slow no"))
              const first = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
              yield* eventually(server.holding, "the RCPT reply is held")
              yield* Fiber.interrupt(first)
              yield* server.release
              // the late replies are read before the next operation begins
              yield* Effect.repeatN(Effect.yieldNow(), 50)
              return yield* smtp.sendmail("a2@x.test", "b2@x.test", MESSAGE)
            })
          ).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(second, {})
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "interrupt one-flight BDAT"
      ))

    it.effect("BDAT in one flight: a send in an uninterruptible region of a fiber already interrupted completes", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehloReply("pipelined", ["CHUNKING"]) },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: OK },
              { expect: BDAT_LAST, reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const outcome = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              const gate = yield* Effect.makeLatch(false)
              const fiber = yield* Effect.fork(
                Effect.uninterruptible(Effect.zipRight(gate.await, smtp.sendmail("a@x.test", "b@x.test", MESSAGE)))
              )
              yield* Effect.yieldNow()
              yield* Fiber.interruptFork(fiber)
              yield* Effect.yieldNow()
              yield* gate.open
              return yield* withinRealTime(Fiber.await(fiber), 1000)
            })
          ).pipe(Effect.provide(server.layer))
          assert.isTrue(Option.isSome(outcome), "the send hung")
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "uninterruptible one-flight BDAT in an interrupted fiber"
      ))

    it.effect("pipelined: a send in an uninterruptible region of a fiber already interrupted completes", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehloReply("pipelined") },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: OK },
              { expect: "DATA", reply: GO },
              { expect: BLOCK, reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const outcome = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              const gate = yield* Effect.makeLatch(false)
              // a finalizer-like send: interrupted while it waits, it still runs to its end
              const fiber = yield* Effect.fork(
                Effect.uninterruptible(Effect.zipRight(gate.await, smtp.sendmail("a@x.test", "b@x.test", MESSAGE)))
              )
              yield* Effect.yieldNow()
              yield* Fiber.interruptFork(fiber)
              yield* Effect.yieldNow()
              yield* gate.open
              return yield* withinRealTime(Fiber.await(fiber), 1000)
            })
          ).pipe(Effect.provide(server.layer))
          assert.isTrue(Option.isSome(outcome), "the send hung")
          // (the fiber ends interrupted once the region is over: the send inside it completed)
          assert.strictEqual(
            server.written(),
            `EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
          )
        }),
        "uninterruptible send in an interrupted fiber"
      ))

    it.effect("pipelined: interrupted while waiting for the RCPT reply (DATA refused 503); RSET, then success", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite }, {
            steps: [
              { expect: "EHLO client.test", reply: ehloReply("pipelined") },
              { expect: "MAIL FROM:<a@x.test>", reply: OK },
              { expect: "RCPT TO:<b@x.test>", reply: "550 5.1.1 slow no" },
              { expect: "DATA", reply: "503 5.5.1 no valid recipients" },
              { expect: "RSET", reply: "250 2.0.0 reset" },
              { expect: "MAIL FROM:<a2@x.test>", reply: OK },
              { expect: "RCPT TO:<b2@x.test>", reply: OK },
              { expect: "DATA", reply: GO },
              { expect: BLOCK, reply: QUEUED },
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          const second = yield* Effect.scoped(
            Effect.gen(function*() {
              const smtp = yield* SmtpClient.connect(connectOptions)
              yield* server.hold((chunk) => chunk.includes("slow no"))
              const first = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
              yield* eventually(server.holding, "the RCPT reply is held")
              yield* Fiber.interrupt(first)
              yield* server.release
              return yield* smtp.sendmail("a2@x.test", "b2@x.test", MESSAGE)
            })
          ).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(second, {})
          assert.strictEqual(
            server.written(),
            "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\nRSET\r\n" +
              `MAIL FROM:<a2@x.test>\r\nRCPT TO:<b2@x.test>\r\nDATA\r\n${BLOCK}QUIT\r\n`
          )
          assert.deepStrictEqual(server.connection(0).mismatches(), [])
        }),
        "interrupt pipelined, DATA refused"
      ))

    it.effect(
      "pipelined: interrupted while waiting for the RCPT reply (DATA already answered 354); the connection is closed, never ended with an empty message",
      () =>
        guard(
          Effect.gen(function*() {
            const server = yield* makeServerWith({ syncWrite }, {
              steps: [
                { expect: "EHLO client.test", reply: ehloReply("pipelined") },
                { expect: "MAIL FROM:<a@x.test>", reply: OK },
                { expect: "RCPT TO:<b@x.test>", reply: "250 2.1.5 slow ok" },
                { expect: "DATA", reply: GO }
                // the server now reads message data: ending it would deliver an empty message to b@,
                // so the only safe move is to close the connection
              ]
            })
            const second = yield* Effect.scoped(
              Effect.gen(function*() {
                const smtp = yield* SmtpClient.connect(connectOptions)
                yield* server.hold((chunk) => chunk.includes("slow ok"))
                const first = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
                yield* eventually(server.holding, "the RCPT reply is held")
                yield* Fiber.interrupt(first)
                yield* server.release
                const outcome = yield* withinRealTime(
                  Effect.either(smtp.sendmail("a2@x.test", "b2@x.test", MESSAGE)),
                  1000
                )
                if (Option.isNone(outcome)) yield* smtp.close
                return outcome
              })
            ).pipe(Effect.provide(server.layer))
            assert.deepStrictEqual(
              Option.match(second, {
                onNone: () => "hung",
                onSome: (e) => e._tag === "Right" ? e.right : (plainError(e.left) as { _tag: string })._tag
              }),
              "SmtpServerDisconnected"
            )
            assert.strictEqual(
              server.written(),
              "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
            )
            assert.isTrue(server.connection(0).clientClosed())
            assert.deepStrictEqual(server.connection(0).mismatches(), [])
          }),
          "interrupt pipelined",
          4000
        )
    )
  })
}
