import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Either, Exit, Schedule, Stream, Supervisor } from "effect"
import { Mailer, Message } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import { ScriptedTransport, TestTransport } from "effect-smtp/testing"
import { makeServer } from "../session/support.js"
import * as EmbeddedServer from "../support/smtpServer.js"
import { accepted, EHLO, QUIT } from "./steps.js"

/** MAIL refused with `code`; the pipelined RCPT and DATA answered 503, then RSET. */
const mailRefused = (code: number, from = "a@x.test") => [
  { expect: `MAIL FROM:<${from}>`, reply: `${code} no` },
  { expect: "RCPT TO:<b@x.test>", reply: "503 5.5.1 no" },
  { expect: "DATA", reply: "503 5.5.1 no" },
  { expect: "RSET", reply: "250 ok" }
]
const options = { host: "mx.test", security: "none", retry: Schedule.recurs(1) } as const
const item = (from = "a@x.test"): Mailer.BulkItem => ({ from, to: "b@x.test", message: "hi" })

const summary = (outcome: Mailer.BulkOutcome<unknown>) =>
  outcome._tag === "Sent" ?
    `${outcome.index} Sent ${Object.entries(outcome.refused).map(([a, r]) => `${a}:${r.code}`).join(",")}` :
    `${outcome.index} Failed ${(outcome.error as { _tag: string })._tag} ${outcome.disposition}`

describe("Mailer.sendAll", () => {
  it.scoped("one outcome per item: sent, some recipients refused, refused, retried, sendMessage, given up", () =>
    Effect.gen(function*() {
      const message = Either.getOrThrow(Message.parse("From: m@x.test\r\nTo: b@x.test\r\nSubject: s\r\n\r\nhi\r\n"))
      const server = yield* ScriptedTransport.make({
        steps: [
          EHLO,
          // 0: sent, with a queue id
          { expect: "MAIL FROM:<i0@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: "hi\r\n.\r\n", reply: "250 2.0.0 Ok: queued as 4XyZ0" },
          // 1: sent, c@x.test refused
          { expect: "MAIL FROM:<i1@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<c@x.test>", reply: "550 5.1.1 no such user" },
          { expect: "DATA", reply: "354 go" },
          { expect: "hi\r\n.\r\n", reply: "250 queued" },
          // 2: refused for good
          ...mailRefused(550, "i2@x.test"),
          // 3: 451, retried, sent
          ...mailRefused(451, "i3@x.test"),
          ...accepted("i3@x.test"),
          // 4: a Message
          { expect: "MAIL FROM:<m@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: /^From: m@x\.test\r\nTo: b@x\.test\r\nSubject: s\r\n\r\nhi\r\n\.\r\n$/, reply: "250 queued" },
          // 5: 451 twice: given up after one retry
          ...mailRefused(451, "i5@x.test"),
          ...mailRefused(451, "i5@x.test"),
          QUIT
        ]
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        return yield* Stream.runCollect(mailer.sendAll([
          item("i0@x.test"),
          { from: "i1@x.test", to: ["b@x.test", "c@x.test"], message: "hi" },
          item("i2@x.test"),
          item("i3@x.test"),
          { message },
          item("i5@x.test")
        ]))
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map(summary), [
        "0 Sent ",
        "1 Sent c@x.test:550",
        "2 Failed SmtpSenderRefused permanent",
        "3 Sent ",
        "4 Sent ",
        "5 Failed SmtpSenderRefused transient"
      ])
      // the final reply and the queue id, as `send` gives them
      const [first, second] = Chunk.toReadonlyArray(outcomes)
      assert.isTrue(first._tag === "Sent" && first.queueId === "4XyZ0" && first.reply.code === 250)
      assert.isTrue(second._tag === "Sent" && second.queueId === undefined && second.reply.text === "queued")
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
      assert.strictEqual(server.connection(0).remaining(), 0)
    }))

  it.scoped("a connection lost after the end of the data: unknown, not retried; the next items go on", () =>
    Effect.gen(function*() {
      const lost = accepted("i0@x.test")
      const server = yield* ScriptedTransport.make(
        { steps: [EHLO, ...lost.slice(0, 3), { expect: lost[3].expect, close: true }] },
        { steps: [EHLO, ...accepted("i1@x.test"), ...accepted("i2@x.test"), QUIT] }
      )
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        return yield* Stream.runCollect(mailer.sendAll([item("i0@x.test"), item("i1@x.test"), item("i2@x.test")]))
      })).pipe(Effect.provide(server.layer))
      const [first] = Chunk.toReadonlyArray(outcomes)
      assert.strictEqual(first._tag, "Failed")
      assert.strictEqual(first._tag === "Failed" && first.disposition, "unknown")
      assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).slice(1).map(summary), ["1 Sent ", "2 Sent "])
      assert.strictEqual(server.connections().length, 2)
      assert.deepStrictEqual(server.connection(1).mismatches(), [])
    }))

  it.scoped("a Stream input: outcomes for the items read, then the input's failure", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [EHLO, ...accepted("i0@x.test"), ...accepted("i1@x.test"), QUIT]
      })
      const results = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        const items = Stream.make(item("i0@x.test"), item("i1@x.test")).pipe(Stream.concat(Stream.fail("boom")))
        return yield* Stream.runCollect(Stream.either(mailer.sendAll(items)))
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(results).map((r) => Either.isRight(r) ? summary(r.right) : `error ${r.left}`),
        ["0 Sent ", "1 Sent ", "error boom"]
      )
    }))

  // an iterable's throw ends the input: it is not a defect of a batch (which would report the items
  // it took as unknown)
  for (const concurrency of [1, 3]) {
    it.scoped(`an iterable that throws (concurrency ${concurrency}): the items before are sent, then the result dies`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedTransport.make({
          steps: [EHLO, ...accepted("i0@x.test"), ...accepted("i1@x.test"), QUIT]
        })
        let read = 0
        function* throwing(): Generator<Mailer.BulkItem> {
          yield item("i0@x.test")
          yield item("i1@x.test")
          read = 2
          throw new Error("the input broke")
        }
        const exit = yield* Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
          const outcomes: Array<string> = []
          const exit = yield* Effect.exit(
            Stream.runForEach(
              mailer.sendAll(throwing(), { concurrency }),
              (o) => Effect.sync(() => outcomes.push(summary(o)))
            )
          )
          return { exit, outcomes }
        })).pipe(Effect.provide(server.layer))
        assert.strictEqual(read, 2)
        assert.deepStrictEqual(exit.outcomes, ["0 Sent ", "1 Sent "])
        assert.isTrue(Exit.isFailure(exit.exit) && Cause.isDie(exit.exit.cause))
        if (Exit.isFailure(exit.exit)) {
          assert.include(String(Cause.squash(exit.exit.cause)), "the input broke")
        }
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }))
  }

  // what a JavaScript caller may give: that item's outcome, never a defect that loses the others'
  for (const concurrency of [1, 3]) {
    it.scoped(`items that are not BulkItems (concurrency ${concurrency}): Failed with SmtpInvalidInput, the others sent`, () =>
      Effect.gen(function*() {
        const server = yield* ScriptedTransport.make({
          steps: [EHLO, ...accepted("i0@x.test"), ...accepted("i4@x.test"), QUIT]
        })
        const bad = [null, 42, { from: 7, to: "b@x.test", message: "hi" }] as unknown as Array<Mailer.BulkItem>
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
          return yield* Stream.runCollect(
            mailer.sendAll([item("i0@x.test"), ...bad, item("i4@x.test")], { concurrency })
          )
        })).pipe(Effect.provide(server.layer))
        const sorted = Chunk.toReadonlyArray(outcomes).slice().sort((a, b) => a.index - b.index)
        assert.deepStrictEqual(sorted.map(summary), [
          "0 Sent ",
          "1 Failed SmtpInvalidInput permanent",
          "2 Failed SmtpInvalidInput permanent",
          "3 Failed SmtpInvalidInput permanent",
          "4 Sent "
        ])
        assert.deepStrictEqual(
          sorted.map((o) => o._tag === "Failed" ? (o.error as { reason: string }).reason : ""),
          [
            "",
            "A sendAll item must be an object: { from, to, message } or { message } with a Message",
            "A sendAll item must be an object: { from, to, message } or { message } with a Message",
            "The sender address is not a string (nothing was sent)",
            ""
          ]
        )
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
      }))
  }

  it.scoped("an iterable whose iterator cannot be made: nothing is sent, the result dies", () =>
    Effect.gen(function*() {
      const server = yield* TestTransport.make()
      const broken: Iterable<Mailer.BulkItem> = {
        [Symbol.iterator]() {
          throw new Error("no iterator")
        }
      }
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        return yield* Effect.exit(Stream.runCollect(mailer.sendAll(broken)))
      })).pipe(Effect.provide(server.layer))
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.deepStrictEqual(yield* server.received, [])
    }))

  it.scoped("reads the input only as messages go out, and closes it when the consumer stops", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [EHLO, ...Array.from({ length: 5 }, () => accepted()).flat()],
        // what reaches the server after the fifth message (interrupted ones read ahead) is not prescribed
        strict: false
      })
      let read = 0
      let closed = false
      function* endless(): Generator<Mailer.BulkItem> {
        try {
          for (;;) {
            read++
            yield item()
          }
        } finally {
          // (a cursor or a file the input holds is let go)
          closed = true
        }
      }
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        return yield* Stream.runCollect(mailer.sendAll(endless(), { concurrency: 2 }).pipe(Stream.take(5)))
      })).pipe(Effect.provide(server.layer))
      assert.strictEqual(outcomes.length, 5)
      // read ahead of the 5 outcomes taken: at most 16 items waiting in the input queue, 1 being
      // offered, and 16 a batch has taken whose outcomes are not yet reported (in flight, or
      // decided and waiting for the consumer) (Stream.fromIterable would read 4096)
      assert.isAtMost(read, 5 + 16 + 1 + 16)
      assert.isTrue(closed)
    }))

  it.effect("interrupted: the messages in flight stop, QUIT when the Mailer closes, no fiber left", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({ steps: [EHLO, ...accepted(), QUIT] })
      const supervisor = yield* Supervisor.track
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        // one message now, the next in an hour: the second waits for the rate limit when interrupted
        const mailer = yield* Mailer.make({ ...options, rateLimit: { limit: 1, interval: "1 hour" } })
        return yield* Stream.runCollect(mailer.sendAll([item(), item(), item()]).pipe(Stream.take(1)))
      })).pipe(Effect.provide(server.layer), Effect.supervised(supervisor))
      assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map(summary), ["0 Sent "])
      assert.strictEqual(server.connections().length, 1)
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
      assert.isTrue(server.written(0).endsWith("hi\r\n.\r\nQUIT\r\n"))
      assert.isTrue(server.connection(0).clientClosed())
      const running = yield* supervisor.value
      assert.deepStrictEqual(running.map((f) => f.id()), [])
    }))

  for (const rateLimited of [false, true]) {
    it.live(`an item whose property throws when read is its own Failed outcome, the others sent on one connection (${rateLimited ? "one at a time: rateLimit" : "batched"})`, () =>
      Effect.gen(function*() {
        let connections = 0
        const server = yield* EmbeddedServer.make({
          onConnect(_session, callback) {
            connections++
            callback()
          }
        })
        let reads = 0
        // (from JavaScript: an object whose getter throws)
        const throwing = {
          from: "a@example.test",
          get to(): string {
            reads++
            throw new Error("a getter that throws")
          },
          message: "Subject: never\r\n\r\nnever\r\n"
        } as Mailer.BulkItem
        const ok = (i: number): Mailer.BulkItem => ({
          from: "a@example.test",
          to: `r${i}@example.test`,
          message: `Subject: ${i}\r\n\r\nbody ${i}\r\n`
        })
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({
            host: server.host,
            port: server.port,
            maxConnections: 1,
            ...(rateLimited ? { rateLimit: { limit: 1000, interval: "1 second" } } : {})
          })
          return yield* Stream.runCollect(mailer.sendAll([ok(0), ok(1), throwing, ok(3)]))
        })).pipe(Effect.provide(NodeSmtpTransport.layer))
        assert.deepStrictEqual(
          Chunk.toReadonlyArray(outcomes).map((o) =>
            o._tag === "Sent" ? [o.index, "Sent"] : [o.index, o.error._tag, o.disposition, o.error.message]
          ).sort((a, b) => (a[0] as number) - (b[0] as number)),
          [
            [0, "Sent"],
            [1, "Sent"],
            [
              2,
              "SmtpInvalidInput",
              "permanent",
              "A sendAll item could not be read: reading one of its properties threw"
            ],
            [3, "Sent"]
          ]
        )
        assert.strictEqual(reads, 1)
        const received = yield* server.waitFor(3)
        assert.deepStrictEqual(received.map((r) => r.to[0]).sort(), [
          "r0@example.test",
          "r1@example.test",
          "r3@example.test"
        ])
        assert.strictEqual(connections, 1)
      }).pipe(Effect.scoped))
  }

  it.live("over real sockets: every item once, at most maxConnections connections", () =>
    Effect.gen(function*() {
      let open = 0
      let maxOpen = 0
      const server = yield* EmbeddedServer.make({
        onConnect(_session, callback) {
          maxOpen = Math.max(maxOpen, ++open)
          callback()
        },
        onClose() {
          open--
        }
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ host: server.host, port: server.port, maxConnections: 3 })
        const items = Array.from({ length: 40 }, (_, i): Mailer.BulkItem => ({
          from: "a@example.test",
          to: `r${i}@example.test`,
          message: `Subject: ${i}\r\n\r\nbody ${i}\r\n`
        }))
        return yield* Stream.runCollect(mailer.sendAll(items, { concurrency: 5 }))
      })).pipe(Effect.provide(NodeSmtpTransport.layer))
      const all = Chunk.toReadonlyArray(outcomes)
      assert.deepStrictEqual(all.map((o) => o._tag), all.map(() => "Sent"))
      assert.deepStrictEqual(all.map((o) => o.index).sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i))
      const received = yield* server.waitFor(40)
      assert.deepStrictEqual(
        received.map((r) => r.to[0]).sort(),
        Array.from({ length: 40 }, (_, i) => `r${i}@example.test`).sort()
      )
      assert.isAtMost(maxOpen, 3)
    }).pipe(Effect.scoped))
})

describe("Mailer.sendAll shares a connection between waiting messages (sendBatch)", () => {
  it.scoped("messages that wait for the connection go pipelined: the next envelope rides with the end of data", () =>
    Effect.gen(function*() {
      const queued = (from: string, id: string) => [
        ...accepted(from).slice(0, 3),
        { expect: "hi\r\n.\r\n", reply: `250 2.0.0 Ok: queued as ${id}` }
      ]
      const server = yield* makeServer({
        steps: [EHLO, ...queued("i0@x.test", "Q0"), ...queued("i1@x.test", "Q1"), ...queued("i2@x.test", "Q2"), QUIT]
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        return yield* Stream.runCollect(mailer.sendAll([item("i0@x.test"), item("i1@x.test"), item("i2@x.test")], {
          concurrency: 1
        }))
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map((o) => `${o.index} ${o._tag}`), [
        "0 Sent",
        "1 Sent",
        "2 Sent"
      ])
      assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map((o) => o._tag === "Sent" && o.queueId), [
        "Q0",
        "Q1",
        "Q2"
      ])
      // the flights: body 0 with the envelope of 1, body 1 with the envelope of 2
      assert.include(server.flights(), "hi\r\n.\r\nMAIL FROM:<i1@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
      assert.include(server.flights(), "hi\r\n.\r\nMAIL FROM:<i2@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n")
    }))
})

describe("Mailer.sendAll and large messages", () => {
  it.scoped("a message over the batch limit (1 MiB with BDAT) goes through sendmail, not refused", () =>
    Effect.gen(function*() {
      const big = "x".repeat(78) + "\r\n"
      const message = big.repeat(Math.ceil((1100 * 1024) / big.length))
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING" },
          { expect: "MAIL FROM:<big@x.test>", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: /^BDAT \d+/, reply: "250 chunk" },
          { expect: /^BDAT \d+/, reply: "250 chunk" },
          { expect: /^BDAT \d+/, reply: "250 chunk" },
          { expect: /^BDAT \d+/, reply: "250 chunk" },
          { expect: /^BDAT \d+ LAST/, reply: "250 queued" },
          QUIT
        ]
      })
      const outcomes = yield* Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
        return yield* Stream.runCollect(mailer.sendAll([{ from: "big@x.test", to: "b@x.test", message }]))
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(Chunk.toReadonlyArray(outcomes).map((o) => o._tag), ["Sent"])
    }))
})
