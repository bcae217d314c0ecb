/**
 * The message flags `send` and `bulk` share (from, subject, text/html inline or from a file,
 * attachments, extra headers) and how they become `Message.make` options; `bulk` passes a
 * function that fills `{{field}}` placeholders per recipient.
 *
 * @internal
 */
import * as Options from "@effect/cli/Options"
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type * as Message from "../Message.js"
import { usage } from "./exit.js"
import type { CliFailure } from "./exit.js"

/** What the message flags parse to. */
export interface ComposeFlags {
  readonly from: Option.Option<string>
  readonly replyTo: Option.Option<string>
  readonly subject: Option.Option<string>
  readonly text: Option.Option<string>
  readonly textFile: Option.Option<string>
  readonly html: Option.Option<string>
  readonly htmlFile: Option.Option<string>
  readonly attach: ReadonlyArray<string>
  readonly header: ReadonlyArray<string>
}

/** The flags. */
export const composeFlags = {
  from: Options.text("from").pipe(Options.withAlias("f"), Options.withDescription("The sender"), Options.optional),
  replyTo: Options.text("reply-to").pipe(Options.withDescription("The Reply-To address"), Options.optional),
  subject: Options.text("subject").pipe(Options.withDescription("The subject"), Options.optional),
  text: Options.text("text").pipe(Options.withDescription("The plain text body"), Options.optional),
  textFile: Options.file("text-file").pipe(
    Options.withDescription("The plain text body, from a file"),
    Options.optional
  ),
  html: Options.text("html").pipe(Options.withDescription("The HTML body"), Options.optional),
  htmlFile: Options.file("html-file").pipe(Options.withDescription("The HTML body, from a file"), Options.optional),
  attach: Options.file("attach").pipe(
    Options.withDescription("Attach a file (repeat for more; the type comes from the name)"),
    Options.repeated
  ),
  header: Options.text("header").pipe(
    Options.withAlias("H"),
    Options.withDescription("An extra header, \"Name: value\" (repeat for more)"),
    Options.repeated
  )
} as const

/** A `Name: value` flag as a header. */
export const parseHeader = (flag: string): Effect.Effect<Message.Header, CliFailure> => {
  const colon = flag.indexOf(":")
  const name = colon < 0 ? "" : flag.slice(0, colon).trim()
  if (!/^[!-9;-~]+$/.test(name)) return Effect.fail(usage(`--header ${JSON.stringify(flag)}: expected "Name: value"`))
  return Effect.succeed({ name, value: flag.slice(colon + 1).trim() })
}

/** A file's text, or a one-line failure naming the flag. */
export const readText = (flag: string, path: string): Effect.Effect<string, CliFailure, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
    Effect.mapError((e) => usage(`--${flag} ${path}: ${describeFileError(e)}`))
  )

/** A file error in a few words. */
export const describeFileError = (e: PlatformError.PlatformError): string =>
  e._tag === "SystemError" && e.reason === "NotFound" ? "no such file" : e.message

/** The attachments: each file streamed (`stream`) or read once (for many messages). */
export const attachments = (
  paths: ReadonlyArray<string>,
  mode: "stream" | "read"
): Effect.Effect<
  ReadonlyArray<Message.Attachment<PlatformError.PlatformError>>,
  CliFailure,
  FileSystem.FileSystem
> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) =>
    Effect.forEach(paths, (path) => {
      const filename = path.split(/[\\/]/).pop() ?? path
      const missing = (e: PlatformError.PlatformError) => usage(`--attach ${path}: ${describeFileError(e)}`)
      return Effect.flatMap(fs.stat(path).pipe(Effect.mapError(missing)), (info) => {
        if (info.type !== "File") return Effect.fail(usage(`--attach ${path}: not a file`))
        if (mode === "read") {
          return Effect.map(
            fs.readFile(path).pipe(Effect.mapError(missing)),
            (content): Message.Attachment<PlatformError.PlatformError> => ({ filename, content })
          )
        }
        const content: Stream.Stream<Uint8Array, PlatformError.PlatformError> = fs.stream(path)
        return Effect.succeed<Message.Attachment<PlatformError.PlatformError>>({ filename, content })
      })
    }))

/** The parts of the message the flags give, with `fill` applied to the texts (a template's placeholders). */
export interface Composed {
  readonly from: string | undefined
  readonly replyTo: string | undefined
  readonly subject: string | undefined
  readonly text: string | undefined
  readonly html: string | undefined
  readonly headers: ReadonlyArray<Message.Header>
}

/** Reads the body files and checks the headers, once. */
export const compose = (flags: ComposeFlags): Effect.Effect<Composed, CliFailure, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isSome(flags.text) && Option.isSome(flags.textFile)) {
      return yield* Effect.fail(usage("give --text or --text-file, not both"))
    }
    if (Option.isSome(flags.html) && Option.isSome(flags.htmlFile)) {
      return yield* Effect.fail(usage("give --html or --html-file, not both"))
    }
    const text = Option.isSome(flags.textFile) ?
      yield* readText("text-file", flags.textFile.value) :
      Option.getOrUndefined(flags.text)
    const html = Option.isSome(flags.htmlFile) ?
      yield* readText("html-file", flags.htmlFile.value) :
      Option.getOrUndefined(flags.html)
    return {
      from: Option.getOrUndefined(flags.from),
      replyTo: Option.getOrUndefined(flags.replyTo),
      subject: Option.getOrUndefined(flags.subject),
      text,
      html,
      headers: yield* Effect.forEach(flags.header, parseHeader)
    }
  })

/** `Message.make` options from the composed parts, each text passed through `fill` (`html` for the HTML body). */
export const makeOptions = <E>(
  composed: Composed,
  recipients: {
    readonly to: ReadonlyArray<Message.AddressInput>
    readonly cc?: ReadonlyArray<string> | undefined
    readonly bcc?: ReadonlyArray<string> | undefined
  },
  files: ReadonlyArray<Message.Attachment<E>>,
  fill: (template: string, html: boolean) => string = (s) => s
): Message.MakeOptions<E> => ({
  from: fill(composed.from ?? "", false),
  to: recipients.to,
  ...(recipients.cc === undefined || recipients.cc.length === 0 ? {} : { cc: recipients.cc }),
  ...(recipients.bcc === undefined || recipients.bcc.length === 0 ? {} : { bcc: recipients.bcc }),
  ...(composed.replyTo === undefined ? {} : { replyTo: fill(composed.replyTo, false) }),
  ...(composed.subject === undefined ? {} : { subject: fill(composed.subject, false) }),
  ...(composed.text === undefined ? {} : { text: fill(composed.text, false) }),
  ...(composed.html === undefined ? {} : { html: fill(composed.html, true) }),
  ...(files.length === 0 ? {} : { attachments: files }),
  ...(composed.headers.length === 0 ?
    {} :
    { headers: composed.headers.map((h) => ({ name: h.name, value: fill(h.value, false) })) })
})
