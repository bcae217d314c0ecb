/**
 * An in-memory SMTP transport that plays a scripted server and records every byte the client
 * writes: the test layer for the exact bytes of a conversation, and for the fault cases of this
 * library's own tests. (To test code that sends mail, `TestMailer` and `TestTransport` are simpler.)
 *
 * A unit that does not match its step's `expect` is answered
 * `500 5.5.2 scripted server: expected …` instead of the step's reply. A script that did not
 * match, was not played to its end or was never connected is a defect (`ScriptMismatch`, showing
 * the expected and actual lines), so a test that diverges from its script fails:
 *
 * - when `make` ran in a Scope (`it.scoped`), when that Scope closes;
 * - otherwise when the Scope of `layer` closes (the last one, when it is provided more than once),
 *   and for a connection that outlives it, when the connection closes.
 *
 * `strict: false` on a script turns the check off for it (faults that leave a script unfinished
 * on purpose).
 *
 * ```ts
 * const server = yield* ScriptedTransport.make({
 *   steps: [
 *     { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" },
 *     { expect: "MAIL FROM:<a@x.test>", reply: "250 OK" },
 *     ...
 *   ]
 * })
 * yield* program.pipe(Effect.provide(server.layer))
 * assert.strictEqual(yield* server.written(0), "EHLO client.test\r\nMAIL FROM:<a@x.test>\r\n...")
 * ```
 *
 * @since 0.1.0
 */
import type * as Socket from "@effect/platform/Socket"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import { concatBytes } from "../internal/bytes.js"
import * as MemorySocket from "../internal/memorySocket.js"
import { SmtpConnectError, SmtpTlsError, type TlsFailureReason } from "../SmtpError.js"
import * as SmtpTransport from "../SmtpTransport.js"

/**
 * What the server sends: a string is one chunk and gets CRLF appended when it does not end with
 * LF; an array is sent exactly as given, one socket chunk per element (for split and merged
 * replies).
 *
 * @since 0.1.0
 * @category models
 */
export type Reply = string | ReadonlyArray<string | Uint8Array>

/**
 * One step of the script: answers one unit from the client, a command line (without CRLF) or a
 * whole block of message data (after a 354 reply, terminator included; after `BDAT n`, the line
 * and its n bytes).
 *
 * @since 0.1.0
 * @category models
 */
export interface Step {
  /**
   * What the client must send. A mismatch is recorded and answered
   * `500 5.5.2 scripted server: expected …` instead of this step's reply (and its `close` and
   * `tls` do not apply).
   */
  readonly expect?: string | RegExp | undefined
  /** The reply; none means the server stays silent (a stall). */
  readonly reply?: Reply | undefined
  /** Close the connection after the reply. */
  readonly close?: boolean | undefined
  /** After the reply the client is expected to start TLS (STARTTLS); `fail` makes the handshake fail. */
  readonly tls?: true | { readonly fail: TlsFailureReason } | undefined
}

/**
 * One scripted connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Script {
  /** Default `"220 mx.test ESMTP scripted"`. */
  readonly greeting?: Reply | undefined
  readonly steps: ReadonlyArray<Step>
  /** Refuse the connection, as a closed port would. */
  readonly refuse?: boolean | undefined
  /** Implicit TLS on connect fails with this reason. */
  readonly tlsFailure?: TlsFailureReason | undefined
  /**
   * Whether a divergence from this script is a defect (`ScriptMismatch`): a mismatch, a unit
   * beyond its end, steps not played, or no connection at all. Default `true`; `false` for
   * scripts left unfinished on purpose (then read `mismatches()` and `remaining()` yourself).
   *
   * @since 0.2.0
   */
  readonly strict?: boolean | undefined
}

/**
 * The defect of a strict script that did not go as scripted: `message` shows, for each
 * connection, the expected and actual lines and the steps not played.
 *
 * @since 0.2.0
 * @category errors
 */
export class ScriptMismatch extends Data.TaggedError("ScriptMismatch")<{
  /** One line or more per divergence. */
  readonly problems: ReadonlyArray<string>
}> {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `The SMTP conversation did not go as scripted:\n${this.problems.join("\n")}`
  }
}

/**
 * What a scripted connection saw.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionRecord {
  /** Everything the client wrote, in order. */
  readonly bytes: () => Uint8Array
  /** The same decoded as UTF-8. */
  readonly written: () => string
  /** Each unit the server read: command lines (no CRLF) and data blocks. */
  readonly units: () => ReadonlyArray<string>
  /** Expectations that did not hold and units beyond the script. */
  readonly mismatches: () => ReadonlyArray<string>
  /** Steps not reached. */
  readonly remaining: () => number
  /** Whether the client closed its side. */
  readonly clientClosed: () => boolean
  /** Whether the connection is encrypted (implicit TLS or after STARTTLS). */
  readonly secure: () => boolean
  /** The options of each TLS handshake. */
  readonly tlsOptions: () => ReadonlyArray<SmtpTransport.TlsOptions>
  /** The options the client connected with. */
  readonly connectOptions: SmtpTransport.ConnectOptions
  /**
   * The server closes the connection now, whatever the script says next (a server dropping an
   * idle connection).
   *
   * @since 0.2.0
   */
  readonly hangUp: () => void
}

/**
 * The scripted transport and what it recorded.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScriptedTransport {
  /**
   * The transport. Unless `make` ran in a Scope, when the last Scope holding it closes the strict
   * scripts that diverged or were never connected are a `ScriptMismatch` defect.
   */
  readonly layer: Layer.Layer<SmtpTransport.SmtpTransport>
  /** The transport service, without the check of `layer` (each connection is checked when it closes). */
  readonly service: SmtpTransport.Service
  /** Connection `i` (in connect order); throws if there was none. */
  readonly connection: (i: number) => ConnectionRecord
  readonly connections: () => ReadonlyArray<ConnectionRecord>
  /** What the client wrote on connection `i`. */
  readonly written: (i?: number) => string
  /**
   * Every divergence from the strict scripts so far, as `ScriptMismatch` shows them (connections
   * still open count with the steps they have not played yet).
   *
   * @since 0.2.0
   */
  readonly problems: () => ReadonlyArray<string>
  /**
   * Dies with `ScriptMismatch` now if a strict script diverged or is unfinished.
   *
   * @since 0.2.0
   */
  readonly assertPlayed: Effect.Effect<void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const toChunks = (reply: Reply): ReadonlyArray<Uint8Array> =>
  typeof reply === "string" ?
    [encoder.encode(reply.endsWith("\n") ? reply : `${reply}\r\n`)] :
    reply.map((c) => (typeof c === "string" ? encoder.encode(c) : c))

const endsWith = (buffer: Uint8Array, tail: string) => {
  if (buffer.length < tail.length) return false
  for (let i = 0; i < tail.length; i++) {
    if (buffer[buffer.length - tail.length + i] !== tail.charCodeAt(i)) return false
  }
  return true
}

type Event = Uint8Array | "close"

/** A unit or an expectation as a diagnostic shows it: JSON-quoted (CR and LF visible), long ones cut. */
const show = (value: string | RegExp | undefined, max = 300): string => {
  if (value === undefined) return "(anything)"
  if (value instanceof RegExp) return String(value)
  const quoted = JSON.stringify(value)
  return quoted.length <= max ? quoted : `${quoted.slice(0, max)}…" (${value.length} characters)`
}

class ServerSession implements ConnectionRecord {
  private all: Array<Uint8Array> = []
  private readonly unitLog: Array<string> = []
  private readonly mismatchLog: Array<string> = []
  private readonly problemLog: Array<string> = []
  /** Whether its divergence was reported as a defect already. */
  reported = false
  private pending: Uint8Array = new Uint8Array(0)
  private mode: { readonly _tag: "command" } | { readonly _tag: "data" } | {
    readonly _tag: "bdat"
    need: number
    line: string
  } = {
    _tag: "command"
  }
  private next = 0
  closed = false
  private closedByClient = false
  isSecure: boolean
  awaitingTls: Step["tls"] = undefined
  private readonly tlsLog: Array<SmtpTransport.TlsOptions> = []

  constructor(
    readonly index: number,
    readonly script: Script,
    readonly outbox: Queue.Queue<Event>,
    readonly connectOptions: SmtpTransport.ConnectOptions
  ) {
    this.isSecure = connectOptions.tls !== undefined
    if (connectOptions.tls !== undefined) this.tlsLog.push(connectOptions.tls)
  }

  bytes = () => {
    const total = this.all.reduce((n, c) => n + c.length, 0)
    const out = new Uint8Array(total)
    let o = 0
    for (const c of this.all) {
      out.set(c, o)
      o += c.length
    }
    return out
  }
  written = () => decoder.decode(this.bytes())
  units = () => this.unitLog.slice()
  mismatches = () => this.mismatchLog.slice()
  remaining = () => this.script.steps.length - this.next
  clientClosed = () => this.closedByClient
  secure = () => this.isSecure
  tlsOptions = () => this.tlsLog.slice()
  hangUp = () => this.close()

  /** The divergences of this connection from its script, empty when it matched and was played to its end. */
  problems(): ReadonlyArray<string> {
    const lines = this.problemLog.slice()
    const steps = this.script.steps
    if (this.next < steps.length) {
      const shown = steps.slice(this.next, this.next + 5).map((step, i) =>
        `step ${this.next + i + 1} ${show(step.expect, 80)}`
      )
      if (steps.length - this.next > 5) shown.push("…")
      lines.push(`  not played (${steps.length - this.next} of ${steps.length} steps): ${shown.join(", ")}`)
    }
    return lines.length === 0 ? [] : [`connection ${this.index}:`, ...lines]
  }

  start() {
    this.send(this.script.greeting ?? "220 mx.test ESMTP scripted")
  }

  recordTls(options: SmtpTransport.TlsOptions) {
    this.tlsLog.push(options)
    this.isSecure = true
  }

  send(reply: Reply) {
    for (const chunk of toChunks(reply)) Queue.unsafeOffer(this.outbox, chunk)
  }

  close() {
    if (this.closed) return
    this.closed = true
    Queue.unsafeOffer(this.outbox, "close")
  }

  clientEnd() {
    this.closedByClient = true
    this.close()
  }

  receive(chunk: Uint8Array) {
    this.all.push(chunk.slice())
    this.pending = concatBytes([this.pending, chunk])
    for (;;) {
      if (this.closed) return
      if (this.mode._tag === "command") {
        const lf = this.pending.indexOf(10)
        if (lf === -1) return
        const line = decoder.decode(this.pending.subarray(0, lf + 1))
        this.pending = this.pending.slice(lf + 1)
        const text = line.replace(/\r?\n$/, "")
        const bdat = /^BDAT (\d+)( LAST)?$/i.exec(text)
        if (bdat !== null) {
          this.mode = { _tag: "bdat", need: Number(bdat[1]), line: text }
          continue
        }
        this.unit(text)
      } else if (this.mode._tag === "data") {
        const end = this.pending.length === 3 && endsWith(this.pending, ".\r\n") ? 3 : this.findDataEnd()
        if (end === -1) return
        const data = decoder.decode(this.pending.subarray(0, end))
        this.pending = this.pending.slice(end)
        this.mode = { _tag: "command" }
        this.unit(data)
      } else {
        if (this.pending.length < this.mode.need) return
        const data = decoder.decode(this.pending.subarray(0, this.mode.need))
        this.pending = this.pending.slice(this.mode.need)
        const line = this.mode.line
        this.mode = { _tag: "command" }
        this.unit(`${line}\r\n${data}`)
      }
    }
  }

  private findDataEnd(): number {
    if (this.pending.length >= 3 && this.pending[0] === 46 && this.pending[1] === 13 && this.pending[2] === 10) return 3
    const marker = [13, 10, 46, 13, 10]
    outer: for (let i = 0; i + 5 <= this.pending.length; i++) {
      for (let j = 0; j < 5; j++) if (this.pending[i + j] !== marker[j]) continue outer
      return i + 5
    }
    return -1
  }

  private unit(text: string) {
    this.unitLog.push(text)
    const step = this.script.steps[this.next]
    if (step === undefined) {
      this.mismatchLog.push(`unexpected ${JSON.stringify(text)} after the end of the script`)
      this.problemLog.push(`  after the end of the script: ${show(text)}`)
      this.send("500 5.5.0 unexpected command (end of script)")
      return
    }
    this.next++
    const ok = step.expect === undefined ||
      (typeof step.expect === "string" ? step.expect === text : step.expect.test(text))
    if (!ok) {
      this.mismatchLog.push(
        `step ${this.next}: expected ${String(JSON.stringify(step.expect))}, got ${JSON.stringify(text)}`
      )
      const label = `step ${this.next}:`
      this.problemLog.push(
        `  ${label} expected ${show(step.expect)}\n  ${" ".repeat(label.length + 3)}actual ${show(text)}`
      )
      // one line, whatever the expectation holds
      this.send(`500 5.5.2 scripted server: expected ${show(step.expect, 200)}`)
      return
    }
    if (step.reply !== undefined) {
      this.send(step.reply)
      // the whole reply, however it is split into chunks, decides whether message data follows
      const text = typeof step.reply === "string"
        ? step.reply
        : toChunks(step.reply).map((c) => decoder.decode(c)).join("")
      if (text.startsWith("354")) this.mode = { _tag: "data" }
    }
    if (step.tls !== undefined) this.awaitingTls = step.tls
    if (step.close === true) this.close()
  }
}

const makeSocket = (session: ServerSession): Socket.Socket =>
  MemorySocket.make(session.outbox, {
    isClosed: () => session.closed,
    receive: (chunk) => session.receive(chunk),
    clientEnd: () => session.clientEnd()
  })

const makeConnection = (session: ServerSession): SmtpTransport.Connection => ({
  socket: makeSocket(session),
  secure: session.isSecure,
  close: Effect.sync(() => session.clientEnd()),
  upgradeTls: (options) =>
    Effect.gen(function*() {
      const expected = session.awaitingTls
      session.awaitingTls = undefined
      if (expected === undefined) {
        return yield* new SmtpTlsError({
          reason: "protocol",
          detail: "the scripted server did not expect a TLS handshake"
        })
      }
      if (!(yield* Queue.isEmpty(session.outbox))) {
        return yield* new SmtpTlsError({
          reason: "protocol",
          detail: "plaintext bytes arrived before the TLS handshake (the handshake would read them as TLS records)"
        })
      }
      if (expected !== true) {
        session.close()
        return yield* new SmtpTlsError({
          reason: expected.fail,
          detail: `scripted handshake failure: ${expected.fail}`
        })
      }
      session.recordTls(options)
      return makeConnection(session)
    })
})

/**
 * Builds a scripted transport; connection `i` plays `scripts[i]`, and a connection beyond the
 * last script is refused.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (...scripts: ReadonlyArray<Script>): Effect.Effect<ScriptedTransport> =>
  Effect.gen(function*() {
    const sessions: Array<ServerSession> = []
    const isStrict = (script: Script) => script.strict !== false
    /**
     * The divergences of the strict scripts not reported yet: every connection's (`all`) or only
     * the closed ones', and the scripts never connected.
     */
    const problems = (all: boolean, markReported: boolean): ReadonlyArray<string> => {
      const out: Array<string> = []
      scripts.forEach((script, i) => {
        if (!isStrict(script)) return
        const session = sessions[i]
        if (session === undefined) {
          out.push(`script ${i}: never connected (${script.steps.length} steps)`)
          return
        }
        if (session.reported || (!all && !session.closed)) return
        const lines = session.problems()
        if (lines.length > 0 && markReported) session.reported = true
        out.push(...lines)
      })
      return out
    }
    const dieIf = (lines: ReadonlyArray<string>): Effect.Effect<void> =>
      lines.length === 0 ? Effect.void : Effect.die(new ScriptMismatch({ problems: lines }))
    // In a Scope (it.scoped), everything is checked when it closes. Otherwise a connection is
    // checked when it closes, unless `layer` is held then (a pool closes its connections in fibers
    // of its own, where a defect would go unseen): the release of `layer` checks it.
    const outer = yield* Effect.serviceOption(Scope.Scope)
    if (Option.isSome(outer)) {
      yield* Scope.addFinalizer(outer.value, Effect.suspend(() => dieIf(problems(true, true))))
    }
    let holders = 0
    const closed = (session: ServerSession): Effect.Effect<void> =>
      Effect.suspend(() => {
        session.clientEnd()
        if (Option.isSome(outer) || holders > 0 || !isStrict(session.script) || session.reported) return Effect.void
        const lines = session.problems()
        if (lines.length > 0) session.reported = true
        return dieIf(lines)
      })
    const service: SmtpTransport.Service = {
      localHostname: Effect.succeed("client.test"),
      connect: (options) =>
        Effect.gen(function*() {
          const address = options.path ?? `${options.host}:${options.port}`
          const index = sessions.length
          const script = scripts[index]
          if (script === undefined || script.refuse === true) {
            if (script !== undefined) {
              const session = new ServerSession(index, script, yield* Queue.unbounded<Event>(), options)
              session.closed = true
              sessions.push(session)
            }
            return yield* new SmtpConnectError({ address, cause: new Error("ECONNREFUSED (scripted)") })
          }
          const outbox = yield* Queue.unbounded<Event>()
          const session = new ServerSession(index, script, outbox, options)
          sessions.push(session)
          if (options.tls !== undefined && script.tlsFailure !== undefined) {
            session.closed = true
            return yield* new SmtpTlsError({
              reason: script.tlsFailure,
              detail: `scripted handshake failure: ${script.tlsFailure}`
            })
          }
          yield* Effect.addFinalizer(() => closed(session))
          session.start()
          return makeConnection(session)
        })
    }
    const layer = Layer.scoped(
      SmtpTransport.SmtpTransport,
      Effect.acquireRelease(
        Effect.sync(() => {
          holders++
          return service
        }),
        () =>
          Effect.suspend(() => {
            holders--
            return holders > 0 || Option.isSome(outer) ? Effect.void : dieIf(problems(false, true))
          })
      )
    )
    const connection = (i: number) => {
      const s = sessions[i]
      if (s === undefined) throw new Error(`no scripted connection ${i} (there were ${sessions.length})`)
      return s
    }
    return {
      service,
      layer,
      connection,
      connections: () => sessions.slice(),
      written: (i = 0) => connection(i).written(),
      problems: () => problems(true, false),
      assertPlayed: Effect.suspend(() => dieIf(problems(true, false)))
    }
  })
