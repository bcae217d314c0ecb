/**
 * `npm start`: starts the package's test SMTP server (`TestSmtpServer`, effect-smtp/testing/node)
 * on loopback with STARTTLS under a certificate generated at start-up and AUTH, connects to it
 * with effect-smtp (trusting that certificate), logs in and sends a message, then prints the
 * session transcript and the message as the server received it, decoded.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Logger, LogLevel, Redacted } from "effect"
import { Message, SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import { TestSmtpServer } from "../src/testing/node.js"

const transcriptLogger = Logger.make(({ message }) => {
  const text = Array.isArray(message) ? message.join(" ") : String(message)
  globalThis.console.log(`  ${text}`)
})

const program = Effect.gen(function*() {
  const server = yield* TestSmtpServer.make({ tls: true, users: { alice: "wonderland" } })
  yield* Console.log(
    `Test SMTP server (TestSmtpServer) listening on ${server.host}:${server.port}, STARTTLS with a generated CA\n`
  )
  const message = yield* Message.make({
    from: { name: "Alice", address: "alice@example.test" },
    to: ["bob@example.test", { name: "Zoë", address: "zoe@example.test" }],
    subject: "Hello from effect-smtp ✉",
    text: "Hi Bob and Zoë,\nMAIL, both RCPTs and the message went in one write (PIPELINING and BDAT).\n",
    attachments: [{ filename: "notes.txt", content: "An attachment, read back by the server with postal-mime.\n" }]
  })
  yield* Console.log("Transcript (C: client, S: server):")
  const result = yield* Effect.scoped(
    Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect({
        ...server.clientOptions,
        localHostname: "client.example.test",
        auth: { user: "alice", password: Redacted.make("wonderland") },
        debug: 1
      })
      return yield* smtp.send(message)
    })
  ).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, transcriptLogger)),
    Logger.withMinimumLogLevel(LogLevel.Debug)
  )
  const [received] = yield* server.awaitMessages(1)
  yield* Console.log(`\nAccepted: ${result.accepted.join(", ")}; queue id ${result.queueId}`)
  yield* Console.log(
    `Envelope: from <${received.envelope.from}> to ${received.envelope.to.map((t) => `<${t}>`).join(", ")}` +
      ` (${received.secure ? "encrypted" : "plaintext"}, user ${received.user}, ${received.via})`
  )
  yield* Console.log(`Subject (decoded): ${received.subject}`)
  yield* Console.log(`Attachments: ${received.attachments.map((a) => `${a.filename} (${a.contentType})`).join(", ")}`)
  yield* Console.log(`Message as the server received it (${received.raw.length} bytes):`)
  yield* Console.log(new TextDecoder().decode(received.raw).replace(/\r\n/g, "\n").replace(/^/gm, "  | "))
}).pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))

NodeRuntime.runMain(program, { disablePrettyLogger: true })
