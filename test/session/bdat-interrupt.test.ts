/**
 * A one-flight BDAT sendmail interrupted right after the reply callback (the interruption lands in
 * the same tick as the final reply): the RSET that a refused transaction needs is left to the next
 * operation, which finds no transaction open.
 */
import { Socket } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, FiberId, Layer } from "effect"
import { SmtpClient, SmtpTransport } from "../../src/index.js"
import { ehloReply, guard, makeServerWith } from "../session/support.js"

const connectOptions = { host: "mx.test", security: "none" } as const
const MESSAGE = "Subject: hi\r\n\r\nhello"
const BDAT_LAST = `BDAT ${MESSAGE.length + 2} LAST\r\n${MESSAGE}\r\n`

describe("oneFlightBdat, an interruption that arrives right after the reply callback", () => {
  it.effect("RCPT refused: the RSET is left to the next operation, which finds no transaction open", () =>
    guard(
      Effect.gen(function*() {
        const server = yield* makeServerWith({ syncWrite: true }, {
          strict: false,
          steps: [
            { expect: "EHLO client.test", reply: ehloReply("pipelined", ["CHUNKING"]) },
            { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<b@x.test>", reply: "550 5.1.1 no" },
            { expect: BDAT_LAST, reply: "554 5.5.1 no valid recipients" },
            { expect: "RSET", reply: "250 2.0.0 reset" },
            { expect: "MAIL FROM:<a2@x.test>", reply: "250 ok" },
            { expect: "RCPT TO:<b2@x.test>", reply: "250 ok" },
            { expect: BDAT_LAST, reply: "250 queued" },
            { expect: "QUIT", reply: "221 bye" }
          ]
        })
        let target: Fiber.RuntimeFiber<unknown, unknown> | undefined
        // a timeout (or any interrupter) that fires in the same tick as the final reply
        const layer = Layer.effect(
          SmtpTransport.SmtpTransport,
          Effect.map(SmtpTransport.SmtpTransport, (t) => ({
            ...t,
            connect: (o: Parameters<typeof t.connect>[0]) =>
              Effect.map(t.connect(o), (c) => ({
                ...c,
                socket: Socket.Socket.of({
                  ...c.socket,
                  run: (handler: any, opts: any) =>
                    c.socket.run((chunk: Uint8Array) => {
                      const r = handler(chunk)
                      if (target !== undefined && new TextDecoder().decode(chunk).includes("554")) {
                        target.unsafeInterruptAsFork(FiberId.none)
                        target = undefined
                      }
                      return r
                    }, opts)
                } as any)
              }))
          }))
        ).pipe(Layer.provide(server.layer))
        const second = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect(connectOptions)
          yield* smtp.ehlo()
          const first = yield* Effect.fork(smtp.sendmail("a@x.test", "b@x.test", MESSAGE))
          target = first
          yield* Fiber.await(first)
          yield* Effect.repeatN(Effect.yieldNow(), 50)
          return yield* Effect.either(smtp.sendmail("a2@x.test", "b2@x.test", MESSAGE))
        })).pipe(Effect.provide(layer))
        assert.deepStrictEqual(server.connection(0).mismatches(), [])
        assert.strictEqual(second._tag, "Right")
      }),
      "race"
    ))
})
