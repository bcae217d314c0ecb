/**
 * `npm start`: starts an SMTP server in this process on loopback, connects to it with
 * effect-smtp, sends a message, then prints the session transcript and the message exactly as
 * the server received it.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Logger, LogLevel } from "effect"
import { SmtpClient } from "../src/index.js"
import { NodeSmtpTransport } from "../src/node.js"
import * as EmbeddedServer from "./EmbeddedServer.js"

const message = [
  "From: Alice <alice@example.test>",
  "To: Bob <bob@example.test>, Carol <carol@example.test>",
  "Subject: Hello from effect-smtp",
  "",
  "Hi Bob and Carol,",
  ".A line that starts with a dot is dot-stuffed on the wire, and arrives intact.",
  "",
  "Sent with PIPELINING: MAIL, both RCPTs and DATA went in one write.",
  ""
].join("\r\n")

const transcriptLogger = Logger.make(({ message }) => {
  const text = Array.isArray(message) ? message.join(" ") : String(message)
  globalThis.console.log(`  ${text}`)
})

const program = Effect.gen(function*() {
  const server = yield* EmbeddedServer.make()
  yield* Console.log(`Embedded SMTP server (smtp-server) listening on ${server.host}:${server.port}\n`)
  yield* Console.log("Transcript (C: client, S: server):")
  const refused = yield* Effect.scoped(
    Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect({
        host: server.host,
        port: server.port,
        localHostname: "client.example.test",
        debug: 1
      })
      return yield* smtp.sendmail("alice@example.test", ["bob@example.test", "carol@example.test"], message)
    })
  ).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, transcriptLogger)),
    Logger.withMinimumLogLevel(LogLevel.Debug)
  )
  const [received] = yield* server.waitFor(1)
  yield* Console.log(`\nRefused recipients: ${JSON.stringify(refused)}`)
  yield* Console.log(`Envelope: from <${received.from}> to ${received.to.map((t) => `<${t}>`).join(", ")}`)
  yield* Console.log(`Message as the server received it (${received.data.length} bytes):`)
  yield* Console.log(received.data.toString("utf8").replace(/\r\n/g, "\n").replace(/^/gm, "  | "))
}).pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))

NodeRuntime.runMain(program, { disablePrettyLogger: true })
