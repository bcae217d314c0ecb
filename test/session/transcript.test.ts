/**
 * The debug transcript (smtplib's set_debuglevel) through Effect's Logger: exact `C:`/`S:` lines,
 * message data only as a byte count, timestamps at level 2 (the TestClock's epoch), nothing at 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SmtpClient } from "../../src/index.js"
import { captureLogs, connectOptions, ehloReply, guard, makeServer, type Mode, modes } from "./support.js"

const SECRET = "TOPSECRET-body-text"
const MESSAGE = `Subject: transcript\r\n\r\n.${SECRET}\r\n`
const BLOCK = `Subject: transcript\r\n\r\n..${SECRET}\r\n.\r\n`

const script = (mode: Mode) => ({
  steps: [
    { expect: "EHLO client.test", reply: ehloReply(mode, ["SIZE 1000"]) },
    { expect: `MAIL FROM:<a@x.test> SIZE=${MESSAGE.length}`, reply: "250 2.1.0 ok" },
    { expect: "RCPT TO:<b@x.test>", reply: "250 2.1.5 ok" },
    { expect: "RCPT TO:<c@x.test>", reply: "550-5.1.1 no such\r\n550 5.1.1 user" },
    { expect: "DATA", reply: "354 go ahead" },
    { expect: BLOCK, reply: `250 2.0.0 queued as ${SECRET.length}` },
    { expect: "QUIT", reply: "221 2.0.0 bye" }
  ]
})

const send = (mode: Mode, debug: 0 | 1 | 2) =>
  Effect.gen(function*() {
    const server = yield* makeServer(script(mode))
    const logs = captureLogs()
    yield* Effect.scoped(
      Effect.flatMap(
        SmtpClient.connect({ ...connectOptions, debug }),
        (smtp) => smtp.sendmail("a@x.test", ["b@x.test", "c@x.test"], MESSAGE)
      )
    ).pipe(Effect.provide(server.layer), logs.provide)
    assert.deepStrictEqual(server.connection(0).mismatches(), [])
    return logs.lines
  })

const expected = (mode: Mode): ReadonlyArray<string> => {
  const ehlo = ["C: EHLO client.test", "S: 250-mx.test greets client.test"]
  const features = mode === "pipelined" ? ["S: 250-PIPELINING", "S: 250 SIZE 1000"] : ["S: 250 SIZE 1000"]
  const mail = `C: MAIL FROM:<a@x.test> SIZE=${MESSAGE.length}`
  const envelope = mode === "pipelined" ?
    [
      mail,
      "C: RCPT TO:<b@x.test>",
      "C: RCPT TO:<c@x.test>",
      "C: DATA",
      "S: 250 2.1.0 ok",
      "S: 250 2.1.5 ok",
      "S: 550-5.1.1 no such",
      "S: 550 5.1.1 user",
      "S: 354 go ahead"
    ] :
    [
      mail,
      "S: 250 2.1.0 ok",
      "C: RCPT TO:<b@x.test>",
      "S: 250 2.1.5 ok",
      "C: RCPT TO:<c@x.test>",
      "S: 550-5.1.1 no such",
      "S: 550 5.1.1 user",
      "C: DATA",
      "S: 354 go ahead"
    ]
  return [
    "S: 220 mx.test ESMTP scripted",
    ...ehlo,
    ...features,
    ...envelope,
    `C: <message data: ${BLOCK.length} bytes>`,
    `S: 250 2.0.0 queued as ${SECRET.length}`,
    "C: QUIT",
    "S: 221 2.0.0 bye"
  ]
}

describe("debug transcript", () => {
  for (const mode of modes) {
    it.effect(`${mode}, debug 1: the exact C:/S: lines; message data as a byte count only`, () =>
      guard(
        Effect.gen(function*() {
          const lines = yield* send(mode, 1)
          assert.deepStrictEqual(lines, expected(mode))
          for (const line of lines) assert.notInclude(line, SECRET)
        }),
        "debug 1"
      ))

    it.effect(`${mode}, debug 2: the same lines, each after an ISO timestamp`, () =>
      guard(
        Effect.gen(function*() {
          const lines = yield* send(mode, 2)
          // the TestClock stands at the epoch
          assert.deepStrictEqual(lines, expected(mode).map((l) => `1970-01-01T00:00:00.000Z ${l}`))
          for (const line of lines) {
            assert.match(line, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z [CS]: /)
            assert.notInclude(line, SECRET)
          }
        }),
        "debug 2"
      ))

    it.effect(`${mode}, debug 0: nothing is logged`, () =>
      guard(
        Effect.gen(function*() {
          assert.deepStrictEqual(yield* send(mode, 0), [])
        }),
        "debug 0"
      ))
  }

  it.effect("debug 1 on failures: a refused sender, the drained replies and RSET are in the transcript", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [
            { expect: "EHLO client.test", reply: ehloReply("pipelined") },
            { expect: "MAIL FROM:<a@x.test>", reply: "550 5.1.8 bad sender" },
            { expect: "RCPT TO:<b@x.test>", reply: "503 5.5.1 need MAIL" },
            { expect: "DATA", reply: "503 5.5.1 need RCPT" },
            { expect: "RSET", reply: "250 2.0.0 ok" },
            { expect: "QUIT", reply: "221 2.0.0 bye" }
          ]
        })
        const logs = captureLogs()
        yield* Effect.scoped(
          Effect.flatMap(
            SmtpClient.connect({ ...connectOptions, debug: 1 }),
            (smtp) => Effect.ignore(smtp.sendmail("a@x.test", "b@x.test", `x ${SECRET}`))
          )
        ).pipe(Effect.provide(server.layer), logs.provide)
        assert.deepStrictEqual(logs.lines, [
          "S: 220 mx.test ESMTP scripted",
          "C: EHLO client.test",
          "S: 250-mx.test greets client.test",
          "S: 250 PIPELINING",
          "C: MAIL FROM:<a@x.test>",
          "C: RCPT TO:<b@x.test>",
          "C: DATA",
          "S: 550 5.1.8 bad sender",
          "S: 503 5.5.1 need MAIL",
          "S: 503 5.5.1 need RCPT",
          "C: RSET",
          "S: 250 2.0.0 ok",
          "C: QUIT",
          "S: 221 2.0.0 bye"
        ])
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }),
      "debug failure"
    ))
})
