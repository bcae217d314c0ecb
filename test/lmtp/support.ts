/**
 * Helpers for the LMTP and CHUNKING tests: connect options, LHLO/EHLO replies with the extensions
 * a case needs, and plain-data projections of a `Delivery` for exact comparison.
 */
import { Cause, Exit, Option } from "effect"
import type { LmtpConnection, SmtpReply } from "../../src/index.js"
import type { ScriptedTransport } from "../../src/testing/index.js"
import { type Mode, plainError } from "../session/support.js"

/** LMTP as the scripted tests connect: plaintext, so that the first LHLO is the one sendmail sends. */
export const lmtpOptions = { protocol: "lmtp", host: "mx.test", security: "none" } as const

/** The LHLO (or EHLO) reply of the scripted server: PIPELINING in pipelined mode, then `features`. */
export const helloReply = (mode: Mode, features: ReadonlyArray<string> = []): string => {
  const lines = ["mx.test greets client.test", ...(mode === "pipelined" ? ["PIPELINING"] : []), ...features]
  return lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}`).join("\r\n")
}

const decoder = new TextDecoder()

/** The reply code of a scripted reply (its first three characters). */
export const codeOf = (reply: ScriptedTransport.Reply): number => {
  const text = typeof reply === "string" ?
    reply :
    reply.map((c) => (typeof c === "string" ? c : decoder.decode(c))).join("")
  return Number(text.slice(0, 3))
}

export interface PlainReply {
  readonly code: number
  readonly text: string
}

export interface PlainRecipient {
  readonly recipient: string
  readonly status: "delivered" | "refused" | "unknown"
  readonly stage: "rcpt" | "data"
  readonly reply: PlainReply | undefined
}

export interface PlainDelivery {
  readonly recipients: ReadonlyArray<PlainRecipient>
  readonly delivered: Record<string, PlainReply>
  readonly refused: Record<string, PlainReply>
  readonly unknown: ReadonlyArray<string>
  readonly interruption: unknown
}

const reply = (r: SmtpReply.SmtpReply): PlainReply => ({ code: r.code, text: r.text })

const record = (r: Readonly<Record<string, SmtpReply.SmtpReply>>) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, reply(v)]))

/** A Delivery as plain data (replies as `{ code, text }`, the interruption as `plainError`). */
export const plainDelivery = (d: LmtpConnection.Delivery): PlainDelivery => ({
  recipients: d.recipients.map((r) => ({
    recipient: r.recipient,
    status: r.status,
    stage: r.stage,
    reply: r.reply === undefined ? undefined : reply(r.reply)
  })),
  delivered: record(d.delivered),
  refused: record(d.refused),
  unknown: [...d.unknown],
  interruption: d.interruption === undefined ? undefined : plainError(d.interruption)
})

/** The typed failure of an exit as plain data, `"success"` when it succeeded. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): unknown =>
  Exit.isFailure(exit) ? plainError(Option.getOrUndefined(Cause.failureOption(exit.cause))) : "success"

/** A reply as `plainError` encodes the replies inside `SmtpRecipientsRefused`. */
export const encoded = (code: number, text: string) => ({ code, lines: text.split("\n") })

/** `n` bytes of ASCII text in 80-byte CRLF lines (the last line shorter when needed), ending with CRLF. */
export const textOfSize = (n: number, seed = "x"): Uint8Array => {
  const out = new Uint8Array(n)
  let line = 0
  for (let i = 0; i < n;) {
    const left = n - i
    const len = Math.min(80, left)
    const letter = String.fromCharCode(97 + ((line + seed.charCodeAt(0)) % 26)).charCodeAt(0)
    for (let j = 0; j < len - 2; j++) out[i + j] = letter
    if (len >= 2) {
      out[i + len - 2] = 13
      out[i + len - 1] = 10
    } else out[i] = 10
    i += len
    line++
  }
  // a 1-byte last line would be a bare LF: make the tail CRLF in any case
  if (n >= 2) {
    out[n - 2] = 13
    out[n - 1] = 10
  }
  return out
}

/** The BDAT units a scripted server reads for `data` cut at `sizes` (the last one marked LAST). */
export const bdatUnits = (data: Uint8Array, sizes: ReadonlyArray<number>): ReadonlyArray<string> => {
  const units: Array<string> = []
  let offset = 0
  sizes.forEach((size, i) => {
    const piece = decoder.decode(data.subarray(offset, offset + size))
    offset += size
    units.push(`BDAT ${size}${i === sizes.length - 1 ? " LAST" : ""}\r\n${piece}`)
  })
  if (offset !== data.length) throw new Error(`bdatUnits: sizes add up to ${offset}, data has ${data.length} bytes`)
  return units
}

/** Parses a scripted BDAT unit back: its size, whether it is LAST, and its bytes as text. */
export const parseBdatUnit = (unit: string) => {
  const m = /^BDAT (\d+)( LAST)?\r\n/.exec(unit)
  if (m === null) return undefined
  return { size: Number(m[1]), last: m[2] !== undefined, data: unit.slice(m[0].length) }
}
