// An attachment from a file (README recipe): checked when the message is made, streamed when sent.
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import { Mailer, Message } from "effect-smtp"

export const sendReport = (to: string, path: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    // a missing file fails here; the content type comes from the extension; never read whole
    const report = yield* Message.attachmentFromPath(path)
    const message = yield* Message.make({
      from: "reports@example.com",
      to: [to],
      subject: "Monthly report",
      text: "The report is attached.",
      attachments: [report]
    })
    return yield* mailer.send(message)
  }).pipe(Effect.provide(NodeFileSystem.layer))
