// An attachment streamed from a file (README recipe): never read whole.
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import { Mailer, Message } from "effect-smtp"

export const sendReport = (to: string, path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const mailer = yield* Mailer.Mailer
    const message = yield* Message.make({
      from: "reports@example.com",
      to: [to],
      subject: "Monthly report",
      text: "The report is attached.",
      // the content type comes from the file name; the file is base64-encoded as it streams
      attachments: [{ filename: "report.pdf", content: fs.stream(path) }]
    })
    return yield* mailer.send(message)
  }).pipe(Effect.provide(NodeFileSystem.layer))
