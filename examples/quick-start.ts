// The README's quick start. CI type-checks this file (tsconfig includes examples/).
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Redacted } from "effect"
import { Message, SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"

const program = Effect.gen(function*() {
  // STARTTLS is required here: connect fails with SmtpTlsError rather than send in clear
  const smtp = yield* SmtpClient.connect({
    host: "smtp.example.com",
    port: 587,
    security: "starttls",
    auth: { user: "me@example.com", password: Redacted.make("app-password") }
  })
  const message = yield* Message.make({
    from: { name: "Me", address: "me@example.com" },
    to: ["you@example.com"],
    subject: "Hello from effect-smtp",
    text: "Hi!\n\nThis went out over STARTTLS."
  })
  const refused = yield* smtp.sendMessage(message)
  yield* Effect.log("refused recipients", refused)
}).pipe(
  Effect.scoped, // QUIT, then close, however the block ends
  Effect.catchTags({
    SmtpRecipientsRefused: (e) => Effect.logWarning("nobody took it", Object.keys(e.recipients)),
    SmtpAuthenticationError: (e) => Effect.logError("login failed", e.code, e.mechanisms),
    SmtpTlsError: (e) => Effect.logError("TLS failed", e.reason)
  }),
  Effect.provide(NodeSmtpTransport.layer)
)

NodeRuntime.runMain(program)
