/**
 * Helpers for the session tests: a wire recorder around the scripted transport (which client
 * writes went out together, before which server chunks), a hold on server chunks, error and reply
 * projections for exact comparison, a real-time hang guard and a log capture.
 */
import { Socket } from "@effect/platform"
import { Effect, Exit, Layer, Logger, LogLevel, Option, Schema } from "effect"
import type { Scope } from "effect"
import { SmtpError, type SmtpReply, SmtpTransport } from "../../src/index.js"
import { ScriptedTransport } from "../../src/testing/index.js"

/**
 * How every test connects: plain SMTP as smtplib's `SMTP` (no STARTTLS negotiation at connect,
 * so the first EHLO is the one the session operation sends).
 */
export const connectOptions = { host: "mx.test", security: "none" } as const

export type Mode = "pipelined" | "unpipelined"
export const modes: ReadonlyArray<Mode> = ["pipelined", "unpipelined"]

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** The EHLO reply of the scripted server: PIPELINING in pipelined mode, then `features`. */
export const ehloReply = (mode: Mode, features: ReadonlyArray<string> = []): string => {
  const lines = ["mx.test greets client.test", ...(mode === "pipelined" ? ["PIPELINING"] : []), ...features]
  return lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}`).join("\r\n")
}

/** One event on the wire as the client saw it: a write of its own, or a chunk handed to its reader. */
export interface WireEvent {
  readonly dir: "C" | "S"
  readonly text: string
}

export interface Server {
  readonly scripted: ScriptedTransport.ScriptedTransport
  readonly layer: Layer.Layer<SmtpTransport.SmtpTransport>
  /** What the client wrote on connection `i`. */
  readonly written: (i?: number) => string
  /** The bytes the client wrote on connection `i`. */
  readonly bytes: (i?: number) => Uint8Array
  readonly connection: (i: number) => ScriptedTransport.ConnectionRecord
  /** Client writes and server chunks (as delivered to the client's reader), in order. */
  readonly events: () => ReadonlyArray<WireEvent>
  /**
   * The client's flights: the bytes it wrote between two server chunks it received. Without
   * pipelining every command is its own flight.
   */
  readonly flights: () => ReadonlyArray<string>
  /** Holds the first server chunk matching `predicate` (and all after it) until `release`. */
  readonly hold: (predicate: (chunk: string) => boolean) => Effect.Effect<void>
  readonly release: Effect.Effect<void>
  /** Whether a chunk is being held back now. */
  readonly holding: () => boolean
}

/** A scripted server whose connections are recorded on the wire. */
export const makeServer = (...scripts: ReadonlyArray<ScriptedTransport.Script>): Effect.Effect<Server> =>
  makeServerWith({}, ...scripts)

/**
 * `makeServer`, with `syncWrite`: the connection also has `write`, which hands the bytes over when
 * called (as `NodeSmtpTransport`'s): the engine's synchronous paths (a whole pipelined DATA
 * transaction in one `Effect.async`) instead of the Socket writer's.
 */
export const makeServerWith = (
  options: { readonly syncWrite?: boolean },
  ...scripts: ReadonlyArray<ScriptedTransport.Script>
): Effect.Effect<Server> =>
  Effect.gen(function*() {
    const scripted = yield* ScriptedTransport.make(...scripts)
    const events: Array<WireEvent> = []
    let predicate: ((chunk: string) => boolean) | undefined
    let latch: Effect.Latch | undefined
    let held = false

    const deliver = <A>(chunk: Uint8Array | string, handle: () => A): Effect.Effect<void> =>
      Effect.suspend(() => {
        const text = typeof chunk === "string" ? chunk : decoder.decode(chunk)
        const run = Effect.suspend(() => {
          events.push({ dir: "S", text })
          const result = handle()
          return Effect.isEffect(result) ? Effect.asVoid(result as Effect.Effect<unknown>) : Effect.void
        })
        if (latch !== undefined && (held || (predicate !== undefined && predicate(text)))) {
          held = true
          return Effect.zipRight(latch.await, run)
        }
        return run
      })

    const wrapSocket = (socket: Socket.Socket): Socket.Socket =>
      Socket.Socket.of({
        [Socket.TypeId]: Socket.TypeId,
        run: (handler, options) => socket.run((chunk) => deliver(chunk, () => handler(chunk)), options) as any,
        runRaw: (handler, options) => socket.runRaw((chunk) => deliver(chunk, () => handler(chunk)), options) as any,
        writer: Effect.map(socket.writer, (write) => (chunk: Uint8Array | string | Socket.CloseEvent) => {
          if (!Socket.isCloseEvent(chunk)) {
            events.push({ dir: "C", text: typeof chunk === "string" ? chunk : decoder.decode(chunk) })
          }
          return write(chunk)
        })
      })

    const wrapConnection = (connection: SmtpTransport.Connection): Effect.Effect<SmtpTransport.Connection> => {
      const socket = wrapSocket(connection.socket)
      const wrapped = {
        socket,
        secure: connection.secure,
        close: connection.close,
        upgradeTls: (tls: SmtpTransport.TlsOptions) => Effect.flatMap(connection.upgradeTls(tls), wrapConnection)
      }
      if (options.syncWrite !== true) return Effect.succeed(wrapped)
      // the scripted writer's Effect, run at once
      return Effect.map(Effect.scoped(socket.writer), (write) => ({
        ...wrapped,
        write: (bytes: Uint8Array) => {
          const exit = Effect.runSyncExit(write(bytes))
          return Exit.isSuccess(exit) ? Effect.void : Effect.failCause(exit.cause)
        }
      }))
    }

    const service: SmtpTransport.SmtpTransport["Type"] = {
      localHostname: scripted.service.localHostname,
      connect: (options): Effect.Effect<
        SmtpTransport.Connection,
        SmtpError.SmtpConnectError | SmtpError.SmtpTimeout | SmtpError.SmtpTlsError,
        Scope.Scope
      > => Effect.flatMap(scripted.service.connect(options), wrapConnection)
    }

    const flights = () => {
      const out: Array<string> = []
      let current: string | undefined
      for (const e of events) {
        if (e.dir === "C") current = (current ?? "") + e.text
        else if (current !== undefined) {
          out.push(current)
          current = undefined
        }
      }
      if (current !== undefined) out.push(current)
      return out
    }

    return {
      scripted,
      layer: Layer.succeed(SmtpTransport.SmtpTransport, service),
      written: (i = 0) => scripted.written(i),
      bytes: (i = 0) => scripted.connection(i).bytes(),
      connection: (i) => scripted.connection(i),
      events: () => events.slice(),
      flights,
      hold: (p) =>
        Effect.map(Effect.makeLatch(false), (l) => {
          predicate = p
          latch = l
        }),
      release: Effect.suspend(() => {
        const l = latch
        latch = undefined
        predicate = undefined
        held = false
        return l === undefined ? Effect.void : l.open
      }),
      holding: () => held
    } satisfies Server
  })

/** The units of a flight list as they went on the wire. */
export const wire = (flights: ReadonlyArray<ReadonlyArray<string>>): string => flights.flat().join("")

const encodeError = Schema.encodeSync(SmtpError.SmtpError)

/** An error as plain data (`_tag` and every field); replies inside become `{ code, lines }`. */
export const plainError = (error: unknown): unknown => {
  if (SmtpError.isSmtpError(error)) {
    const encoded = encodeError(error) as Record<string, unknown>
    const { cause: _cause, ...rest } = encoded
    if (typeof rest.recipients === "object" && rest.recipients !== null) {
      // the raw bytes of the replies are checked where they matter (test/session/smtplib.test.ts)
      rest.recipients = Object.fromEntries(
        Object.entries(rest.recipients).map(([k, { code, lines }]) => [k, { code, lines }])
      )
    }
    // an unknown outcome keeps its cause, in the same plain form
    return error._tag === "SmtpDeliveryUnknown" ? { ...rest, cause: plainError(error.cause) } : rest
  }
  return error
}

/** A reply as plain data. */
export const plainReply = (reply: SmtpReply.SmtpReply) => ({ code: reply.code, text: reply.text })

/** The refused-recipients record as plain data. */
export const plainRefused = (refused: Readonly<Record<string, SmtpReply.SmtpReply>>) =>
  Object.fromEntries(Object.entries(refused).map(([k, v]) => [k, plainReply(v)]))

/**
 * Fails (instead of hanging the test until vitest's timeout) when `effect` does not complete
 * within `millis` of real time; the test clock never advances by itself.
 */
export const guard = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  what: string | (() => string),
  millis = 3000
) =>
  Effect.raceFirst(
    // disconnected: a hung effect (a Scope finalizer waiting on the test clock) is left behind
    Effect.disconnect(effect),
    Effect.flatMap(
      Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis).unref())),
      () =>
        Effect.dieMessage(
          `hung: ${typeof what === "string" ? what : what()} did not complete within ${millis} ms of real time`
        )
    )
  )

/** `Some` of the result, or `None` when `effect` takes longer than `millis` of real time. */
export const withinRealTime = <A, E, R>(effect: Effect.Effect<A, E, R>, millis: number) =>
  Effect.raceFirst(
    Effect.disconnect(Effect.map(effect, Option.some)),
    Effect.as(
      Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis).unref())),
      Option.none<A>()
    )
  )

/** Yields until `predicate` holds (other fibers progress meanwhile); dies after many rounds. */
export const eventually = (predicate: () => boolean, what: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < 2000; i++) {
      if (predicate()) return
      yield* Effect.yieldNow()
      if (i % 100 === 99) yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))
    }
    return yield* Effect.dieMessage(`never happened: ${what}`)
  })

/** A logger that records every message (at every level) in `lines`, replacing the default one. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ message }) => {
    const parts = Array.isArray(message) ? message : [message]
    lines.push(parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" "))
  })
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Logger.withMinimumLogLevel(LogLevel.All),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  return { lines, provide }
}

export const utf8 = (s: string): Uint8Array => encoder.encode(s)
