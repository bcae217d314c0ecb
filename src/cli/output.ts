/**
 * Writing to the terminal: lines to stdout and stderr, JSON, aligned fields, and the `C:`/`S:`
 * transcript (the library's `debug` log lines, which already show AUTH as `<redacted>`) on stderr.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type { SendResult } from "../SmtpConnection.js"

/** A line on stdout. */
export const line = (text: string): Effect.Effect<void> => Effect.sync(() => process.stdout.write(`${text}\n`))

/** A line on stderr. */
export const errorLine = (text: string): Effect.Effect<void> => Effect.sync(() => process.stderr.write(`${text}\n`))

/** A value as one line of JSON on stdout. */
export const json = (value: unknown): Effect.Effect<void> => line(JSON.stringify(value))

/** `name: value` lines with the values aligned. */
export const fields = (rows: ReadonlyArray<readonly [string, string]>, minWidth = 0): string => {
  const width = Math.max(minWidth, ...rows.map(([k]) => k.length)) + 1
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)} ${v}`).join("\n")
}

const text = (message: unknown): string =>
  Array.isArray(message) ? message.map((m) => (typeof m === "string" ? m : String(m))).join(" ") : String(message)

/**
 * The logger of the commands: transcript lines (`C: ...`, `S: ...`) as they are, on stderr;
 * warnings and errors as `warning: ...`; the rest (Debug and Info of the library) dropped.
 */
export const loggerLayer: Layer.Layer<never> = Layer.merge(
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      const body = text(message)
      if (/^(?:\S+ )?[CS]: /.test(body)) process.stderr.write(`${body}\n`)
      else if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
        process.stderr.write(`${logLevel.label.toLowerCase()}: ${body}\n`)
      }
    })
  ),
  Logger.minimumLogLevel(LogLevel.Info)
)

/** A send result as the commands print it, and as `--json` writes it. */
export const sendResultJson = (result: SendResult) => ({
  envelope: result.envelope,
  messageId: result.messageId ?? null,
  accepted: result.accepted,
  refused: Object.fromEntries(
    Object.entries(result.refused).map(([address, reply]) => [address, { code: reply.code, text: reply.text }])
  ),
  reply: { code: result.reply.code, text: result.reply.text },
  queueId: result.queueId ?? null
})

/** A send result as aligned lines. */
export const sendResultText = (result: SendResult): string => {
  const refused = Object.entries(result.refused)
  return fields([
    ["from", `<${result.envelope.from}>`],
    ["accepted", result.accepted.length === 0 ? "(none)" : result.accepted.join(", ")],
    ...refused.map(([address, reply]): readonly [string, string] => [
      "refused",
      `${address} (${reply.code} ${reply.text.replace(/\n/g, " / ")})`
    ]),
    ["reply", `${result.reply.code} ${result.reply.text.replace(/\n/g, " / ")}`],
    ["queue id", result.queueId ?? "(none given)"],
    ["message-id", result.messageId ?? "(none)"]
  ])
}
