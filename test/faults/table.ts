/**
 * The fault matrix's table, shared by the scripted (in-memory, TestClock) and the socket runs:
 * the send paths, the stages each has, how a path sends (with a `gate` that keeps a message
 * Stream from outrunning a fault at the `body` / `chunk` stage), and the expected outcome of
 * every (path, stage, fault):
 *
 * - the end of data had been handed to the socket and no final reply came → `SmtpDeliveryUnknown`
 *   (classified "unknown"), its cause the failure (LMTP: those recipients `unknown` in the Delivery);
 * - otherwise close / reset / a 421 cut short → `SmtpServerDisconnected`, stall → `SmtpTimeout`,
 *   garbage → `SmtpProtocolError`, a 421 reply → the error of the command it answers; all
 *   "transient";
 * - Mailer: a transient failure is retried on a new connection and delivered once; an unknown one
 *   is not retried.
 */
import { Cause, Effect, Exit, Option, Schedule, type Scope, Stream } from "effect"
import { Mailer, type Message, SmtpClient, SmtpError, type SmtpTransport } from "../../src/index.js"
import type { LmtpConnection } from "../../src/index.js"
import type { FaultKind, Stage } from "./model.js"

export const FROM = "a@x.test"
export const TO: ReadonlyArray<string> = ["b@x.test", "c@x.test"]
export const MESSAGE_ID = "fault-matrix@x.test"

export type Api = "sendmail" | "sendMessage" | "lmtp" | "mailer"

export interface PathSpec {
  readonly name: string
  readonly server: { readonly pipelining: boolean; readonly chunking: boolean; readonly lmtp: boolean }
  readonly api: Api
  /** The stages this path goes through (a fault at each). */
  readonly stages: ReadonlyArray<Stage>
  /** The stages whose reply comes after the end of data was written (in the same flight or later). */
  readonly endWrittenAt: ReadonlyArray<Stage>
  /** At which stages the message is a Stream (cut by the gate); otherwise bytes in memory. */
  readonly streamAt: ReadonlyArray<Stage>
  /** A Stream cut into BDAT chunks (more than 512 KiB: two full chunks before LAST). */
  readonly bigStream: boolean
}

const dataStages: ReadonlyArray<Stage> = ["greeting", "ehlo", "mail", "rcpt", "data", "body", "end"]
const oneFlightStages: ReadonlyArray<Stage> = ["greeting", "ehlo", "mail", "rcpt", "end"]

const pipelined = { pipelining: true, chunking: false, lmtp: false }
const chunking = { pipelining: true, chunking: true, lmtp: false }

export const paths: ReadonlyArray<PathSpec> = [
  {
    name: "sendmail pipelined (DATA)",
    server: pipelined,
    api: "sendmail",
    stages: dataStages,
    endWrittenAt: ["end"],
    streamAt: ["body"],
    bigStream: false
  },
  {
    name: "sendmail unpipelined (DATA)",
    server: { pipelining: false, chunking: false, lmtp: false },
    api: "sendmail",
    stages: dataStages,
    endWrittenAt: ["end"],
    streamAt: ["body"],
    bigStream: false
  },
  {
    name: "sendMessage (pipelined DATA)",
    server: pipelined,
    api: "sendMessage",
    stages: dataStages,
    endWrittenAt: ["end"],
    streamAt: ["body"],
    bigStream: false
  },
  {
    // MAIL, RCPT, RCPT and BDAT n LAST with the message in the first write
    name: "sendmail BDAT one-flight",
    server: chunking,
    api: "sendmail",
    stages: oneFlightStages,
    endWrittenAt: ["mail", "rcpt", "end"],
    streamAt: [],
    bigStream: false
  },
  {
    // MAIL and RCPT first, then 256 KiB chunks (all pipelined), the last marked LAST
    name: "sendmail BDAT streamed",
    server: chunking,
    api: "sendmail",
    stages: ["greeting", "ehlo", "mail", "rcpt", "data", "body", "chunk", "end"],
    endWrittenAt: ["data", "end"],
    streamAt: ["greeting", "ehlo", "mail", "rcpt", "data", "body", "chunk", "end"],
    bigStream: true
  },
  {
    name: "LMTP (pipelined DATA)",
    server: { pipelining: true, chunking: false, lmtp: true },
    api: "lmtp",
    stages: [...dataStages, "between"],
    endWrittenAt: ["end", "between"],
    streamAt: ["body"],
    bigStream: false
  },
  {
    name: "LMTP BDAT one-flight",
    server: { pipelining: true, chunking: true, lmtp: true },
    api: "lmtp",
    stages: [...oneFlightStages, "between"],
    endWrittenAt: ["mail", "rcpt", "end", "between"],
    streamAt: [],
    bigStream: false
  },
  {
    name: "Mailer (pipelined DATA)",
    server: pipelined,
    api: "mailer",
    stages: dataStages,
    endWrittenAt: ["end"],
    streamAt: ["body"],
    bigStream: false
  },
  {
    name: "Mailer (BDAT one-flight)",
    server: chunking,
    api: "mailer",
    stages: oneFlightStages,
    endWrittenAt: ["mail", "rcpt", "end"],
    streamAt: [],
    bigStream: false
  }
]

export const faultKinds: ReadonlyArray<FaultKind> = ["close", "reset", "stall", "garbage", "421", "421-cut"]

// ---------------------------------------------------------------------------------------------
// messages

const encoder = new TextEncoder()
const utf8 = (s: string) => encoder.encode(s)

export const headerText = (id: string) =>
  `From: ${FROM}\r\nTo: ${TO.join(", ")}\r\nSubject: fault matrix\r\nMessage-ID: <${id}>\r\n\r\n`

export const stringMessage = (id: string) => `${headerText(id)}hello\r\n`

/** `n` bytes of 80-byte CRLF lines. */
export const filler = (n: number): Uint8Array => {
  const out = new Uint8Array(n).fill(120)
  for (let i = 78; i + 1 < n; i += 80) {
    out[i] = 13
    out[i + 1] = 10
  }
  if (n >= 2) {
    out[n - 2] = 13
    out[n - 1] = 10
  }
  return out
}

const KIB256 = 256 * 1024
/** 64 KiB of text, the unit of a long tail (the same bytes again and again: nothing is held). */
const BLOCK = filler(64 * 1024)

/**
 * A message Stream in parts, with `gate` between the first and the rest. Small: two short parts
 * (DATA writes the first before the gate), or, with `first` empty, the gate and one part. Big: the first part a little over 256 KiB (one full
 * BDAT chunk goes out before the gate), then another 256 KiB (a second non-last chunk), then a
 * short tail (LAST). `tailBytes` (a multiple of 64 KiB) more are inserted after the gate,
 * produced lazily: over real sockets, enough to fill the socket buffers of a server that stopped
 * reading, so that a write blocks before the end of data.
 */
export const streamBody = (
  first: string,
  gate: Effect.Effect<void>,
  big: boolean,
  tailBytes = 0
): Stream.Stream<Uint8Array> => {
  // `first` empty (sendMessage: the header section comes first, from the Message): the gate first
  const parts = big ?
    [utf8(first), filler(KIB256 + 64 - first.length)] :
    first === ""
    ? []
    : [utf8(`${first}first part\r\n`)]
  const rest = big ? [filler(KIB256), utf8("the end\r\n")] : [utf8("second part\r\n")]
  return Stream.fromIterable(parts).pipe(
    Stream.concat(Stream.drain(Stream.fromEffect(gate))),
    Stream.concat(
      tailBytes === 0 ? Stream.empty : Stream.repeatValue(BLOCK).pipe(Stream.take(tailBytes / BLOCK.length))
    ),
    Stream.concat(Stream.fromIterable(rest))
  )
}

const headerList = (id: string): ReadonlyArray<Message.Header> => [
  { name: "From", value: FROM },
  { name: "To", value: TO.join(", ") },
  { name: "Subject", value: "fault matrix" },
  { name: "Message-ID", value: `<${id}>` }
]

// ---------------------------------------------------------------------------------------------
// sending

/** What a send came to: the exit of the operation, and whether its session was closed after it. */
export interface Outcome {
  readonly exit: Exit.Exit<unknown, unknown>
  /** `undefined` when there was no session (connect failed) or no access to it (Mailer). */
  readonly sessionClosed: boolean | undefined
}

export interface SendSettings {
  readonly connect: SmtpClient.Options
  /** Held between the parts of a message Stream (see `streamBody`). */
  readonly gate: Effect.Effect<void>
  /** Mailer's retry schedule (attempts after the first). */
  readonly retries: number
  /** Bytes of message inserted after the gate (see `streamBody`). */
  readonly tailBytes?: number | undefined
}

const withSession = <S extends { readonly isClosed: Effect.Effect<boolean> }, E>(
  connect: Effect.Effect<S, E, SmtpTransport.SmtpTransport | Scope.Scope>,
  f: (session: S) => Effect.Effect<unknown, unknown>
): Effect.Effect<Outcome, never, SmtpTransport.SmtpTransport> =>
  Effect.scoped(Effect.gen(function*() {
    const session = yield* connect
    const exit = yield* Effect.exit(f(session))
    return { exit, sessionClosed: yield* session.isClosed } satisfies Outcome
  })).pipe(Effect.catchAll((error) => Effect.succeed({ exit: Exit.fail(error), sessionClosed: undefined })))

/** Sends the matrix's message on `path` with the message shape its `stage` needs. */
export const send = (
  path: PathSpec,
  stage: Stage,
  settings: SendSettings,
  id = MESSAGE_ID
): Effect.Effect<Outcome, never, SmtpTransport.SmtpTransport> => {
  const streamed = path.streamAt.includes(stage)
  const body = (): string | Stream.Stream<Uint8Array> =>
    streamed ? streamBody(headerText(id), settings.gate, path.bigStream, settings.tailBytes) : stringMessage(id)
  switch (path.api) {
    case "sendmail":
      return withSession(SmtpClient.connect(settings.connect), (smtp) => smtp.sendmail(FROM, TO, body()))
    case "sendMessage": {
      const message: Message.Message = {
        headers: headerList(id),
        body: streamed ? streamBody("", settings.gate, false, settings.tailBytes) : utf8("hello\r\n")
      }
      return withSession(SmtpClient.connect(settings.connect), (smtp) => smtp.sendMessage(message))
    }
    case "lmtp":
      return withSession(
        SmtpClient.connect({ ...settings.connect, protocol: "lmtp" }),
        (lmtp: LmtpConnection.Service) => lmtp.sendmail(FROM, TO, body())
      )
    case "mailer":
      return Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({
          ...settings.connect,
          maxConnections: 1,
          retry: Schedule.recurs(settings.retries)
        })
        // a Stream message is run again for each attempt: `body()` is one Stream, re-run
        const exit = yield* Effect.exit(mailer.sendmail(FROM, TO, body()))
        return { exit, sessionClosed: undefined } satisfies Outcome
      }))
  }
}

// ---------------------------------------------------------------------------------------------
// expectations

export type Disposition = SmtpError.Disposition

export interface ExpectedError {
  readonly tag: SmtpError.SmtpError["_tag"]
  /** For SmtpDeliveryUnknown: the tag of its cause. */
  readonly cause?: SmtpError.SmtpError["_tag"]
  /** The reply code the error carries (for SmtpRecipientsRefused: that of the first recipient). */
  readonly code?: number
  readonly disposition: Disposition
}

export type Expected =
  | { readonly _tag: "failure"; readonly error: ExpectedError }
  | {
    readonly _tag: "delivery"
    readonly delivered: ReadonlyArray<string>
    readonly refused: Readonly<Record<string, number>>
    readonly unknown: ReadonlyArray<string>
    readonly interruption: ExpectedError | undefined
  }
  /** Mailer: delivered on a later attempt, over a new connection */
  | { readonly _tag: "retried" }

/** The failure a fault makes by itself (no reply). */
const faultError = (kind: FaultKind): SmtpError.SmtpError["_tag"] =>
  kind === "stall" ? "SmtpTimeout" : kind === "garbage" ? "SmtpProtocolError" : "SmtpServerDisconnected"

const transient = (tag: SmtpError.SmtpError["_tag"], code?: number): ExpectedError => ({
  tag,
  ...(code === undefined ? {} : { code }),
  disposition: "transient"
})
const unknownAfter = (kind: FaultKind): ExpectedError => ({
  tag: "SmtpDeliveryUnknown",
  cause: faultError(kind),
  disposition: "unknown"
})

/** The error of a complete 421 reply at `stage` (before any final reply). */
const reply421 = (stage: Stage): ExpectedError => {
  switch (stage) {
    case "greeting":
      return transient("SmtpConnectError", 421)
    case "ehlo":
      return transient("SmtpHeloError", 421)
    case "mail":
      return transient("SmtpSenderRefused", 421)
    case "rcpt":
      return transient("SmtpRecipientsRefused", 421)
    case "chunk":
      // the first chunk was answered: the 421 answers nothing, it only closes the connection
      return transient("SmtpServerDisconnected")
    default:
      return transient("SmtpDataError", 421)
  }
}

/** What sending on `path` comes to when the server faults with `kind` at `stage`. */
export const expected = (path: PathSpec, stage: Stage, kind: FaultKind): Expected => {
  const direct = expectedSession(path, stage, kind)
  if (path.api !== "mailer" || direct._tag !== "failure") return direct
  return direct.error.disposition === "transient" ? { _tag: "retried" } : direct
}

const expectedSession = (path: PathSpec, stage: Stage, kind: FaultKind): Expected => {
  const [b, c] = TO
  if (path.api === "lmtp" && (stage === "end" || stage === "between")) {
    // one reply per recipient after the data: those that never came are unknown
    const delivered = stage === "between" ? [b] : []
    const first = stage === "between" ? c : b
    if (kind === "421") {
      // a 421 answers one recipient (refused) and closes: the recipients after it are unknown
      return {
        _tag: "delivery",
        delivered,
        refused: { [first]: 421 },
        unknown: stage === "end" ? [c] : [],
        interruption: stage === "end" ? unknownAfter("close") : undefined
      }
    }
    return {
      _tag: "delivery",
      delivered,
      refused: {},
      unknown: stage === "end" ? [b, c] : [c],
      interruption: unknownAfter(kind)
    }
  }
  if (kind === "421") return { _tag: "failure", error: reply421(stage) }
  if (path.endWrittenAt.includes(stage)) return { _tag: "failure", error: unknownAfter(kind) }
  return { _tag: "failure", error: transient(faultError(kind)) }
}

export const describeExpected = (e: Expected): string => {
  const error = (x: ExpectedError) =>
    `${x.tag}${x.cause === undefined ? "" : `(${x.cause})`}${
      x.code === undefined ? "" : ` ${x.code}`
    } → ${x.disposition}`
  switch (e._tag) {
    case "failure":
      return error(e.error)
    case "retried":
      return "transient: retried and delivered once"
    case "delivery":
      return `Delivery delivered=[${e.delivered.join(",")}] refused=${JSON.stringify(e.refused)} unknown=[${
        e.unknown.join(",")
      }]${e.interruption === undefined ? "" : ` interruption ${error(e.interruption)}`}`
  }
}

// ---------------------------------------------------------------------------------------------
// checking

const failureOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) ?? Cause.pretty(exit.cause) : undefined

const describeError = (error: unknown): string => {
  if (!SmtpError.isSmtpError(error)) return `not an SmtpError: ${String(error)}`
  const cause = error._tag === "SmtpDeliveryUnknown" && SmtpError.isSmtpError(error.cause) ?
    `(${error.cause._tag})` :
    ""
  return `${error._tag}${cause} → ${SmtpError.classify(error)}: ${error.message}`
}

/** Differences between an error and its expectation (empty when it matches). */
export const checkError = (error: unknown, want: ExpectedError): ReadonlyArray<string> => {
  if (!SmtpError.isSmtpError(error)) return [`expected ${want.tag}, got ${describeError(error)}`]
  const problems: Array<string> = []
  if (error._tag !== want.tag) problems.push(`expected ${want.tag}, got ${describeError(error)}`)
  const disposition = SmtpError.classify(error)
  if (disposition !== want.disposition) {
    problems.push(`expected classify "${want.disposition}", got "${disposition}" (${describeError(error)})`)
  }
  if (want.cause !== undefined) {
    const cause = error._tag === "SmtpDeliveryUnknown" ? error.cause : undefined
    const tag = SmtpError.isSmtpError(cause) ? cause._tag : String(cause)
    if (tag !== want.cause) problems.push(`expected the cause ${want.cause}, got ${tag}`)
  }
  if (want.code !== undefined) {
    const code = error._tag === "SmtpRecipientsRefused" ?
      Object.values(error.recipients)[0]?.code :
      "code" in error ?
      error.code :
      undefined
    if (code !== want.code) problems.push(`expected code ${want.code}, got ${String(code)} (${describeError(error)})`)
  }
  return problems
}

/** Differences between a send's outcome and the expectation (Mailer's retry is checked by the caller). */
export const checkOutcome = (outcome: Outcome, want: Expected): ReadonlyArray<string> => {
  const { exit } = outcome
  switch (want._tag) {
    case "failure":
      return Exit.isSuccess(exit) ?
        [`expected ${want.error.tag}, but the send succeeded: ${JSON.stringify(exit.value)}`] :
        checkError(failureOf(exit), want.error)
    case "retried":
      return Exit.isSuccess(exit) ? [] : [`expected a retry and a success, got ${describeError(failureOf(exit))}`]
    case "delivery": {
      if (Exit.isFailure(exit)) return [`expected a Delivery, got ${describeError(failureOf(exit))}`]
      const delivery = exit.value as LmtpConnection.Delivery
      const problems: Array<string> = []
      const same = (what: string, got: unknown, wanted: unknown) => {
        if (JSON.stringify(got) !== JSON.stringify(wanted)) {
          problems.push(`${what}: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(got)}`)
        }
      }
      same("delivered", Object.keys(delivery.delivered), want.delivered)
      same(
        "refused",
        Object.fromEntries(Object.entries(delivery.refused).map(([k, v]) => [k, v.code])),
        want.refused
      )
      same("unknown", delivery.unknown, want.unknown)
      if (want.interruption === undefined) {
        if (delivery.interruption !== undefined) {
          problems.push(`expected no interruption, got ${describeError(delivery.interruption)}`)
        }
      } else {
        problems.push(...checkError(delivery.interruption, want.interruption).map((p) => `interruption: ${p}`))
      }
      return problems
    }
  }
}
