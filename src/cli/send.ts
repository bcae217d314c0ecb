/**
 * `effect-smtp send`: one message, composed from flags or read from a `.eml` file, sent with
 * `SmtpConnection.send`; prints the send result (accepted, refused, final reply, queue id).
 * `--dry-run` prints the envelope and the message instead; `--transcript` prints the dialogue
 * (AUTH redacted) on stderr.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Dkim from "../Dkim.js"
import * as Message from "../Message.js"
import * as NodeSmtpTransport from "../NodeSmtpTransport.js"
import * as SmtpClient from "../SmtpClient.js"
import { isSmtpError } from "../SmtpError.js"
import { attachments, compose, composeFlags, describeFileError, makeOptions } from "./compose.js"
import { clientOptions, connectionFlags, serverFlag } from "./connection.js"
import { dkimFlags, signer } from "./dkim.js"
import { CliFailure, ExitCode, fromSmtpError, usage } from "./exit.js"
import { errorLine, fields, json, line, sendResultJson, sendResultText } from "./output.js"

const flags = {
  ...serverFlag,
  ...connectionFlags,
  ...composeFlags,
  ...dkimFlags,
  to: Options.text("to").pipe(
    Options.withAlias("t"),
    Options.withDescription("A recipient (repeat for more)"),
    Options.repeated
  ),
  cc: Options.text("cc").pipe(Options.withDescription("A Cc recipient (repeat for more)"), Options.repeated),
  bcc: Options.text("bcc").pipe(Options.withDescription("A Bcc recipient: in the envelope only"), Options.repeated),
  eml: Options.file("eml").pipe(
    Options.withDescription(
      "Send this message file as is; the envelope comes from its headers unless --from/--to/--cc/--bcc are given"
    ),
    Options.optional
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("Print the envelope and the message; connect to nothing")
  ),
  transcript: Options.boolean("transcript").pipe(
    Options.withDescription("Print the SMTP dialogue on stderr (credentials and message data are never shown)")
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Print the result as JSON"))
} as const

type Flags = Command.Command.ParseConfig<typeof flags>

const composeFlagsGiven = (f: Flags) =>
  Option.isSome(f.subject) || Option.isSome(f.text) || Option.isSome(f.textFile) || Option.isSome(f.html) ||
  Option.isSome(f.htmlFile) || f.attach.length > 0 || f.header.length > 0 || Option.isSome(f.replyTo)

/** The message and the envelope overrides. */
const prepare = (f: Flags) =>
  Effect.gen(function*() {
    if (Option.isSome(f.eml)) {
      if (composeFlagsGiven(f)) {
        return yield* Effect.fail(
          usage("--eml sends the file as is: drop --subject, --text, --html, --attach, --header")
        )
      }
      const fs = yield* FileSystem.FileSystem
      const bytes = yield* fs.readFile(f.eml.value).pipe(
        Effect.mapError((e) => usage(`--eml ${f.eml.pipe(Option.getOrElse(() => ""))}: ${describeFileError(e)}`))
      )
      const message = yield* Either.match(Message.parse(bytes), {
        onLeft: (e) => Effect.fail(usage(`--eml: not a message: ${e.message}`)),
        onRight: Effect.succeed
      })
      const to = [...f.to, ...f.cc, ...f.bcc]
      return {
        message: message as Message.Message<never>,
        envelope: {
          ...(Option.isSome(f.from) ? { from: f.from.value } : {}),
          ...(to.length > 0 ? { to } : {})
        }
      }
    }
    if (Option.isNone(f.from)) return yield* Effect.fail(usage("--from is required (or --eml FILE)"))
    if (f.to.length + f.cc.length + f.bcc.length === 0) {
      return yield* Effect.fail(usage("give at least one --to, --cc or --bcc"))
    }
    const composed = yield* compose(f)
    const files = yield* attachments(f.attach, "stream")
    const message = yield* Message.make(makeOptions(composed, { to: f.to, cc: f.cc, bcc: f.bcc }, files))
    return { message, envelope: {} }
  })

const handler = (f: Flags) =>
  Effect.gen(function*() {
    const prepared = yield* prepare(f)
    const { envelope } = prepared
    const dkim = yield* signer(f)
    const message = Option.isSome(dkim) ? yield* Dkim.sign(prepared.message, dkim.value) : prepared.message
    if (f.dryRun) {
      const prepared = yield* Message.envelope(message, envelope)
      const bytes = yield* Message.toBytes(message)
      yield* errorLine(
        fields([["MAIL FROM", `<${prepared.from}>`], ["RCPT TO", prepared.to.map((a) => `<${a}>`).join(" ")]])
      )
      yield* Effect.sync(() => {
        process.stdout.write(bytes)
        if (bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a) process.stdout.write("\r\n")
      })
      return
    }
    const options = yield* clientOptions(f.server, f, { debug: f.transcript ? 1 : 0 })
    const result = yield* Effect.scoped(
      Effect.flatMap(SmtpClient.connect(options), (smtp) => smtp.send(message, envelope))
    ).pipe(Effect.provide(NodeSmtpTransport.layer))
    yield* f.json ? json(sendResultJson(result)) : line(sendResultText(result))
    if (Object.keys(result.refused).length > 0) {
      yield* Effect.sync(() => {
        process.exitCode = ExitCode.partial
      })
    }
  }).pipe(
    Effect.catchIf(isSmtpError, (e) => Effect.fail(fromSmtpError(e))),
    Effect.catchTag("SystemError", "BadArgument", (e) =>
      Effect.fail(new CliFailure({ code: ExitCode.usage, message: e.message })))
  )

/** The command. */
export const command = Command.make("send", flags, handler).pipe(
  Command.withDescription(
    "Send one message, composed from the flags or read from a .eml file, and print the send result " +
      "(accepted, refused, final reply, queue id)."
  )
)
