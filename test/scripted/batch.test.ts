/**
 * sendBatch: cross-message pipelining (RFC 2920 §3.1), one outcome per message in order, flights
 * byte-exact.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Stream, TestClock } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import { makeServer } from "../session/support.js"

const connectOptions = { host: "mx.test", security: "none" } as const
const PIPELINING = "250-mx.test\r\n250 PIPELINING"
const CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number, to = `r${i}@x.test`): SmtpConnection.BatchItem => ({
  from: "a@x.test",
  to,
  message: body(i)
})
const env = (i: number, to = `r${i}@x.test`) => [`MAIL FROM:<a@x.test>`, `RCPT TO:<${to}>`]

/** What an outcome says, as plain data. */
const view = (o: SmtpConnection.BatchOutcome) =>
  o._tag === "Sent" ? { tag: o._tag, index: o.index, code: o.reply.code } : {
    tag: o._tag,
    index: o.index,
    error: o.error._tag,
    ...("code" in o.error ? { code: o.error.code } : {})
  }

const runBatch = (
  server: Effect.Effect.Success<ReturnType<typeof makeServer>>,
  items: ReadonlyArray<SmtpConnection.BatchItem>
) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect(connectOptions)
    return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
  })).pipe(Effect.provide(server.layer))

describe("sendBatch with DATA: the next envelope rides with the previous end of data", () => {
  it.effect("three messages in four flights, one round trip per message", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, reply: "250 2.0.0 queued as A1" },
          ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(2)}.\r\n`, reply: "250 2.0.0 queued as A2" },
          ...env(3).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(3)}.\r\n`, reply: "250 2.0.0 queued as A3" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const outcomes = yield* runBatch(server, [item(1), item(2), item(3)])
      assert.deepStrictEqual(outcomes.map(view), [
        { tag: "Sent", index: 0, code: 250 },
        { tag: "Sent", index: 1, code: 250 },
        { tag: "Sent", index: 2, code: 250 }
      ])
      assert.strictEqual(outcomes[1]._tag === "Sent" && outcomes[1].reply.text, "2.0.0 queued as A2")
      assert.deepStrictEqual(server.flights(), [
        "EHLO client.test\r\n",
        "MAIL FROM:<a@x.test>\r\nRCPT TO:<r1@x.test>\r\nDATA\r\n",
        `${body(1)}.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<r2@x.test>\r\nDATA\r\n`,
        `${body(2)}.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<r3@x.test>\r\nDATA\r\n`,
        `${body(3)}.\r\n`,
        "QUIT\r\n"
      ])
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.effect("a refused message never affects the others: RCPT refused, then a 554 after the data", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, reply: "250 queued" },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<r2@x.test>", reply: "550 5.1.1 no such user" },
          { expect: "DATA", reply: "554 5.5.1 no valid recipients" },
          { expect: "RSET", reply: "250 reset" },
          ...env(3).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(3)}.\r\n`, reply: "554 5.7.1 rejected as spam" },
          ...env(4).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(4)}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const outcomes = yield* runBatch(server, [item(1), item(2), item(3), item(4)])
      assert.deepStrictEqual(outcomes.map(view), [
        { tag: "Sent", index: 0, code: 250 },
        { tag: "Refused", index: 1, error: "SmtpRecipientsRefused" },
        { tag: "Refused", index: 2, error: "SmtpDataError", code: 554 },
        { tag: "Sent", index: 3, code: 250 }
      ])
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
      assert.include(server.flights(), "RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<r3@x.test>\r\nDATA\r\n")
    }))

  it.effect("the connection closes after a flight: that message unknown, the rest not sent", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, close: true }
        ]
      })
      const outcomes = yield* runBatch(server, [item(1), item(2), item(3)])
      assert.deepStrictEqual(outcomes.map((o) => [o._tag, o.index]), [["Unknown", 0], ["NotSent", 1], ["NotSent", 2]])
      assert.strictEqual(outcomes[0]._tag === "Unknown" && outcomes[0].error._tag, "SmtpDeliveryUnknown")
    }))

  it.effect("an invalid item is NotSent and written nowhere; the others go", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, reply: "250 queued" },
          ...env(3).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(3)}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const outcomes = yield* runBatch(server, [item(1), item(2, "evil@x.test\r\nRCPT TO:<x@y>"), item(3)])
      assert.deepStrictEqual(outcomes.map(view), [
        { tag: "Sent", index: 0, code: 250 },
        { tag: "NotSent", index: 1, error: "SmtpInvalidInput" },
        { tag: "Sent", index: 2, code: 250 }
      ])
      assert.notInclude(server.written(), "evil")
    }))

  it.effect("a Stream of items is pulled on demand", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, reply: "250 queued" },
          ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(2)}.\r\n`, reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      let pulled = 0
      const items = Stream.fromIterable([item(1), item(2)]).pipe(
        Stream.rechunk(1),
        Stream.tap(() => Effect.sync(() => pulled++))
      )
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        const all = yield* Stream.runCollect(smtp.sendBatch(items))
        return Chunk.toReadonlyArray(all)
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(first.map((o) => o._tag), ["Sent", "Sent"])
      assert.strictEqual(pulled, 2)
    }))
})

describe("sendBatch with BDAT: messages written without waiting", () => {
  it.effect("three messages go out before the first reply is read; RSET between them", () =>
    Effect.gen(function*() {
      const bdat = (i: number) => `BDAT ${body(i).length} LAST\r\n${body(i)}`
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: CHUNKING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: bdat(1), reply: "250 queued 1" },
          { expect: "RSET", reply: "250 reset" },
          { expect: "MAIL FROM:<a@x.test>", reply: "550 5.7.1 sender refused" },
          { expect: "RCPT TO:<r2@x.test>", reply: "503 5.5.1 need MAIL" },
          { expect: bdat(2), reply: "503 5.5.1 no transaction" },
          { expect: "RSET", reply: "250 reset" },
          ...env(3).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: bdat(3), reply: "250 queued 3" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const outcomes = yield* runBatch(server, [item(1), item(2), item(3)])
      assert.deepStrictEqual(outcomes.map(view), [
        { tag: "Sent", index: 0, code: 250 },
        { tag: "Refused", index: 1, error: "SmtpSenderRefused", code: 550 },
        { tag: "Sent", index: 2, code: 250 }
      ])
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
      // every message was written before the first reply came back
      const flights = server.flights()
      assert.strictEqual(flights[1].split("MAIL FROM").length - 1, 3, flights.join(" | "))
    }))

  it.effect("a batch whose last message was refused ends with RSET: the next MAIL finds no transaction open", () =>
    Effect.gen(function*() {
      const bdat = (i: number) => `BDAT ${body(i).length} LAST\r\n${body(i)}`
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: CHUNKING },
          { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<r1@x.test>", reply: "451 4.3.0 try later" },
          { expect: bdat(1), reply: "554 5.5.1 no valid recipients" },
          { expect: "RSET", reply: "250 reset" },
          ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: bdat(2), reply: "250 queued 2" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        const first = Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch([item(1)])))
        const second = Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch([item(2)])))
        return [...first, ...second]
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(outcomes.map(view), [
        { tag: "Refused", index: 0, error: "SmtpRecipientsRefused" },
        { tag: "Sent", index: 0, code: 250 }
      ])
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))

  it.effect("the connection closes with messages in the window: each whose data went out is unknown", () =>
    Effect.gen(function*() {
      const bdat = (i: number) => `BDAT ${body(i).length} LAST\r\n${body(i)}`
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: CHUNKING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: bdat(1), reply: "250 queued 1" },
          { expect: "RSET", reply: "250 reset" },
          ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: bdat(2), close: true }
        ]
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch([item(1), item(2), item(3)])))
      })).pipe(Effect.provide(server.layer))
      // 1 answered; 2 and 3 were written (BDAT LAST with them) and never answered: never "sent"
      assert.deepStrictEqual(outcomes.map((o) => [o._tag, o.index]), [["Sent", 0], ["Unknown", 1], ["Unknown", 2]])
    }))
})

describe("sendBatch without PIPELINING", () => {
  it.effect("one message at a time, the same outcomes", () =>
    Effect.gen(function*() {
      const server = yield* makeServer({
        steps: [
          { expect: "EHLO client.test", reply: "250 mx.test" },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, reply: "250 queued" },
          { expect: "MAIL FROM:<a@x.test>", reply: "451 4.3.0 try later" },
          { expect: "RSET", reply: "250 reset" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const outcomes = yield* runBatch(server, [item(1), item(2)])
      assert.deepStrictEqual(outcomes.map(view), [
        { tag: "Sent", index: 0, code: 250 },
        { tag: "Refused", index: 1, error: "SmtpSenderRefused", code: 451 }
      ])
    }))
})

describe("sendBatch stopped half-way", () => {
  it.effect("with DATA the next message's DATA may be open: the connection is closed, never fed other commands", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: PIPELINING },
          ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" },
          { expect: `${body(1)}.\r\n`, reply: "250 queued" },
          ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
          { expect: "DATA", reply: "354 go" }
        ]
      })
      const after = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect(connectOptions)
        // the consumer takes one outcome and stops
        const first = yield* Stream.runCollect(Stream.take(smtp.sendBatch([item(1), item(2), item(3)]), 1))
        assert.deepStrictEqual(Chunk.toReadonlyArray(first).map((o) => o._tag), ["Sent"])
        return yield* Effect.either(smtp.noop)
      })).pipe(Effect.provide(server.layer))
      assert.isTrue(after._tag === "Left", "the session is closed")
      assert.notInclude(server.written(), "NOOP")
      assert.notInclude(server.written(), "RSET")
      assert.isTrue(server.connection(0).clientClosed())
    }))

  it.effect("a batch waiting for the session stays interruptible (a timeout around it fires)", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [{ expect: "EHLO client.test", reply: PIPELINING }, { expect: "NOOP" }]
      })
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
        yield* smtp.ehlo()
        // a NOOP that the server never answers holds the session
        const holder = yield* Effect.fork(smtp.noop)
        yield* Effect.yieldNow()
        const fiber = yield* Effect.fork(
          Stream.runCollect(smtp.sendBatch([item(1)])).pipe(Effect.timeout("1 second"), Effect.exit)
        )
        yield* TestClock.adjust("2 seconds")
        const exit = yield* Fiber.join(fiber)
        // (the NOOP still holds the session and is never answered: close without QUIT)
        yield* Fiber.interrupt(holder)
        yield* smtp.close
        return exit
      })).pipe(Effect.provide(server.layer))
      assert.isTrue(Exit.isFailure(exit) && Cause.squash(exit.cause) instanceof Cause.TimeoutException)
    }))
})
