// Testing your own code with the scripted in-memory server: no network, exact bytes.
import { Effect } from "effect"
import { SmtpClient } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

export const test = Effect.gen(function*() {
  const server = yield* ScriptedTransport.make({
    steps: [
      { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
      { expect: "MAIL FROM:<app@example.com>", reply: "250 2.1.0 ok" },
      { expect: "RCPT TO:<user@example.com>", reply: "250 2.1.5 ok" },
      { expect: "DATA", reply: "354 go ahead" },
      { expect: "Subject: hi\r\n\r\nhello\r\n.\r\n", reply: "250 2.0.0 queued" },
      { expect: "QUIT", reply: "221 bye" }
    ]
  })
  yield* Effect.scoped(
    Effect.flatMap(
      SmtpClient.connect({ host: "mx.test", security: "none" }),
      (smtp) => smtp.sendmail("app@example.com", "user@example.com", "Subject: hi\r\n\r\nhello")
    )
  ).pipe(Effect.provide(server.layer))
  // everything the client wrote, byte for byte, and whether the script matched
  return { written: server.written(0), mismatches: server.connection(0).mismatches() }
})
