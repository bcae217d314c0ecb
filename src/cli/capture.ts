/**
 * `effect-smtp capture`: a local catch-all SMTP server for development (Python's old
 * `smtpd -n -c DebuggingServer`, `aiosmtpd -n`), built on `TestSmtpServer`: every message is
 * accepted, its envelope and headers printed, and its bytes saved as a `.eml` file; optional
 * STARTTLS (or implicit TLS) with a generated certificate, and AUTH.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as TestServer from "../testing/TestServer.js"
import * as TestSmtpServer from "../testing/TestSmtpServer.js"
import { describeFileError } from "./compose.js"
import { envVariable } from "./connection.js"
import { usage } from "./exit.js"
import { fields, json, line } from "./output.js"

const flags = {
  host: Options.text("host").pipe(
    Options.withDescription("The address to listen on"),
    Options.withDefault("127.0.0.1")
  ),
  port: Options.integer("port").pipe(
    Options.withAlias("p"),
    Options.withDescription("The port (0: any free port)"),
    Options.withDefault(2525)
  ),
  dir: Options.directory("dir").pipe(
    Options.withAlias("d"),
    Options.withDescription("Save each message as a .eml file in this folder (created if missing)"),
    Options.optional
  ),
  tls: Options.choice("tls", ["starttls", "implicit"]).pipe(
    Options.withDescription(
      "Offer STARTTLS, or speak TLS from the first byte, with a certificate generated at start-up"
    ),
    Options.optional
  ),
  caOut: Options.text("ca-out").pipe(
    Options.withDescription("Write the generated CA certificate here (clients trust it with --ca FILE)"),
    Options.optional
  ),
  user: Options.text("user").pipe(
    Options.withAlias("u"),
    Options.withDescription("Require AUTH as this user (the password from --password-env); else any login is accepted"),
    Options.optional
  ),
  passwordEnv: Options.text("password-env").pipe(
    Options.withDescription("The environment variable holding the password of --user"),
    Options.withDefault("SMTP_PASSWORD")
  ),
  hostname: Options.text("hostname").pipe(
    Options.withDescription("The name in the greeting"),
    Options.withDefault("capture.local")
  ),
  count: Options.integer("count").pipe(
    Options.withAlias("n"),
    Options.withDescription("Stop after this many messages"),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object per message"))
} as const

type Flags = Command.Command.ParseConfig<typeof flags>

const stamp = (date: Date) => date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")

const print = (message: TestServer.Captured, n: number, file: string | undefined, asJson: boolean) =>
  asJson ?
    json({
      n,
      envelope: message.envelope,
      mailParams: message.mailParams,
      queueId: message.queueId,
      via: message.via,
      helo: message.helo,
      secure: message.secure,
      user: message.user ?? null,
      size: message.raw.length,
      headers: message.headers,
      file: file ?? null
    }) :
    line(
      [
        `--- message ${n} (${new Date().toISOString()}) ---`,
        fields([
          [
            "MAIL FROM",
            `<${message.envelope.from}>${message.mailParams.length > 0 ? ` ${message.mailParams.join(" ")}` : ""}`
          ],
          ["RCPT TO", message.envelope.to.map((a) => `<${a}>`).join(", ")],
          [
            "session",
            `EHLO ${message.helo}${message.secure ? ", TLS" : ""}${
              message.user === undefined ? "" : `, user ${message.user}`
            }, ${message.via}, ${message.raw.length} bytes, queued as ${message.queueId}`
          ],
          ...(file === undefined ? [] : [["saved", file] as const])
        ]),
        "",
        ...message.headers.map((h) => `${h.name}: ${h.value}`),
        ""
      ].join("\n")
    )

const handler = (f: Flags) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    if (f.port < 0 || f.port > 65535) return yield* Effect.fail(usage(`--port ${f.port} is not a port number`))
    if (Option.isSome(f.caOut) && Option.isNone(f.tls)) return yield* Effect.fail(usage("--ca-out needs --tls"))
    if (Option.isSome(f.count) && f.count.value < 1) return yield* Effect.fail(usage("--count must be at least 1"))
    // the name goes into the greeting and every reply's text: a line break would end a reply early
    if (!/^[\x21-\x7e]+$/.test(f.hostname)) {
      return yield* Effect.fail(usage("--hostname must be printable ASCII without spaces"))
    }
    let users: Record<string, string> | undefined
    if (Option.isSome(f.user)) {
      const password = process.env[f.passwordEnv]
      if (password === undefined || password === "") {
        return yield* Effect.fail(
          usage(`no password for ${f.user.value}: set ${envVariable("--password-env", f.passwordEnv, "SMTP_PASSWORD")}`)
        )
      }
      users = { [f.user.value]: password }
    }
    if (Option.isSome(f.dir)) {
      yield* fs.makeDirectory(f.dir.value, { recursive: true }).pipe(
        Effect.mapError((e) => usage(`--dir ${f.dir.pipe(Option.getOrElse(() => ""))}: ${describeFileError(e)}`))
      )
    }
    const server = yield* TestSmtpServer.make({
      host: f.host,
      port: f.port,
      hostname: f.hostname,
      ...(Option.isSome(f.tls) ? { tls: f.tls.value === "implicit" ? { implicit: true } : true } : {}),
      ...(users === undefined ? {} : { users, requireAuth: true })
    }).pipe(
      // a listen error (EADDRINUSE, EACCES) is a defect of the test server
      Effect.catchAllDefect((defect) =>
        Effect.fail(
          usage(`cannot listen on ${f.host}:${f.port}: ${defect instanceof Error ? defect.message : String(defect)}`)
        )
      )
    )
    if (Option.isSome(f.caOut) && server.ca !== undefined) {
      yield* fs.writeFileString(f.caOut.value, server.ca).pipe(
        Effect.mapError((e) => usage(`--ca-out ${f.caOut.pipe(Option.getOrElse(() => ""))}: ${describeFileError(e)}`))
      )
    }
    const security = Option.isNone(f.tls) ? "plaintext" : f.tls.value === "implicit" ? "implicit TLS" : "STARTTLS"
    yield* Effect.sync(() =>
      process.stderr.write(
        `listening on ${server.host}:${server.port} (${security}${users === undefined ? "" : ", AUTH required"}); ` +
          `Ctrl-C to stop\n`
      )
    )
    let seen = 0
    const limit = Option.getOrUndefined(f.count)
    while (limit === undefined || seen < limit) {
      const messages = yield* server.awaitMessages(seen + 1)
      for (const message of messages.slice(seen)) {
        seen++
        let file: string | undefined
        if (Option.isSome(f.dir)) {
          file = path.join(f.dir.value, `${stamp(new Date())}-${message.queueId}.eml`)
          yield* fs.writeFile(file, message.raw).pipe(
            Effect.mapError((e) => usage(`cannot save ${file}: ${describeFileError(e)}`))
          )
        }
        yield* print(message, seen, file, f.json)
        if (limit !== undefined && seen >= limit) break
      }
    }
  }).pipe(
    Effect.scoped,
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        // Ctrl-C is how a capture session ends
        process.exitCode = 0
      })
    )
  )

/** The command. */
export const command = Command.make("capture", flags, handler).pipe(
  Command.withDescription(
    "Run a local catch-all SMTP server for development: every message is accepted, its envelope and headers " +
      "printed, and (with --dir) saved as a .eml file. Optional STARTTLS or implicit TLS with a generated " +
      "certificate, and AUTH PLAIN/LOGIN."
  )
)
