import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { Mailer } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"
import { sendNewsletter } from "../examples/bulk.js"

const transaction = (to: string, name: string, rcptReply: string) => [
  { expect: "MAIL FROM:<news@example.com>", reply: "250 ok" },
  { expect: `RCPT TO:<${to}>`, reply: rcptReply },
  { expect: "DATA", reply: rcptReply.startsWith("2") ? "354 go" : "554 no valid recipients" },
  ...(rcptReply.startsWith("2") ?
    [{
      expect: `From: news@example.com\r\nTo: ${to}\r\nSubject: News\r\n\r\nHello ${name}!\r\n.\r\n`,
      reply: "250 ok"
    }] :
    [{ expect: "RSET", reply: "250 ok" }])
]

describe("README examples", () => {
  it.scoped("the bulk example sends and sorts the outcomes", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
          ...transaction("ann@example.com", "Ann", "250 ok"),
          ...transaction("bob@example.com", "Bob", "550 5.1.1 no such user"),
          ...transaction("cy@example.com", "Cy", "250 ok"),
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const report = yield* sendNewsletter([
        { address: "ann@example.com", name: "Ann" },
        { address: "bob@example.com", name: "Bob" },
        { address: "cy@example.com", name: "Cy" }
      ]).pipe(
        Effect.provide(
          Mailer.layer({ host: "mx.test", security: "none", maxConnections: 1, retry: Schedule.recurs(1) })
        ),
        Effect.provide(server.layer)
      )
      assert.deepStrictEqual(report, { sent: 2, rejected: 1, retryLater: [], doNotResend: [] })
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
    }))
})
