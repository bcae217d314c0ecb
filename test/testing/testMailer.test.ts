import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Option, Redacted, Stream } from "effect"
import { Mailer, Message, SmtpError } from "effect-smtp"
import { TestMailer } from "effect-smtp/testing"

/** Code under test: it only knows Mailer. */
const signUp = (name: string, address: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const message = yield* Message.make({
      from: { name: "Café Ünïcode", address: "hello@example.com" },
      to: { name, address },
      subject: `Willkommen, ${name}! Grüße aus Köln`,
      text: `Hallo ${name},\nwillkommen.`,
      html: `<p>Hallo <b>${name}</b></p>`,
      attachments: [
        {
          filename: "Preisliste-été.pdf",
          contentType: "application/pdf",
          content: new Uint8Array([37, 80, 68, 70, 0, 255])
        },
        { filename: "notes.txt", content: "plain notes\r\n" }
      ]
    })
    return yield* mailer.send(message)
  })

/** The defect an Exit died with. */
const defect = <A, E>(exit: Exit.Exit<A, E>): unknown => {
  assert.isTrue(Exit.isFailure(exit))
  return Option.getOrThrow(Cause.dieOption((exit as Exit.Failure<A, E>).cause))
}

describe("TestMailer", () => {
  it.effect("captures what the code sent, decoded: envelope, RFC 2047 headers, bodies, attachments", () =>
    Effect.gen(function*() {
      const result = yield* signUp("Zoë", "zoe@example.com")
      const mail = yield* TestMailer.lastTo("zoe@example.com")
      assert.deepStrictEqual(mail.envelope, { from: "hello@example.com", to: ["zoe@example.com"] })
      assert.strictEqual(mail.subject, "Willkommen, Zoë! Grüße aus Köln")
      assert.strictEqual(mail.header("subject"), "Willkommen, Zoë! Grüße aus Köln")
      assert.deepStrictEqual(mail.from, { name: "Café Ünïcode", address: "hello@example.com" })
      assert.deepStrictEqual(mail.to, [{ name: "Zoë", address: "zoe@example.com" }])
      assert.include(mail.text ?? "", "Hallo Zoë,")
      assert.strictEqual(mail.text, "Hallo Zoë,\nwillkommen.")
      assert.strictEqual(mail.html, "<p>Hallo <b>Zoë</b></p>")
      assert.deepStrictEqual(
        mail.attachments.map((a) => [a.filename, a.contentType, a.disposition]),
        [["Preisliste-été.pdf", "application/pdf", "attachment"], ["notes.txt", "text/plain", "attachment"]]
      )
      assert.deepStrictEqual(Array.from(mail.attachments[0].content), [37, 80, 68, 70, 0, 255])
      assert.match(new TextDecoder().decode(mail.attachments[1].content), /^plain notes\r?\n/)
      // the raw bytes are those the client sent; the result is shaped as a real one
      assert.match(new TextDecoder().decode(mail.raw), /^Subject: [^\r\n]*=\?UTF-8\?[QB]\?/im)
      assert.strictEqual(result.messageId, mail.messageId)
      assert.deepStrictEqual(result.accepted, ["zoe@example.com"])
      assert.deepStrictEqual(result.refused, {})
      assert.strictEqual(result.reply.code, 250)
      assert.strictEqual(result.queueId, mail.queueId)
      assert.match(mail.queueId, /^TEST[0-9A-F]{6}$/)
      // the default Mailer options: STARTTLS offered and taken (pretended in memory)
      assert.isTrue(mail.secure)
    }).pipe(Effect.provide(TestMailer.layer())))

  it.effect("expectSent finds a match; a mismatch dies with what was sent and a diff", () =>
    Effect.gen(function*() {
      yield* signUp("Ada", "ada@example.com")
      yield* signUp("Bob", "bob@example.com")
      const found = yield* TestMailer.expectSent({ to: "ADA@example.com", subject: /Ada/, text: "willkommen" })
      assert.deepStrictEqual(found.envelope.to, ["ada@example.com"])
      yield* TestMailer.expectSent({ attachments: ["notes.txt"], headers: { "MIME-Version": "1.0" } })
      yield* TestMailer.expectCount(2)
      const error = defect(yield* Effect.exit(TestMailer.expectSent({ to: "bob@example.com", subject: "Welcome" })))
      assert.instanceOf(error, TestMailer.SentMismatch)
      const mismatch = error as TestMailer.SentMismatch
      assert.strictEqual(
        mismatch.message,
        [
          "TestMailer.expectSent: no message matches {\"to\":\"bob@example.com\",\"subject\":\"Welcome\"}; 2 sent:",
          "#0 from <hello@example.com> to <ada@example.com>: \"Willkommen, Ada! Grüße aus Köln\"",
          "    to: [\"bob@example.com\"] not among [\"ada@example.com\"]",
          "    subject: expected \"Welcome\", got \"Willkommen, Ada! Grüße aus Köln\"",
          "#1 from <hello@example.com> to <bob@example.com>: \"Willkommen, Bob! Grüße aus Köln\"",
          "    subject: expected \"Welcome\", got \"Willkommen, Bob! Grüße aus Köln\""
        ].join("\n")
      )
      // the closest message, for vitest's diff
      assert.deepStrictEqual(mismatch.expected, { to: "bob@example.com", subject: "Welcome" })
      assert.deepStrictEqual(mismatch.actual, {
        to: ["bob@example.com"],
        subject: "Willkommen, Bob! Grüße aus Köln"
      })
      assert.include(
        String(defect(yield* Effect.exit(TestMailer.lastTo("carol@example.com")))),
        "no message was sent to <carol@example.com>"
      )
      assert.include(
        String(defect(yield* Effect.exit(TestMailer.expectCount(3)))),
        "expected 3 messages, 2 sent"
      )
      yield* TestMailer.reset
      assert.include(String(defect(yield* Effect.exit(TestMailer.last))), "no message was sent")
    }).pipe(Effect.provide(TestMailer.layer())))

  it.effect("refused recipients: in the result's refused with the reply; all refused is SmtpRecipientsRefused", () =>
    Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      yield* TestMailer.refuse("gone@example.com", "550 5.1.1 No such user")
      yield* TestMailer.refuse((address) => address.endsWith("@full.test"), { code: 452, text: "4.2.2 Mailbox full" })
      const result = yield* mailer.send({
        from: "a@example.com",
        to: ["ok@example.com", "gone@example.com", "x@full.test", "also-refused@example.org"],
        message: "Subject: hi\r\n\r\nhello\r\n"
      })
      assert.deepStrictEqual(result.accepted, ["ok@example.com"])
      assert.deepStrictEqual(
        Object.entries(result.refused).map(([a, r]) => [a, r.code, r.text]),
        [
          ["gone@example.com", 550, "5.1.1 No such user"],
          ["x@full.test", 452, "4.2.2 Mailbox full"],
          ["also-refused@example.org", 553, "5.7.1 example.org is refused"]
        ]
      )
      assert.strictEqual(result.refused["gone@example.com"].enhancedCode, "5.1.1")
      // only the accepted recipient got it
      assert.deepStrictEqual((yield* TestMailer.last).envelope.to, ["ok@example.com"])
      const error = yield* Effect.flip(mailer.send({ from: "a@example.com", to: "gone@example.com", message: "hi" }))
      assert.strictEqual(error._tag, "SmtpRecipientsRefused")
      if (error._tag === "SmtpRecipientsRefused") {
        assert.deepStrictEqual(Object.keys(error.recipients), ["gone@example.com"])
        assert.strictEqual(SmtpError.classify(error), "permanent")
      }
      yield* TestMailer.expectCount(1)
    }).pipe(
      Effect.provide(TestMailer.layer({ refuse: { "Also-Refused@example.org": "553 5.7.1 example.org is refused" } }))
    ))

  it.effect("failWith: any typed error, once or until reset; sendAll reports it per item", () =>
    Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      const unknown = new SmtpError.SmtpDeliveryUnknown({
        during: "waiting for the reply to the end of data",
        cause: new SmtpError.SmtpServerDisconnected({ during: "waiting for the reply to the end of data" })
      })
      yield* TestMailer.failWith(unknown, { times: 1 })
      const item = { from: "a@example.com", to: "b@example.com", message: "Subject: x\r\n\r\nx\r\n" }
      const first = yield* Effect.flip(mailer.send(item))
      assert.strictEqual(first, unknown)
      assert.strictEqual(SmtpError.classify(first), "unknown")
      assert.strictEqual((yield* mailer.send(item)).accepted.length, 1, "only once")
      const timeout = new SmtpError.SmtpTimeout({ phase: "reply to RCPT", timeoutMillis: 1000 })
      yield* TestMailer.failWith(timeout)
      const outcomes = yield* Stream.runCollect(mailer.sendAll([item, item]))
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(outcomes).map((o) => o._tag === "Failed" ? [o.index, o.error._tag, o.disposition] : o),
        [[0, "SmtpTimeout", "transient"], [1, "SmtpTimeout", "transient"]]
      )
      assert.strictEqual((yield* Effect.flip(mailer.verify))._tag, "SmtpTimeout")
      yield* TestMailer.reset
      const after = yield* Stream.runCollect(
        mailer.sendAll([item, { message: yield* Message.make({ from: "a@x.test", to: "b@x.test", text: "t" }) }])
      )
      assert.deepStrictEqual(Chunk.toReadonlyArray(after).map((o) => o._tag).sort(), ["Sent", "Sent"])
      yield* TestMailer.expectCount(2)
    }).pipe(Effect.provide(TestMailer.layer())))

  it.effect("sendAll reads the injected failures when its Stream runs, not when it is made", () =>
    Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      const item = { from: "a@example.com", to: "b@example.com", message: "Subject: x\r\n\r\nx\r\n" }
      const made = mailer.sendAll([item])
      yield* TestMailer.failWith(new SmtpError.SmtpTimeout({ phase: "reply to RCPT", timeoutMillis: 1000 }))
      const failed = Chunk.toReadonlyArray(yield* Stream.runCollect(made))
      assert.deepStrictEqual(failed.map((o) => o._tag), ["Failed"])
      yield* TestMailer.reset
      const sent = Chunk.toReadonlyArray(yield* Stream.runCollect(made))
      assert.deepStrictEqual(sent.map((o) => o._tag), ["Sent"])
    }).pipe(Effect.provide(TestMailer.layer())))

  it.effect("sendAll with failures injected takes its input as the Mailer does: an item that is not an object or cannot be read is its outcome, an iterable is read one at a time and closed", () =>
    Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      const item = { from: "a@example.com", to: "b@example.com", message: "Subject: x\r\n\r\nx\r\n" }
      yield* TestMailer.failWith(new SmtpError.SmtpTimeout({ phase: "reply to RCPT", timeoutMillis: 1000 }), {
        times: 1
      })
      // (from JavaScript: anything)
      const throwing = {
        from: "a@example.com",
        get to(): string {
          throw new Error("a getter that throws")
        },
        message: "x"
      }
      const outcomes = yield* Stream.runCollect(
        mailer.sendAll([item, null, 42, item, throwing] as Array<Mailer.BulkItem>)
      )
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(outcomes).map((o) =>
          o._tag === "Failed" ? [o.index, o.error._tag, o.disposition, o.error.message] : [o.index, o._tag]
        ),
        [
          [0, "SmtpTimeout", "transient", "Timed out after 1000 ms: reply to RCPT"],
          [
            1,
            "SmtpInvalidInput",
            "permanent",
            "A sendAll item must be an object: { from, to, message } or { message } with a Message"
          ],
          [
            2,
            "SmtpInvalidInput",
            "permanent",
            "A sendAll item must be an object: { from, to, message } or { message } with a Message"
          ],
          [3, "Sent"],
          [
            4,
            "SmtpInvalidInput",
            "permanent",
            "A sendAll item could not be read: reading one of its properties threw"
          ]
        ]
      )
      // a generator left part of the way runs its finally, and was not read far ahead
      yield* TestMailer.failWith(new SmtpError.SmtpTimeout({ phase: "reply to RCPT", timeoutMillis: 1000 }))
      let read = 0
      let closed = false
      function* items() {
        try {
          for (let i = 0; i < 10_000; i++) {
            read++
            yield item
          }
        } finally {
          closed = true
        }
      }
      const two = yield* Stream.runCollect(Stream.take(mailer.sendAll(items()), 2))
      assert.deepStrictEqual(Chunk.toReadonlyArray(two).map((o) => o._tag), ["Failed", "Failed"])
      assert.isTrue(closed)
      assert.isAtMost(read, 3)
    }).pipe(Effect.provide(TestMailer.layer())))

  it.effect("failures through the protocol: a 4xx at the end of data, a hang-up after it (delivery unknown)", () =>
    Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      const item = (subject: string) => ({
        from: "a@example.com",
        to: "b@example.com",
        message: `Subject: ${subject}\r\n\r\nx\r\n`
      })
      const busy = yield* Effect.flip(mailer.send(item("busy")))
      assert.strictEqual(busy._tag, "SmtpDataError")
      assert.strictEqual(SmtpError.classify(busy), "transient")
      const lost = yield* Effect.flip(mailer.send(item("lost")))
      assert.strictEqual(lost._tag, "SmtpDeliveryUnknown")
      assert.strictEqual((yield* mailer.send(item("fine"))).reply.code, 250)
      yield* TestMailer.expectCount(1)
      // the server's side of the last connection
      const transcript = (yield* TestMailer.TestMailer).transport.transcript()
      assert.deepStrictEqual(transcript.slice(0, 2), [
        "S: 220 mx.test ESMTP effect-smtp test server",
        "C: EHLO client.test"
      ])
    }).pipe(Effect.provide(TestMailer.layer({
      respond: (event) => {
        if (event.stage !== "message") return undefined
        const text = new TextDecoder().decode(event.message)
        if (text.includes("Subject: busy")) return "451 4.3.0 Try again later"
        if (text.includes("Subject: lost")) return "disconnect"
        return undefined
      }
    }))))

  it.effect("AUTH and the production options: the Mailer logs in over (pretended) STARTTLS", () =>
    Effect.gen(function*() {
      yield* signUp("Ann", "ann@example.com")
      const mail = yield* TestMailer.last
      assert.strictEqual(mail.user, "app")
      assert.isTrue(mail.secure)
      assert.strictEqual(mail.helo, "client.test")
      // the start-up check works against it too
      const report = yield* (yield* Mailer.Mailer).verify
      assert.isTrue(report.authenticated)
      assert.deepStrictEqual(report.authMechanisms, ["PLAIN", "LOGIN"])
      assert.strictEqual(report.sizeLimit, 25 * 1024 * 1024)
    }).pipe(Effect.provide(TestMailer.layer({
      users: { app: "secret" },
      requireAuth: true,
      mailer: {
        host: "smtp.example.com",
        port: 587,
        security: "starttls",
        auth: { user: "app", password: Redacted.make("secret") }
      }
    }))))
})
