/**
 * sendBatch: cross-message pipelining (RFC 2920 §3.1), one outcome per message in order, flights
 * byte-exact.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Fiber, Stream, TestClock } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { makeServerWith } from "../session/support.js"

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

/** The outcomes of a batch, through `sendBatch`'s Stream or `sendBatchAll`'s array. */
const runBatchWith = (all: boolean) =>
(
  server: Effect.Effect.Success<ReturnType<typeof makeServerWith>>,
  items: ReadonlyArray<SmtpConnection.BatchItem>
) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect(connectOptions)
    return all
      ? yield* smtp.sendBatchAll(items)
      : Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
  })).pipe(Effect.provide(server.layer))

// every test runs over both write paths: the Socket writer's (an Effect: the batch's writes are made
// by the consuming fiber) and a write that hands the bytes over at once (NodeSmtpTransport's: the
// batch writes from the reply callbacks); the tests through `runBatch`, over both sendBatch and
// sendBatchAll (the same flights, the same outcomes)
for (const [syncWrite, all] of [[false, false], [true, false], [false, true], [true, true]] as const) {
  const suffix = (syncWrite ? " (synchronous write)" : "") + (all ? " [sendBatchAll]" : "")
  const runBatch = runBatchWith(all)
  /** The tests of the Stream itself (pulls, interruption, a consumer that stops) run once. */
  const streamOnly = all ? { effect: () => {}, live: () => {} } : it
  const streamOnlyDescribe = all ? () => {} : describe
  const makeServer = (...scripts: Parameters<typeof makeServerWith> extends [unknown, ...infer S] ? S : never) =>
    makeServerWith({ syncWrite }, ...scripts)

  describe(`sendBatch with DATA: the next envelope rides with the previous end of data${suffix}`, () => {
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

    streamOnly.effect("a Stream of items is pulled on demand", () =>
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

  describe(`sendBatch with BDAT: messages written without waiting${suffix}`, () => {
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

    streamOnly.effect(
      "a batch whose last message was refused ends with RSET: the next MAIL finds no transaction open",
      () =>
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
        })
    )

    streamOnly.effect(
      "the connection closes with messages in the window: each whose data went out is unknown",
      () =>
        Effect.gen(function*() {
          const bdat = (i: number) => `BDAT ${body(i).length} LAST\r\n${body(i)}`
          const server = yield* makeServer({
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
        })
    )
  })

  describe(`sendBatch with BDAT, many messages${suffix}`, () => {
    const bdat = (i: number) => `BDAT ${body(i).length} LAST\r\n${body(i)}`
    /** The steps of messages `from` to `to` (1-based), each after RSET but the first; `refuse`: MAIL refused. */
    const steps = (from: number, to: number, refuse: (i: number) => boolean = () => false) =>
      Array.from({ length: to - from + 1 }, (_, k) => from + k).flatMap((i) =>
        [
          ...(i === 1 ? [] : [{ expect: "RSET", reply: "250 reset" }]),
          refuse(i) ?
            [
              { expect: "MAIL FROM:<a@x.test>", reply: "451 4.3.2 try later" },
              { expect: `RCPT TO:<r${i}@x.test>`, reply: "503 5.5.1 need MAIL" },
              { expect: bdat(i), reply: "503 5.5.1 no transaction" }
            ] :
            [
              ...env(i).map((expect) => ({ expect, reply: "250 ok" })),
              { expect: bdat(i), reply: `250 queued ${i}` }
            ]
        ].flat()
      )
    const items = (n: number) => Array.from({ length: n }, (_, k) => item(k + 1))

    it.effect("40 messages: every outcome in order, the wire byte-exact, 16 messages per write", () =>
      Effect.gen(function*() {
        const refused = (i: number) => i === 17 || i === 40
        const server = yield* makeServer({
          steps: [
            { expect: "EHLO client.test", reply: CHUNKING },
            ...steps(1, 40, refused),
            // the last message was refused: the batch ends with RSET
            { expect: "RSET", reply: "250 reset" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        const outcomes = yield* runBatch(server, items(40))
        assert.deepStrictEqual(
          outcomes.map(view),
          items(40).map((_, k): ReturnType<typeof view> =>
            refused(k + 1) ?
              { tag: "Refused", index: k, error: "SmtpSenderRefused" as const, code: 451 } :
              { tag: "Sent", index: k, code: 250 }
          )
        )
        assert.strictEqual(outcomes[3]._tag === "Sent" && outcomes[3].reply.text, "queued 4")
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        const writes = server.events().filter((e) => e.dir === "C").map((e) => e.text.split("MAIL FROM").length - 1)
        assert.deepStrictEqual(writes.slice(1, 3), [16, 16])
      }))

    streamOnly.effect(
      "the connection closes in the second write: answered ones decided, written ones unknown, the rest not sent",
      () =>
        Effect.gen(function*() {
          const server = yield* makeServer({
            steps: [
              { expect: "EHLO client.test", reply: CHUNKING },
              ...steps(1, 19),
              { expect: "RSET", reply: "250 reset" },
              { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
              { expect: "RCPT TO:<r20@x.test>", reply: "250 ok", close: true }
            ]
          })
          const outcomes = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items(40))))
          })).pipe(Effect.provide(server.layer))
          const tags = outcomes.map((o) => o._tag)
          assert.deepStrictEqual(outcomes.map((o) => o.index), items(40).map((_, k) => k))
          // 1-19 answered; the others handed to the transport (at least the window: two writes of
          // 16, a third when the first write's replies came before the close) have no final reply:
          // unknown (a write the closed connection refused later is counted: it may have gone
          // out); the rest were never written: not sent
          const written = server.events().filter((e) => e.dir === "C").map((e) => e.text).join("")
            .split("MAIL FROM").length - 1
          assert.isAtLeast(written, 32)
          assert.deepStrictEqual(tags, [
            ...Array(19).fill("Sent"),
            ...Array(written - 19).fill("Unknown"),
            ...Array(40 - written).fill("NotSent")
          ])
        })
    )

    streamOnly.effect("a consumer that does not pull stops the batch from writing ahead", () =>
      Effect.gen(function*() {
        const server = yield* makeServer({
          steps: [{ expect: "EHLO client.test", reply: CHUNKING }, ...steps(1, 300), {
            expect: "QUIT",
            reply: "221 bye"
          }]
        })
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          const pull = yield* Stream.toPull(smtp.sendBatch(items(300)))
          const first = yield* pull
          for (let i = 0; i < 500; i++) yield* Effect.yieldNow()
          const writtenWhileIdle = server.written().split("MAIL FROM").length - 1
          let taken = first.length
          while (true) {
            const chunk = yield* Effect.option(pull)
            if (chunk._tag === "None") break
            taken += chunk.value.length
          }
          return { first: first.length, writtenWhileIdle, taken }
        })).pipe(Effect.provide(server.layer))
        // what was taken, plus 64 outcomes not taken (and one write of 16 decided past them),
        // plus the window (64) in flight
        assert.isAtMost(result.writtenWhileIdle, result.first + 64 + 16 + 64)
        assert.isAbove(result.writtenWhileIdle, result.first)
        assert.strictEqual(result.taken, 300)
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }))

    streamOnly.effect(
      "an iterable that throws: the outcomes of what was written, then the batch dies with that defect",
      () =>
        Effect.gen(function*() {
          const server = yield* makeServer({
            steps: [{ expect: "EHLO client.test", reply: CHUNKING }, ...steps(1, 2), {
              expect: "QUIT",
              reply: "221 bye"
            }]
          })
          const boom = new Error("the generator failed")
          const seen: Array<string> = []
          const exit = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            function* generate() {
              yield item(1)
              yield item(2)
              throw boom
            }
            return yield* Effect.exit(
              Stream.runForEach(smtp.sendBatch(generate()), (o) => Effect.sync(() => seen.push(o._tag)))
            )
          })).pipe(Effect.provide(server.layer))
          assert.deepStrictEqual(seen, ["Sent", "Sent"])
          assert.isTrue(Exit.isFailure(exit) && Cause.squash(exit.cause) === boom)
        })
    )
  })

  describe(`sendBatch without PIPELINING${suffix}`, () => {
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

  streamOnlyDescribe(`sendBatch stopped half-way${suffix}`, () => {
    streamOnly.effect(
      "with DATA the next message's DATA may be open: the connection is closed, never fed other commands",
      () =>
        Effect.gen(function*() {
          const server = yield* makeServer({
            steps: [
              { expect: "EHLO client.test", reply: PIPELINING },
              ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
              { expect: "DATA", reply: "354 go" },
              { expect: `${body(1)}.\r\n`, reply: "250 queued" },
              ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
              // the reply to the second DATA never comes: it may be 354, and then the server reads
              // whatever comes next as that message's data
              { expect: "DATA" }
            ]
          })
          const after = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
            // the consumer gives up while the second envelope and its DATA are in flight
            const fiber = yield* Effect.fork(
              Stream.runCollect(smtp.sendBatch([item(1), item(2), item(3)])).pipe(
                Effect.timeout("1 second"),
                Effect.exit
              )
            )
            yield* TestClock.adjust("2 seconds")
            const exit = yield* Fiber.join(fiber)
            assert.isTrue(Exit.isFailure(exit) && Cause.squash(exit.cause) instanceof Cause.TimeoutException)
            return yield* Effect.either(smtp.noop)
          })).pipe(Effect.provide(server.layer))
          assert.isTrue(after._tag === "Left", "the session is closed")
          assert.notInclude(server.written(), "NOOP")
          assert.notInclude(server.written(), "RSET")
          assert.isTrue(server.connection(0).clientClosed())
        })
    )

    streamOnly.effect(
      "a message's data goes out as soon as its 354 comes, before the consumer takes the previous outcome",
      () =>
        Effect.gen(function*() {
          const server = yield* makeServer({
            steps: [
              { expect: "EHLO client.test", reply: PIPELINING },
              ...env(1).map((expect) => ({ expect, reply: "250 ok" })),
              { expect: "DATA", reply: "354 go" },
              { expect: `${body(1)}.\r\n`, reply: "250 queued" },
              ...env(2).map((expect) => ({ expect, reply: "250 ok" })),
              { expect: "DATA", reply: "354 go" },
              // the server takes the second message's data and closes
              { expect: `${body(2)}.\r\n`, close: true }
            ]
          })
          const after = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
            // the consumer takes one outcome and stops: nothing is open, only a reply is owed
            const first = yield* Stream.runCollect(Stream.take(smtp.sendBatch([item(1), item(2)]), 1))
            assert.deepStrictEqual(Chunk.toReadonlyArray(first).map((o) => o._tag), ["Sent"])
            return server.written()
          })).pipe(Effect.provide(server.layer))
          assert.include(after, `${body(2)}.\r\n`)
        })
    )

    streamOnly.effect(
      "a batch waiting for the session stays interruptible (a timeout around it fires)",
      () =>
        Effect.gen(function*() {
          const server = yield* makeServer({
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
        })
    )
  })
}
