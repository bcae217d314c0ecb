// Many messages on one connection with pipelining across messages (README).
import { Effect, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"

const newsletter = (to: string): SmtpConnection.BatchItem => ({
  from: "news@example.com",
  to,
  message: `From: news@example.com\r\nTo: ${to}\r\nSubject: News\r\n\r\nThis month...\r\n`
})

export const sendNewsletter = (subscribers: Stream.Stream<string>) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({ host: "smtp.example.com", port: 587, security: "starttls" })
    // one outcome per message, in order, as they are known; memory stays flat however many there are
    return yield* smtp.sendBatch(Stream.map(subscribers, newsletter)).pipe(
      Stream.runFoldEffect({ sent: 0, retry: [] as Array<number> }, (totals, outcome) => {
        switch (outcome._tag) {
          case "Sent":
            return Effect.succeed({ ...totals, sent: totals.sent + 1 })
          case "NotSent": // safe to send again (on another connection)
            return Effect.succeed({ ...totals, retry: [...totals.retry, outcome.index] })
          case "Refused": // the server's answer is in outcome.error
          case "Unknown": // the end of the data went out, no reply came: it may have been delivered
            return Effect.as(Effect.logWarning(`message ${outcome.index}: ${outcome.error.message}`), totals)
        }
      })
    )
  })).pipe(Effect.provide(NodeSmtpTransport.layer))

// a list known in advance: every outcome at once, in an array (no Stream to run)
export const sendInvitations = (guests: ReadonlyArray<string>) =>
  Effect.scoped(Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({ host: "smtp.example.com", port: 587, security: "starttls" })
    const outcomes = yield* smtp.sendBatchAll(guests.map(newsletter))
    // the guests whose invitation may be sent again on another connection
    return outcomes.filter((o) => o._tag === "NotSent").map((o) => guests[o.index])
  })).pipe(Effect.provide(NodeSmtpTransport.layer))
