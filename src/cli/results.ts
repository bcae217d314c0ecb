/**
 * The results file of `bulk`: one JSON line per recipient outcome, appended and written through
 * as each outcome arrives (so an interruption loses none), and read back by `--resume`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import type { Disposition } from "../SmtpError.js"

/** One line of the results file. */
export type Result =
  | {
    readonly index: number
    readonly to: string
    readonly status: "sent"
    readonly refused?: Readonly<Record<string, string>> | undefined
    readonly at: string
  }
  | {
    readonly index: number
    readonly to: string
    readonly status: "failed"
    readonly disposition: Disposition
    readonly error: string
    readonly at: string
  }

/** What an earlier run left: the recipients not to send again, by index, with the address recorded. */
export interface Previous {
  /** Sent, or unknown (it may have been delivered: never resent blindly). */
  readonly done: Map<number, { readonly to: string; readonly status: "sent" | "unknown" }>
  readonly lines: number
}

/** Reads a results file; lines that do not parse (a line cut by a crash) are ignored. */
export const read = (path: string): Effect.Effect<Previous | undefined> =>
  Effect.sync(() => {
    if (!Fs.existsSync(path)) return undefined
    const done: Previous["done"] = new Map()
    let lines = 0
    for (const source of Fs.readFileSync(path, "utf8").split("\n")) {
      if (source.trim() === "") continue
      let r: Result
      try {
        r = JSON.parse(source) as Result
      } catch {
        continue
      }
      lines++
      if (typeof r.index !== "number") continue
      if (r.status === "sent") done.set(r.index, { to: r.to, status: "sent" })
      else if (r.status === "failed" && r.disposition === "unknown") done.set(r.index, { to: r.to, status: "unknown" })
      else done.delete(r.index)
    }
    return { done, lines }
  })

/** An open results file: `write` appends a line at once (no buffering in this process). */
export interface Writer {
  readonly write: (result: Result) => void
}

/** Opens the file for appending, closed with the Scope. */
export const open = (path: string) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.try({ try: () => Fs.openSync(path, "a"), catch: (e) => (e instanceof Error ? e.message : String(e)) }),
      (fd) => Effect.sync(() => Fs.closeSync(fd))
    ),
    (fd): Writer => ({ write: (result) => Fs.writeSync(fd, `${JSON.stringify(result)}\n`) })
  )
