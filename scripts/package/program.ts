// A program against the installed tarball: the neutral root, the testing entry, the Node entry
// and package.json, each imported the way a user would. Run by scripts/package/check.sh.
import { Effect, Either } from "effect"
import { Message, SmtpClient, SmtpError } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import pkg from "effect-smtp/package.json" with { type: "json" }
import { ScriptedTransport } from "effect-smtp/testing"

const program = Effect.gen(function*() {
  const server = yield* ScriptedTransport.make({
    steps: [
      { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
      { expect: "MAIL FROM:<app@example.com>", reply: "250 2.1.0 ok" },
      { expect: "RCPT TO:<user@example.com>", reply: "250 2.1.5 ok" },
      { expect: "DATA", reply: "354 go ahead" },
      { expect: "Subject: hi\r\n\r\nhello\r\n.\r\n", reply: "250 2.0.0 queued as 4XyZ" },
      { expect: "QUIT", reply: "221 bye" }
    ]
  })
  const result = yield* Effect.scoped(
    Effect.flatMap(
      SmtpClient.connect({ host: "mx.test", security: "none", localHostname: "client.test" }),
      (smtp) => smtp.send({ from: "app@example.com", to: "user@example.com", message: "Subject: hi\r\n\r\nhello" })
    )
  ).pipe(Effect.provide(server.layer))
  const message = yield* Message.make({ from: "a@example.com", to: "b@example.com", subject: "Grüße", text: "hé" })
  const refused = yield* SmtpClient.connect({ host: "127.0.0.1", port: 1, timeout: "2 seconds" }).pipe(
    Effect.scoped,
    Effect.provide(NodeSmtpTransport.layer),
    Effect.either
  )
  return {
    version: pkg.version,
    queueId: result.queueId,
    mismatches: server.connection(0).mismatches().length,
    subject: Message.get(message, "Subject"),
    refused: Either.isLeft(refused) && SmtpError.isSmtpError(refused.left) ? refused.left._tag : "no error"
  }
})

Effect.runPromise(program).then((outcome) => {
  console.log(JSON.stringify(outcome))
  const ok = outcome.queueId === "4XyZ" && outcome.mismatches === 0 && outcome.refused === "SmtpConnectError"
  process.exit(ok ? 0 : 1)
})
