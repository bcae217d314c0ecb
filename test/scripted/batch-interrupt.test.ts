/**
 * sendBatch with DATA and the Socket writer (writes made by the consuming fiber), interrupted while
 * the first flight is being written: the write completes, its 354 may come, so the connection is
 * closed; nothing (no RSET) is written into the open DATA.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream, TestClock } from "effect"
import { SmtpClient } from "../../src/index.js"
import { eventually, guard, makeServerWith } from "../session/support.js"
import { body, connectOptions, PIPELINING, withSocketWriter } from "./batchSupport.js"

describe("DATA with the Socket writer, interrupted while the first flight is being written", () => {
  it.effect("the 354 may come after the stop: the connection is closed, nothing written into the open DATA", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: false }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: PIPELINING },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<r1@x.test>", reply: "250 ok" },
            { expect: "DATA", reply: "354 go" }
          ]
        })
        const gate = yield* Effect.makeLatch(false)
        let writing = false
        // a socket whose write of the first envelope takes a while (a full buffer)
        const layer = withSocketWriter(server.layer, (text, chunk, write) =>
          text.includes("RCPT TO:<r1@x.test>") ?
            Effect.zipRight(
              Effect.sync(() => {
                writing = true
              }),
              Effect.zipRight(gate.await, write(chunk))
            ) :
            write(chunk))
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...connectOptions, timeout: "10 seconds" })
          const batch = yield* Effect.fork(Stream.runDrain(smtp.sendBatch([
            { from: "a@x.test", to: "r1@x.test", message: body(1) },
            { from: "a@x.test", to: "r2@x.test", message: body(2) }
          ])))
          yield* eventually(() => writing, "the first flight is being written")
          yield* Fiber.interruptFork(batch)
          yield* gate.open
          yield* Fiber.await(batch)
          yield* eventually(() => server.events().some((e) => e.text.includes("354")), "354 read")
          const noop = yield* Effect.fork(Effect.either(smtp.noop))
          yield* Effect.repeatN(Effect.yieldNow(), 100)
          const written = server.written()
          const closed = server.connection(0).clientClosed()
          yield* TestClock.adjust("11 seconds")
          return { written, closed, noop: yield* Fiber.join(noop) }
        })).pipe(Effect.provide(layer))
        // after a 354 the only safe ending is closing the connection: nothing more may be written
        assert.notInclude(result.written.split("DATA\r\n")[1] ?? "", "RSET")
      }),
      "interrupt during the write"
    ))
})
