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
  /**
   * Sent, or unknown (it may have been delivered: never resent blindly). `to` is undefined for a
   * line cut before its address (a crash as it was written).
   */
  readonly done: Map<number, { readonly to: string | undefined; readonly status: "sent" | "unknown" }>
  /** The lines that are results (cut ones included). */
  readonly lines: number
}

/** The start of a line cut as it was written (a crash): its recipient's index, and address when whole. */
const cutLine = /^\{"index":(\d+)(?:,"to":("(?:[^"\\]|\\.)*"))?/

const isResult = (value: unknown): value is Result =>
  typeof value === "object" && value !== null && typeof (value as Result).index === "number" &&
  typeof (value as Result).to === "string" &&
  ((value as Result).status === "sent" || (value as Result).status === "failed")

/**
 * Reads a results file (undefined when there is none). A line cut as it was written (a crash) is
 * that recipient's outcome unknown: it may have been delivered, so it is not sent again. A file
 * with any other line is not a results file: the error says which line.
 */
export const read = (path: string): Effect.Effect<Previous | undefined, string> =>
  Effect.suspend(() => {
    let text: string
    try {
      if (!Fs.existsSync(path)) return Effect.succeed(undefined)
      text = Fs.readFileSync(path, "utf8")
    } catch (e) {
      return Effect.fail(`cannot read it: ${e instanceof Error && "code" in e ? String(e.code) : "error"}`)
    }
    const done: Previous["done"] = new Map()
    let lines = 0
    const sources = text.split("\n")
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i]!
      if (source.trim() === "") continue
      let r: unknown
      try {
        r = JSON.parse(source)
      } catch {
        r = undefined
      }
      if (!isResult(r)) {
        const cut = r === undefined ? cutLine.exec(source) : null
        if (cut === null) return Effect.fail(`line ${i + 1} is not a line of a results file`)
        lines++
        done.set(Number(cut[1]), {
          to: cut[2] === undefined ? undefined : JSON.parse(cut[2]) as string,
          status: "unknown"
        })
        continue
      }
      lines++
      if (r.status === "sent") done.set(r.index, { to: r.to, status: "sent" })
      else if (r.disposition === "unknown") done.set(r.index, { to: r.to, status: "unknown" })
      else done.delete(r.index)
    }
    return Effect.succeed({ done, lines })
  })

/** An open results file: `write` appends a line at once (no buffering in this process). */
export interface Writer {
  readonly write: (result: Result) => void
}

/**
 * Opens the file for appending, closed with the Scope. A file whose last line was cut (a crash as
 * it was written) gets a line break first: the next result is a line of its own.
 */
export const open = (path: string) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          const fd = Fs.openSync(path, "a+")
          try {
            const size = Fs.fstatSync(fd).size
            const last = Buffer.alloc(1)
            if (size > 0 && Fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a) Fs.writeSync(fd, "\n")
          } catch (e) {
            Fs.closeSync(fd)
            throw e
          }
          return fd
        },
        catch: (e) => (e instanceof Error ? e.message : String(e))
      }),
      (fd) => Effect.sync(() => Fs.closeSync(fd))
    ),
    (fd): Writer => ({ write: (result) => Fs.writeSync(fd, `${JSON.stringify(result)}\n`) })
  )
