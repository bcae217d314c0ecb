import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schedule, Stream } from "effect"
import { Mailer } from "effect-smtp"
import { makeServer, withinRealTime } from "../session/support.js"

const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
const QUIT = { expect: "QUIT", reply: "221 bye" }
const accepted = (from = "a@x.test") => [
  { expect: `MAIL FROM:<${from}>`, reply: "250 ok" },
  { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: "hi\r\n.\r\n", reply: "250 queued" }
]
const options = { host: "mx.test", security: "none", retry: Schedule.recurs(1) } as const
const item = (from = "a@x.test"): Mailer.BulkItem => ({ from, to: "b@x.test", message: "hi" })

describe("Mailer.sendAll through sendBatch", () => {
  it.live("EHLO refused (421) on the batch's connection: the first item still gets an outcome", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(
        { strict: false, steps: [{ expect: "EHLO client.test", reply: "421 4.3.2 busy", close: true }] },
        { strict: false, steps: [EHLO, ...accepted("i0@x.test"), QUIT] }
      )
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
          return yield* Stream.runCollect(Stream.either(mailer.sendAll([item("i0@x.test")], { concurrency: 1 })))
        })).pipe(Effect.provide(server.layer)),
        3000
      )
      assert.isTrue(result._tag === "Some", "hung")
      const got = result._tag === "Some" ?
        Chunk.toReadonlyArray(result.value).map((r) =>
          Either.isRight(r) ? `${r.right.index} ${r.right._tag}` : `error ${(r.left as any)._tag}`
        ) :
        []
      assert.deepStrictEqual(got.length, 1, `outcomes: ${JSON.stringify(got)}`)
    }))

  it.live("a connection refused: one Failed outcome per item, not a failure of the whole stream", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(
        { strict: false, refuse: true, steps: [] },
        { strict: false, refuse: true, steps: [] },
        { strict: false, refuse: true, steps: [] }
      )
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ ...options, maxConnections: 1 })
          return yield* Stream.runCollect(Stream.either(mailer.sendAll([item("i0@x.test")], { concurrency: 1 })))
        })).pipe(Effect.provide(server.layer)),
        3000
      )
      assert.isTrue(result._tag === "Some", "hung")
      const got = result._tag === "Some" ?
        Chunk.toReadonlyArray(result.value).map((r) =>
          Either.isRight(r) ? `${r.right.index} ${r.right._tag}` : `error ${(r.left as any)._tag}`
        ) :
        []
      assert.deepStrictEqual(got, ["0 Failed"])
    }))

  it.live("same with rateLimit (the single-send path), for comparison", () =>
    Effect.gen(function*() {
      const server = yield* makeServer(
        { strict: false, refuse: true, steps: [] },
        { strict: false, refuse: true, steps: [] },
        { strict: false, refuse: true, steps: [] }
      )
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({
            ...options,
            maxConnections: 1,
            rateLimit: { limit: 100, interval: "1 second" }
          })
          return yield* Stream.runCollect(Stream.either(mailer.sendAll([item("i0@x.test")], { concurrency: 1 })))
        })).pipe(Effect.provide(server.layer)),
        5000
      )
      assert.isTrue(result._tag === "Some", "hung")
      const got = result._tag === "Some" ?
        Chunk.toReadonlyArray(result.value).map((r) =>
          Either.isRight(r) ? `${r.right.index} ${r.right._tag}` : `error ${(r.left as any)._tag}`
        ) :
        []
      assert.deepStrictEqual(got, ["0 Failed"])
    }))
})

import { TestTransport } from "../../src/testing/index.js"

describe("Mailer.sendAll when the server refuses EHLO and HELO", () => {
  it.live("every item gets an outcome, the first of each batch too, and the stream ends normally", () =>
    Effect.gen(function*() {
      const made = yield* TestTransport.make({
        respond: (event) => event.stage === "ehlo" ? "550 5.7.1 go away" : undefined
      })
      const result = yield* withinRealTime(
        Effect.scoped(Effect.gen(function*() {
          const mailer = yield* Mailer.make({ host: "mx.test", security: "none", retry: false, maxConnections: 1 })
          return yield* Stream.runCollect(
            Stream.either(mailer.sendAll([item("i0@x.test"), item("i1@x.test"), item("i2@x.test")]))
          )
        })).pipe(Effect.provide(made.layer)),
        3000
      )
      assert.isTrue(result._tag === "Some", "hung")
      const got = result._tag === "Some" ?
        Chunk.toReadonlyArray(result.value).map((r) =>
          Either.isRight(r) ? `${r.right.index} ${r.right._tag}` : `error ${(r.left as any)._tag}`
        ).sort() :
        []
      assert.deepStrictEqual(got, ["0 Failed", "1 Failed", "2 Failed"])
    }))
})
