// Sending many messages through the pooled Mailer (README): sendAll, one outcome per message.
import { Effect, Stream } from "effect"
import { Mailer } from "effect-smtp"

export interface Subscriber {
  readonly address: string
  readonly name: string
}

/** The items, made as they are read: a generator (or a Stream), never an array of every message. */
function* newsletter(subscribers: Iterable<Subscriber>): Generator<Mailer.BulkItem> {
  for (const s of subscribers) {
    yield {
      from: "news@example.com",
      to: s.address,
      message: `From: news@example.com\r\nTo: ${s.address}\r\nSubject: News\r\n\r\nHello ${s.name}!\r\n`
    }
  }
}

export const sendNewsletter = (subscribers: Iterable<Subscriber>) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const report = { sent: 0, rejected: 0, retryLater: [] as Array<number>, doNotResend: [] as Array<number> }
    yield* mailer.sendAll(newsletter(subscribers), { concurrency: 8 }).pipe(
      Stream.runForEach((outcome) =>
        Effect.sync(() => {
          if (outcome._tag === "Sent") report.sent++
          else if (outcome.disposition === "transient") report.retryLater.push(outcome.index)
          else if (outcome.disposition === "unknown") report.doNotResend.push(outcome.index) // may be delivered
          else report.rejected++
        })
      )
    )
    return report
  })
