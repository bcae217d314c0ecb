/**
 * A stray reply never turns a refused message into a success. The scripted server
 * (`ScriptedTransport`) refuses the message (554 to the end of data / BDAT LAST, or 550 to the only
 * RCPT) and, right after one of its replies (the greeting, EHLO, MAIL, RCPT, DATA, the end of data,
 * RSET), sends one reply nobody asked for: a random 2xx/4xx/5xx code (common codes weighted up) with
 * random text, one or two lines, in the same chunk as the reply or as a chunk of its own. The send
 * must fail, whatever the stray: RFC 5321 allows no unsolicited reply but 421, and a reply taken for
 * another command's must never make a refusal look like an acceptance.
 *
 * Pipelined DATA, unpipelined DATA and BDAT one-flight (MAIL, RCPT and BDAT LAST in one write).
 * A run that waits (a reply that never comes) is ended by its timeout on the TestClock: a failure,
 * which the property allows; only a success is a counterexample.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FastCheck, Fiber, TestClock } from "effect"
import { SmtpClient } from "../../src/index.js"
import { ScriptedTransport } from "../../src/testing/index.js"

type Mode = "pipelined DATA" | "unpipelined DATA" | "BDAT one-flight"
type Refusal = "554 at the end of data" | "550 at RCPT"

const MESSAGE = "Subject: stray\r\n\r\nhello\r\n"

/** The server's replies in order (the greeting first), for a transaction it refuses. */
const replies = (mode: Mode, refusal: Refusal): ReadonlyArray<string> => {
  const ehlo = mode === "unpipelined DATA" ?
    "250-mx.test\r\n250 8BITMIME" :
    mode === "pipelined DATA" ?
    "250-mx.test\r\n250 PIPELINING" :
    "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
  const atRcpt = refusal === "550 at RCPT"
  const transaction = mode === "BDAT one-flight" ?
    // MAIL, RCPT, BDAT 23 LAST (in one write)
    ["250 2.1.0 ok", atRcpt ? "550 5.1.1 no such user" : "250 2.1.5 ok", "554 5.7.1 refused"] :
    mode === "pipelined DATA" ?
    // MAIL, RCPT, DATA (in one write), then the data
    atRcpt ?
      ["250 2.1.0 ok", "550 5.1.1 no such user", "554 5.5.1 no valid recipients"] :
      ["250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead", "554 5.7.1 refused"] :
    // unpipelined: nothing after a refused RCPT
    atRcpt ?
    ["250 2.1.0 ok", "550 5.1.1 no such user"] :
    ["250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead", "554 5.7.1 refused"]
  return ["220 mx.test ESMTP stray", ehlo, ...transaction, "250 2.0.0 reset"]
}

interface Stray {
  readonly position: number
  readonly code: number
  readonly text: string
  readonly lines: 1 | 2
  readonly ownChunk: boolean
}

const strayText = (s: Stray) =>
  s.lines === 1 ? `${s.code} ${s.text}\r\n` : `${s.code}-${s.text}\r\n${s.code} and more\r\n`

/** The script: the replies with the stray after the one at `position` (the greeting is 0). */
const script = (mode: Mode, refusal: Refusal, stray: Stray): ScriptedTransport.Script => {
  const all = replies(mode, refusal)
  const position = stray.position % all.length
  const withStray = (reply: string, i: number): ScriptedTransport.Reply =>
    i !== position ?
      reply :
      stray.ownChunk ?
      [`${reply}\r\n`, strayText(stray)] :
      [`${reply}\r\n${strayText(stray)}`]
  const [greeting, ...rest] = all.map(withStray)
  // no expectations: a shifted reply changes what the client sends next, the server answers in order
  return { greeting, steps: [...rest.map((reply) => ({ reply })), { reply: "221 2.0.0 bye" }] }
}

const code = FastCheck.oneof(
  {
    weight: 3,
    arbitrary: FastCheck.constantFrom(220, 221, 250, 251, 252, 421, 450, 451, 452, 500, 501, 503, 550, 552, 554)
  },
  {
    weight: 1,
    arbitrary: FastCheck.oneof(FastCheck.integer({ min: 200, max: 299 }), FastCheck.integer({ min: 400, max: 599 }))
  }
)
const stray: FastCheck.Arbitrary<Stray> = FastCheck.record({
  position: FastCheck.nat({ max: 50 }),
  code,
  text: FastCheck.stringMatching(/^[ -~]{0,30}$/),
  lines: FastCheck.constantFrom(1 as const, 2 as const),
  ownChunk: FastCheck.boolean()
})

/** Sends the message; a run that waits is ended by the timeout (TestClock). */
const attempt = (mode: Mode, refusal: Refusal, s: Stray) =>
  Effect.gen(function*() {
    const server = yield* ScriptedTransport.make(script(mode, refusal, s))
    const fiber = yield* Effect.fork(
      Effect.scoped(Effect.flatMap(
        SmtpClient.connect({ host: "mx.test", security: "none", timeout: "5 seconds", closeTimeout: "1 second" }),
        (smtp) => smtp.sendmail("a@x.test", "b@x.test", MESSAGE)
      )).pipe(Effect.provide(server.layer), Effect.exit)
    )
    for (let i = 0; i < 500 && fiber.unsafePoll() === null; i++) yield* Effect.yieldNow()
    if (fiber.unsafePoll() === null) yield* TestClock.adjust("10 seconds")
    const exit = yield* Fiber.join(fiber)
    return { exit, written: server.written(0) }
  })

const modes: ReadonlyArray<Mode> = ["pipelined DATA", "unpipelined DATA", "BDAT one-flight"]
const refusals: ReadonlyArray<Refusal> = ["554 at the end of data", "550 at RCPT"]

describe("a stray reply never makes a refused message a success (property)", () => {
  for (const mode of modes) {
    for (const refusal of refusals) {
      it.effect.prop(
        `${mode}, ${refusal}: any stray after any reply → the send fails`,
        [stray],
        ([s]) =>
          Effect.gen(function*() {
            const { exit, written } = yield* attempt(mode, refusal, s)
            assert.isTrue(
              Exit.isFailure(exit),
              `the refused message was reported sent, after the stray ${JSON.stringify(strayText(s))} ` +
                `following reply #${s.position % replies(mode, refusal).length} ` +
                `(${s.ownChunk ? "its own chunk" : "same chunk"}); the client wrote ${JSON.stringify(written)}`
            )
          }),
        {
          fastCheck: {
            numRuns: 100,
            // always tried: a 250 right after the reply to MAIL, in each delivery shape
            examples: [
              [{ position: 2, code: 250, text: "stray", lines: 1, ownChunk: false }],
              [{ position: 2, code: 250, text: "stray", lines: 1, ownChunk: true }]
            ]
          }
        }
      )
    }
  }
})
