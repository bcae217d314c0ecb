/**
 * `effect-smtp bulk`: one message per recipient of a CSV or JSONL file, from a template with
 * `{{field}}` placeholders, through `Mailer.sendAll` (connections, rate limit, retries). Each
 * outcome is appended to a JSONL results file as it arrives; `--resume` skips the recipients it
 * shows sent (or possibly delivered). Ctrl-C stops taking recipients, lets the messages in flight
 * finish, QUITs, and says how to resume.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Dkim from "../Dkim.js"
import * as Mailer from "../Mailer.js"
import * as Message from "../Message.js"
import * as NodeSmtpTransport from "../NodeSmtpTransport.js"
import { isSmtpError } from "../SmtpError.js"
import { attachments, compose, composeFlags, describeFileError, makeOptions } from "./compose.js"
import { clientOptions, connectionFlags, serverFlag } from "./connection.js"
import { dkimFlags, signer } from "./dkim.js"
import { ExitCode, fromSmtpError, oneLine, usage } from "./exit.js"
import { errorLine, line } from "./output.js"
import * as Progress from "./progress.js"
import * as Recipients from "./recipients.js"
import * as Results from "./results.js"

const flags = {
  ...serverFlag,
  ...connectionFlags,
  ...composeFlags,
  ...dkimFlags,
  recipients: Options.file("recipients").pipe(
    Options.withAlias("r"),
    Options.withDescription(
      "The recipients: CSV with a header row, or JSONL; an \"email\" (or \"to\", \"address\") column, a \"name\" " +
        "column for the display name, and any fields the template uses as {{field}}"
    )
  ),
  format: Options.choice("format", ["csv", "jsonl"]).pipe(
    Options.withDescription("The recipients file's format (default: from its extension)"),
    Options.optional
  ),
  results: Options.text("results").pipe(
    Options.withDescription("The results file, one JSON line per recipient (default: <recipients>.results.jsonl)"),
    Options.optional
  ),
  resume: Options.boolean("resume").pipe(
    Options.withDescription("Skip the recipients the results file shows sent (or possibly delivered) and append")
  ),
  connections: Options.integer("connections").pipe(
    Options.withAlias("c"),
    Options.withDescription("Connections at most at once (and messages in flight)"),
    Options.withDefault(4)
  ),
  rate: Options.text("rate").pipe(
    Options.withDescription("At most this many messages per interval: 10/s, 600/min, 5000/h"),
    Options.optional
  ),
  retries: Options.integer("retries").pipe(
    Options.withDescription("Retries of a transient failure (exponential from 1 s); 0 never retries"),
    Options.withDefault(3)
  ),
  progress: Options.choice("progress", ["auto", "bar", "lines", "none"]).pipe(
    Options.withDescription("auto: a bar on a terminal, else lines"),
    Options.withDefault("auto")
  )
} as const

type Flags = Command.Command.ParseConfig<typeof flags>

const parseRate = (text: string): Either.Either<{ limit: number; interval: Duration.Duration }, string> => {
  const match = /^\s*(\d+)\s*\/\s*(\d*)\s*(ms|s|sec|second|m|min|minute|h|hour)s?\s*$/i.exec(text)
  if (match === null || Number(match[1]) < 1) return Either.left(`--rate ${text}: expected like 10/s, 600/min, 5000/h`)
  const n = match[2] === "" ? 1 : Number(match[2])
  if (n < 1) return Either.left(`--rate ${text}: the interval must be longer than zero`)
  const unit = match[3]!.toLowerCase()
  const millis = unit === "ms" ? 1 : unit.startsWith("s") ? 1000 : unit.startsWith("m") ? 60_000 : 3_600_000
  return Either.right({ limit: Number(match[1]), interval: Duration.millis(n * millis) })
}

const quote = (arg: string) => /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`

/** The flags whose values are the message's content: never printed (they are shown as `…`). */
const contentFlags = new Set(["--subject", "--text", "--html", "--header", "-H"])

/**
 * The command line to run again with --resume, and whether the message's content was left out of
 * it (the values of `contentFlags`, given on the command line, are not repeated in the output).
 */
const resumeCommand = (): { readonly command: string; readonly elided: boolean } => {
  const args = process.argv.slice(2)
  let elided = false
  const shown = args.map((arg, i) => {
    const eq = arg.indexOf("=")
    if (arg.startsWith("--") && eq !== -1 && contentFlags.has(arg.slice(0, eq))) {
      elided = true
      return `${arg.slice(0, eq)}=…`
    }
    if (i > 0 && contentFlags.has(args[i - 1]!)) {
      elided = true
      return "…"
    }
    return quote(arg)
  })
  return {
    command: ["effect-smtp", ...shown, ...(args.includes("--resume") ? [] : ["--resume"])].join(" "),
    elided
  }
}

const errorText = (error: unknown) =>
  oneLine(isSmtpError(error) ? error.message : error instanceof Error ? error.message : String(error))

const handler = (f: Flags) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (f.connections < 1) return yield* Effect.fail(usage("--connections must be at least 1"))
    if (f.retries < 0) return yield* Effect.fail(usage("--retries must be 0 or more"))
    const rate = Option.isSome(f.rate) ? yield* Either.mapLeft(parseRate(f.rate.value), usage) : undefined

    // the recipients and the template, all checked before anything is sent
    const format = Option.getOrElse(f.format, () => (/\.(jsonl|ndjson|json)$/i.test(f.recipients) ? "jsonl" : "csv"))
    const source = yield* fs.readFileString(f.recipients).pipe(
      Effect.mapError((e) => usage(`--recipients ${f.recipients}: ${describeFileError(e)}`))
    )
    const recipients = yield* Either.mapLeft(
      format === "csv" ? Recipients.parseCsv(source) : Recipients.parseJsonl(source),
      (problem) => usage(`${f.recipients}: ${problem}`)
    )
    const composed = yield* compose(f)
    if (composed.from === undefined) return yield* Effect.fail(usage("--from is required"))
    const templates = [composed.from, composed.replyTo, composed.subject, composed.text, composed.html]
      .concat(composed.headers.map((h) => h.value))
      .filter((t): t is string => t !== undefined)
    const used = new Set(templates.flatMap(Recipients.placeholders))
    for (const r of recipients) {
      if (r.address === "") return yield* Effect.fail(usage(`${f.recipients}: line ${r.line}: no address`))
      for (const name of used) {
        if (!(name in r.fields)) {
          return yield* Effect.fail(usage(`${f.recipients}: line ${r.line}: no field "${name}" for {{${name}}}`))
        }
      }
    }

    // the results file, and what an earlier run did
    const resultsPath = Option.getOrElse(f.results, () => `${f.recipients}.results.jsonl`)
    const previous = yield* Results.read(resultsPath).pipe(
      Effect.mapError((problem) => usage(`--results ${resultsPath}: ${problem}`))
    )
    if (previous !== undefined && previous.lines > 0 && !f.resume) {
      return yield* Effect.fail(usage(`${resultsPath} exists: add --resume to skip what it shows sent, or remove it`))
    }
    const done = previous?.done ?? new Map()
    for (const [index, entry] of done) {
      const recipient = recipients[index]
      if (recipient === undefined || (entry.to !== undefined && recipient.address !== entry.to)) {
        return yield* Effect.fail(
          usage(
            `${resultsPath} does not match ${f.recipients} (recipient ${index} was ${entry.to ?? "another"}): ` +
              "not resuming"
          )
        )
      }
    }
    const todo = recipients.filter((r) => !done.has(r.index))
    const skipped = recipients.length - todo.length
    if (todo.length === 0) {
      yield* line(`nothing to send: all ${recipients.length} recipients are in ${resultsPath}`)
      return
    }

    const files = yield* attachments(f.attach, "read")
    const options = yield* clientOptions(f.server, f)
    const dkim = yield* signer(f)
    const mailer = yield* Mailer.make({
      ...options,
      ...(Option.isSome(dkim) ? { dkim: Dkim.sign(dkim.value) } : {}),
      maxConnections: f.connections,
      retry: f.retries === 0 ?
        false :
        Schedule.exponential("1 second").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(f.retries))),
      ...(rate === undefined ? {} : { rateLimit: rate })
    }).pipe(Effect.provide(NodeSmtpTransport.layer))
    // the server, TLS and the login, checked once before the first message
    yield* mailer.verify.pipe(Effect.mapError((e) => fromSmtpError(e)))
    const results = yield* Results.open(resultsPath).pipe(
      Effect.mapError((problem) => usage(`cannot write ${resultsPath}: ${problem}`))
    )

    const mode: Progress.Mode = f.progress === "auto" ?
      (process.stderr.isTTY === true ? "bar" : "lines") :
      f.progress
    const progress = Progress.make(mode, todo.length)
    const counts: Progress.Counts = { sent: 0, failed: 0 }
    const failures = { transient: 0, permanent: 0, unknown: 0 }
    const record = (outcome: Results.Result) => {
      results.write(outcome)
      if (outcome.status === "sent") counts.sent++
      else {
        counts.failed++
        failures[outcome.disposition]++
      }
      progress.update(counts)
    }

    // the items in the order sendAll reads them: position in its input -> recipient
    const positions: Array<Recipients.Recipient> = []
    /** Set by Ctrl-C: take no more recipients. */
    let stopping = false
    const build = (r: Recipients.Recipient) =>
      Effect.either(Message.make(makeOptions(
        composed,
        {
          to: [
            r.fields.name !== undefined && r.fields.name !== ""
              ? { name: r.fields.name, address: r.address }
              : r.address
          ]
        },
        files,
        (template, html) => Recipients.fill(template, r.fields, html)
      )))
    const items = Stream.fromIterable(todo).pipe(
      Stream.mapEffect((r) => Effect.map(build(r), (built) => [r, built] as const)),
      // one element at a time from here (`fromIterable` gives the whole list as one chunk, which
      // the Mailer takes at once): after Ctrl-C no further recipient is taken
      Stream.takeWhile(() => !stopping),
      Stream.filterMap(([r, built]) => {
        if (Either.isLeft(built)) {
          record({
            index: r.index,
            to: r.address,
            status: "failed",
            disposition: "permanent",
            error: errorText(built.left),
            at: new Date().toISOString()
          })
          return Option.none()
        }
        positions.push(r)
        return Option.some({ message: built.right })
      })
    )
    const sending = mailer.sendAll(items, { concurrency: f.connections }).pipe(
      Stream.runForEach((outcome) =>
        Effect.sync(() => {
          const r = positions[outcome.index]!
          const at = new Date().toISOString()
          if (outcome._tag === "Sent") {
            const refused = Object.entries(outcome.refused)
            record({
              index: r.index,
              to: r.address,
              status: "sent",
              ...(refused.length === 0 ?
                {} :
                { refused: Object.fromEntries(refused.map(([a, reply]) => [a, `${reply.code} ${reply.text}`])) }),
              at
            })
          } else {
            record({
              index: r.index,
              to: r.address,
              status: "failed",
              disposition: outcome.disposition,
              error: errorText(outcome.error),
              at
            })
          }
        })
      )
    )
    const summary = () => {
      const failed = counts.failed === 0 ?
        "" :
        ` (${failures.transient} transient, ${failures.permanent} permanent, ${failures.unknown} unknown: may have been delivered)`
      return `sent ${counts.sent}, failed ${counts.failed}${failed} of ${todo.length}` +
        `${skipped > 0 ? ` (${skipped} skipped: done before)` : ""} in ${progress.elapsed()}; results in ${resultsPath}`
    }
    // in the command's Scope, not a child of this fiber: an interruption of this fiber (Ctrl-C)
    // would interrupt a child at once, cutting off the messages in flight and losing their
    // outcomes, and --resume would then send them again
    const fiber = yield* Effect.forkScoped(sending)
    yield* Fiber.join(fiber).pipe(
      Effect.onInterrupt(() =>
        Effect.gen(function*() {
          // Ctrl-C: take no more recipients, let those in flight finish (no message is left
          // half-sent to be sent again by --resume), then QUIT as the Scope closes
          stopping = true
          yield* errorLine(
            mode === "bar"
              ? "\nstopping: waiting for the messages in flight..."
              : "stopping: waiting for the messages in flight..."
          )
          yield* Fiber.await(fiber)
          progress.finish(counts)
          yield* errorLine(`interrupted: ${summary()}`)
          const resume = resumeCommand()
          yield* errorLine(`resume with: ${resume.command}`)
          if (resume.elided) {
            yield* errorLine("(… stands for the subject, text, HTML and headers you gave: give them again)")
          }
          yield* Effect.sync(() => {
            process.exitCode = ExitCode.interrupted
          })
        })
      )
    )
    progress.finish(counts)
    yield* line(summary())
    if (counts.failed > 0) {
      yield* Effect.sync(() => {
        process.exitCode = ExitCode.partial
      })
    }
  }).pipe(Effect.scoped)

/** The command. */
export const command = Command.make("bulk", flags, handler).pipe(
  Command.withDescription(
    "Send one message per recipient of a CSV or JSONL file, from a template with {{field}} placeholders, through " +
      "a pool of connections with a rate limit and retries. Each outcome goes to a JSONL results file as it " +
      "arrives; --resume skips what it shows sent. Ctrl-C stops cleanly and prints the command to resume. " +
      "Exit codes: 0 all sent; 1 some failed; 2 bad input; 3-5 the server could not be used (unreachable, TLS, " +
      "login); 130 interrupted."
  )
)
