/**
 * An operation's Effect is a description: what it sends is decided when it runs, from the session
 * as it is then, not when the Effect was made. A `sendmail` made before STARTTLS and run after it
 * EHLOs again first (RFC 3207 §4.2: the client must discard what it knew); one made before an
 * EHLO that changed the extensions uses the new ones; one run twice is prepared twice.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { ScriptedTransport } from "effect-smtp/testing"

const ehloTls = "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS"
const ehloAfter = "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000000"
const message = "Subject: x\r\n\r\nhi\r\n"
const sendSteps = (mail: string) => [
  { expect: mail, reply: "250 ok" },
  { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: `${message}.\r\n`, reply: "250 queued" }
]

/** Plays `steps` (then QUIT) to a client that runs `session` on one connection; the script matched. */
const played = (
  steps: ReadonlyArray<ScriptedTransport.Step>,
  session: (smtp: SmtpConnection.Service) => Effect.Effect<unknown, unknown>
) =>
  Effect.gen(function*() {
    const server = yield* ScriptedTransport.make({ steps: [...steps, { expect: "QUIT", reply: "221 bye" }] })
    yield* Effect.scoped(
      Effect.flatMap(SmtpClient.connect({ host: "mx.test", security: "none" }), session)
    ).pipe(Effect.provide(server.layer))
    assert.deepStrictEqual(server.connection(0).mismatches(), [])
  })

describe("an operation's Effect decides what it sends when it runs", () => {
  it.scoped("a sendmail made before STARTTLS and run after it: EHLO again, then MAIL with what the new EHLO said", () =>
    played(
      [
        { expect: "EHLO client.test", reply: ehloTls },
        { expect: "STARTTLS", reply: "220 2.0.0 Ready to start TLS", tls: true },
        { expect: "EHLO client.test", reply: ehloAfter },
        ...sendSteps(`MAIL FROM:<a@x.test> SIZE=${message.length}`)
      ],
      (smtp) =>
        Effect.gen(function*() {
          yield* smtp.ehlo()
          const send = smtp.sendmail("a@x.test", "b@x.test", message)
          yield* smtp.starttls({ servername: "mx.test" })
          yield* send
        })
    ))

  it.scoped("a sendmail run twice: prepared each time (the second after an EHLO that added SIZE)", () =>
    played(
      [
        { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
        ...sendSteps("MAIL FROM:<a@x.test>"),
        { expect: "EHLO client.test", reply: ehloAfter },
        ...sendSteps(`MAIL FROM:<a@x.test> SIZE=${message.length}`)
      ],
      (smtp) =>
        Effect.gen(function*() {
          yield* smtp.ehlo()
          const send = smtp.sendmail("a@x.test", "b@x.test", message)
          yield* send
          yield* smtp.ehlo()
          yield* send
        })
    ))
})
