/**
 * sendBatch after its connection failed: every item left is NotSent, with the connection's error,
 * or with its own when it is invalid (a retry would not send it either).
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { TestTransport } from "effect-smtp/testing"

const item = (i: number, to: string | ReadonlyArray<string> = `r${i}@x.test`): SmtpConnection.BatchItem => ({
  from: "a@x.test",
  to,
  message: `Subject: ${i}\r\n\r\n${i}\r\n`
})

describe("sendBatch after the connection failed", () => {
  for (const chunking of [true, false]) {
    it.live(`the items left are NotSent, an invalid one with its own error (${chunking ? "BDAT" : "DATA"})`, () =>
      Effect.gen(function*() {
        const made = yield* TestTransport.make({
          ...(chunking ? {} : { disable: ["CHUNKING"] }),
          // the server hangs up at the first MAIL
          respond: (event) => event.stage === "mail" ? "disconnect" : undefined
        })
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ host: "mx.test", security: "none", timeout: "2 seconds" })
          // the items after the first come after the failure
          const items = Stream.concat(
            Stream.make(item(0)),
            Stream.fromIterableEffect(Effect.as(Effect.sleep("50 millis"), [item(1), item(2, []), item(3)]))
          )
          return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
        })).pipe(Effect.provide(made.layer))
        assert.deepStrictEqual(
          outcomes.map((o) => `${o.index} ${o._tag} ${o._tag === "Sent" ? "" : o.error._tag}`),
          [
            // with BDAT the message went whole, BDAT LAST included, with its envelope
            chunking ? "0 Unknown SmtpDeliveryUnknown" : "0 NotSent SmtpServerDisconnected",
            "1 NotSent SmtpServerDisconnected",
            "2 NotSent SmtpInvalidInput",
            "3 NotSent SmtpServerDisconnected"
          ]
        )
        assert.strictEqual((yield* made.received).length, 0)
      }))
  }
})
