/**
 * The engine: writes batches of commands and hands back one reply per command, in order
 * (RFC 2920 pipelining is the only mode; without PIPELINING a batch has one command).
 *
 * Writing and reading are decoupled. A write registers the replies it is owed in a FIFO; the
 * reader fiber decodes replies from the socket and settles the oldest owed reply. So a later
 * step can write while earlier replies are still owed. It knows a `Socket`, never `node:*`.
 *
 * @internal
 */
import type * as Socket from "@effect/platform/Socket"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  type SmtpError,
  SmtpProtocolError,
  SmtpResponseException,
  SmtpServerDisconnected,
  SmtpTimeout,
  SmtpTlsError
} from "../SmtpError.js"
import * as SmtpReply from "../SmtpReply.js"
import type * as SmtpTransport from "../SmtpTransport.js"
import { concatBytes } from "./bytes.js"
import type { Command } from "./command.js"
import * as ReplyDecoder from "./replyDecoder.js"

export interface EngineOptions {
  /** 0: quiet; 1: `C:`/`S:` transcript at Debug level; 2: the same with timestamps. */
  readonly debug: 0 | 1 | 2
  /** How long to wait for the reply to a command (by verb, `"<greeting>"`, `"<data>"`). */
  readonly replyTimeout: (verb: string) => Duration.Duration
  /** How long one write may take to be accepted by the socket. */
  readonly writeTimeout: Duration.Duration
}

/** Awaits one owed reply: applies its timeout and writes the `S:` transcript. */
export type Awaiter = Effect.Effect<SmtpReply.SmtpReply, SmtpError>

export interface Engine {
  /** Writes the commands in one flush; returns one awaiter per command, in order. */
  readonly pipeline: (commands: ReadonlyArray<Command>) => Effect.Effect<ReadonlyArray<Awaiter>, SmtpError>
  /** Writes one command and waits for its reply. */
  readonly command: (command: Command) => Effect.Effect<SmtpReply.SmtpReply, SmtpError>
  /** An owed reply that no command asks for: the greeting, LMTP's replies after BDAT LAST. */
  readonly expect: (verb: string) => Effect.Effect<Awaiter>
  /**
   * Writes message data (already dot-stuffed, or BDAT chunks) under the write lock, then
   * `after` commands in the same flush as the last chunk; returns awaiters for the `owed` replies
   * the data draws followed by those of `after`.
   */
  readonly writeData: <E, R>(
    data: Stream.Stream<Uint8Array, E, R>,
    options: { readonly owed: ReadonlyArray<string>; readonly label: string }
  ) => Effect.Effect<ReadonlyArray<Awaiter>, SmtpError | E, R>
  /** Writes commands from a Stream (BDAT chunks), each owed one reply; the awaiters in order. */
  readonly writeCommands: <E, R>(
    commands: Stream.Stream<Command, E, R>,
    label: string
  ) => Effect.Effect<ReadonlyArray<Awaiter>, SmtpError | E, R>
  /**
   * Swaps the socket for a TLS one. Refuses (and closes) if the server sent anything after the
   * reply to STARTTLS: those bytes must never be read as replies (CVE-2011-0411).
   */
  readonly startTls: (
    upgrade: (
      connection: SmtpTransport.Connection
    ) => Effect.Effect<SmtpTransport.Connection, SmtpTlsError | SmtpTimeout>
  ) => Effect.Effect<void, SmtpError>
  /** Closes the connection now (no QUIT); owed replies fail with `SmtpServerDisconnected`. */
  readonly close: Effect.Effect<void>
  /** Whether the connection is closed (by either side, a timeout or a protocol error). */
  readonly isClosed: () => boolean
  /** Whether the socket is encrypted now. */
  readonly isSecure: () => boolean
}

interface Owed {
  readonly verb: string
  /** The reply (or why it will never come), once known. */
  result: Exit.Exit<SmtpReply.SmtpReply, SmtpError> | undefined
  /** The waiting fiber's callback, while one waits. */
  resume: ((exit: Exit.Exit<SmtpReply.SmtpReply, SmtpError>) => void) | undefined
  /** When the reply is late: set once it is the oldest owed and its command is fully written. */
  deadline: number | undefined
  /** Whether the command that draws it has been written (its wait may begin). */
  armed: boolean
}

/** Failures of the socket, told apart from those of a message Stream being written. */
const writeFailures = new WeakSet<object>()
const markWriteFailure = <E extends object>(error: E): E => {
  writeFailures.add(error)
  return error
}
const isWriteFailure = (error: unknown): error is SmtpError =>
  typeof error === "object" && error !== null && writeFailures.has(error)

/** Segments smaller than this are joined into one write. */
const COALESCE_LIMIT = 64 * 1024

export const make = (
  initial: SmtpTransport.Connection,
  options: EngineOptions
): Effect.Effect<Engine, never, Scope.Scope> =>
  Effect.gen(function*() {
    // a child scope made now, so that what the engine forks later (the reader after STARTTLS)
    // is closed after finalizers added by the caller after this point (the QUIT on close)
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const writeLock = yield* Effect.makeSemaphore(1)
    const clock = yield* Effect.clock
    let connection = initial
    let decoder = ReplyDecoder.make()
    const owed: Array<Owed> = []
    const unsolicited: Array<SmtpReply.SmtpReply> = []
    /** Set once the connection is unusable: makes the error for an operation that needs it. */
    let closedWith: ((during: string) => SmtpError) | undefined
    let reader: Fiber.RuntimeFiber<void, never> | undefined
    let writerScope: Scope.CloseableScope | undefined
    let write: ((chunk: Uint8Array) => Effect.Effect<void, Socket.SocketError>) | undefined
    let stopping = false

    const transcript = (line: string): Effect.Effect<void> =>
      options.debug === 0 ? Effect.void : options.debug === 1 ?
        Effect.logDebug(line) :
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.logDebug(`${new Date(now).toISOString()} ${line}`))

    const disconnected = (cause?: unknown) => (during: string) =>
      new SmtpServerDisconnected(cause === undefined ? { during } : { during, cause })

    function settle(o: Owed, exit: Exit.Exit<SmtpReply.SmtpReply, SmtpError>) {
      if (o.result !== undefined) return
      o.result = exit
      const resume = o.resume
      o.resume = undefined
      if (resume !== undefined) resume(exit)
    }

    /** Marks the connection unusable, fails every owed reply, destroys the socket. Idempotent. */
    const terminate = (error: (during: string) => SmtpError): void => {
      if (closedWith !== undefined) return
      closedWith = error
      Deferred.unsafeDone(wake, Exit.void)
      for (const o of owed.splice(0)) {
        settle(o, Exit.fail(error(`waiting for the reply to ${o.verb}`)))
      }
      stopping = true
      Effect.runSync(connection.close)
    }

    const deliver = (reply: SmtpReply.SmtpReply): void => {
      const o = owed.shift()
      if (o === undefined) unsolicited.push(reply)
      else {
        settle(o, Exit.succeed(reply))
        startWaiting()
      }
      // 421: the server is closing the channel (RFC 5321 §3.8); nothing more will come
      if (reply.code === 421) terminate(disconnected())
    }

    const onChunk = (chunk: Uint8Array): void => {
      if (closedWith !== undefined) return
      const result = decoder.push(chunk)
      for (const raw of result.replies) {
        const reply = SmtpReply.fromLines(raw, raw.bytes)
        if (Either.isLeft(reply)) {
          const line = raw.find((l) => !/^\d{3}[ -]?/.test(l)) ?? raw[raw.length - 1] ?? ""
          const error = new SmtpProtocolError({ reason: `Malformed reply: ${reply.left}`, line: line.slice(0, 120) })
          return terminate(() => error)
        }
        deliver(reply.right)
        if (closedWith !== undefined) return
      }
      if (result.failure !== undefined) {
        const failure = result.failure
        const error = failure._tag === "LineTooLong" ?
          new SmtpResponseException({ code: 500, text: "Line too long." }) :
          new SmtpProtocolError({
            reason: `Reply has more than ${ReplyDecoder.MAX_LINES} lines`,
            line: failure.line
          })
        terminate(() => error)
      }
    }

    const startReader = Effect.gen(function*() {
      const socket = connection.socket
      const ws = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      writerScope = ws
      write = yield* Scope.extend(socket.writer, ws)
      stopping = false
      reader = yield* socket.run(onChunk).pipe(
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            if (stopping) return
            terminate(
              Exit.isSuccess(exit) ? disconnected() : disconnected(Exit.isFailure(exit) ? exit.cause : undefined)
            )
          })
        ),
        Effect.forkIn(scope)
      )
    })

    yield* startReader
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        stopping = true
        terminate(disconnected())
      })
    )

    /** Registers an owed reply (armed: its wait may begin); undefined when the connection is closed. */
    const unsafeRegister = (verb: string, armed = true): Owed | undefined => {
      const o: Owed = { verb, result: undefined, resume: undefined, deadline: undefined, armed }
      // a reply that came first (a 552 while the data was still being written) is still this one's
      const early = unsolicited.shift()
      if (early !== undefined) o.result = Exit.succeed(early)
      else if (closedWith !== undefined) return undefined
      else {
        owed.push(o)
        if (owed.length === 1) startWaiting()
      }
      return o
    }
    const register = (verb: string, during = `sending ${verb}`): Effect.Effect<Owed, SmtpError> =>
      Effect.suspend(() => {
        const o = unsafeRegister(verb)
        return o === undefined ? Effect.fail((closedWith ?? disconnected())(during)) : Effect.succeed(o)
      })
    /** The writes are done: the waits for these replies begin (the write timeout covered them so far). */
    const arm = (registered: ReadonlyArray<Owed>) =>
      Effect.sync(() => {
        for (const o of registered) o.armed = true
        startWaiting()
      })
    /** Registers owed replies, all or none, not yet armed (their commands are still to be written). */
    const registerAll = (verbs: ReadonlyArray<string>): Effect.Effect<Array<Owed>, SmtpError> =>
      Effect.suspend(() => {
        const registered: Array<Owed> = []
        for (const verb of verbs) {
          const o = unsafeRegister(verb, false)
          if (o === undefined) return Effect.fail((closedWith ?? disconnected())(`sending ${verb}`))
          registered.push(o)
        }
        return Effect.succeed(registered)
      })
    /** The verbs of the replies a batch of commands draws, in order. */
    const owedBy = (commands: ReadonlyArray<Command>) =>
      commands.flatMap((c) => Array.from({ length: c.replies ?? 1 }, () => c.verb))

    // Timeouts: one watchdog fiber per connection instead of a timer (and a fiber) per reply. The
    // oldest owed reply's wait begins when it becomes the oldest, as a reply cannot come before
    // the ones ahead of it; a write's wait begins when it is handed to the socket.
    let writing: { readonly since: number; readonly what: string } | undefined
    let watchdogTarget = Number.POSITIVE_INFINITY
    let wake = Deferred.unsafeMake<void>(FiberId.none)
    const poke = (deadline: number) => {
      if (deadline < watchdogTarget) Deferred.unsafeDone(wake, Exit.void)
    }
    function startWaiting() {
      const head = owed[0]
      if (head === undefined || head.deadline !== undefined || !head.armed) return
      head.deadline = clock.unsafeCurrentTimeMillis() + Duration.toMillis(options.replyTimeout(head.verb))
      poke(head.deadline)
    }
    const watchdog = Effect.gen(function*() {
      while (closedWith === undefined) {
        const now = clock.unsafeCurrentTimeMillis()
        let next = Number.POSITIVE_INFINITY
        const head = owed[0]
        if (head?.deadline !== undefined) {
          if (now >= head.deadline) {
            const error = new SmtpTimeout({
              phase: `waiting for the reply to ${head.verb}`,
              timeoutMillis: Duration.toMillis(options.replyTimeout(head.verb))
            })
            return terminate(() => error)
          }
          next = head.deadline
        }
        if (writing !== undefined) {
          const deadline = writing.since + Duration.toMillis(options.writeTimeout)
          if (now >= deadline) {
            const error = new SmtpTimeout({
              phase: writing.what,
              timeoutMillis: Duration.toMillis(options.writeTimeout)
            })
            return terminate(() => error)
          }
          next = Math.min(next, deadline)
        }
        wake = Deferred.unsafeMake<void>(FiberId.none)
        watchdogTarget = next
        yield* next === Number.POSITIVE_INFINITY ?
          Deferred.await(wake) :
          Effect.raceFirst(Clock.sleep(Duration.millis(next - now)), Deferred.await(wake))
      }
    })

    // (a plain slot rather than a Deferred: one is made per reply, and Deferreds are costly to make)
    const awaitOwed = (o: Owed): Awaiter =>
      Effect.suspend(() =>
        o.result !== undefined ?
          o.result :
          Effect.async<SmtpReply.SmtpReply, SmtpError>((resume) => {
            o.resume = resume
            return Effect.sync(() => {
              o.resume = undefined
            })
          })
      )
    const awaiter = (o: Owed): Awaiter =>
      options.debug === 0 ?
        awaitOwed(o) :
        Effect.tap(
          awaitOwed(o),
          (reply) => Effect.forEach(reply.toString().split("\r\n"), (l) => transcript(`S: ${l}`))
        )

    const rawWrite = (bytes: Uint8Array, what: string): Effect.Effect<void, SmtpError> =>
      Effect.suspend(() => {
        if (closedWith !== undefined || write === undefined) {
          return Effect.fail(markWriteFailure((closedWith ?? disconnected())(what)))
        }
        const started = { since: clock.unsafeCurrentTimeMillis(), what }
        writing = started
        poke(started.since + Duration.toMillis(options.writeTimeout))
        return write(bytes).pipe(
          Effect.ensuring(Effect.sync(() => {
            if (writing === started) writing = undefined
          })),
          Effect.catchAll((error) => {
            // a write failed because the watchdog closed the connection: report the timeout
            const failure = closedWith ?? disconnected(error)
            terminate(failure)
            return Effect.fail(markWriteFailure(failure(what)))
          })
        )
      })

    /**
     * Writes segments in as few writes as possible: small ones are joined (one flush for a batch
     * of commands), a large one (a BDAT chunk) is written as it is, never copied.
     */
    const writeSegments = (segments: ReadonlyArray<Uint8Array>, what: string): Effect.Effect<void, SmtpError> =>
      Effect.suspend(() => {
        const writes: Array<Uint8Array> = []
        let small: Array<Uint8Array> = []
        let smallBytes = 0
        const flush = () => {
          if (small.length > 0) writes.push(concatBytes(small))
          small = []
          smallBytes = 0
        }
        for (const segment of segments) {
          if (segment.length === 0) continue
          if (segment.length >= COALESCE_LIMIT) {
            flush()
            writes.push(segment)
          } else {
            small.push(segment)
            smallBytes += segment.length
            if (smallBytes >= COALESCE_LIMIT) flush()
          }
        }
        flush()
        return Effect.forEach(writes, (w) => rawWrite(w, what), { discard: true })
      })

    const commandSegments = (commands: ReadonlyArray<Command>) =>
      commands.flatMap((c) => (c.payload === undefined ? [c.bytes] : [c.bytes, ...c.payload]))

    /** A write that stopped half-way (failure or interruption) leaves the stream unusable. */
    const closeOnFailure = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.onExit(
        effect,
        (exit) => Exit.isFailure(exit) ? Effect.sync(() => terminate(disconnected(exit.cause))) : Effect.void
      )

    const transcriptCommand = (c: Command) =>
      Effect.zipRight(
        transcript(`C: ${c.display}`),
        c.payload === undefined ?
          Effect.void :
          transcript(`C: <message data: ${c.payload.reduce((n, p) => n + p.length, 0)} bytes>`)
      )

    const pipeline = (commands: ReadonlyArray<Command>): Effect.Effect<ReadonlyArray<Awaiter>, SmtpError> =>
      writeLock.withPermits(1)(
        Effect.gen(function*() {
          const registered = yield* registerAll(owedBy(commands))
          if (options.debug !== 0) yield* Effect.forEach(commands, transcriptCommand)
          yield* writeSegments(commandSegments(commands), `sending ${commands.map((c) => c.verb).join(", ")}`)
          yield* arm(registered)
          return registered.map(awaiter)
        })
      )

    const command = (c: Command) => Effect.flatMap(pipeline([c]), (awaiters) => awaiters[0])

    // never fails: on a closed connection the awaiter fails, so the caller keeps what it already has
    const expect = (verb: string): Effect.Effect<Awaiter> =>
      Effect.match(register(verb, `waiting for the reply to ${verb}`), {
        onFailure: (error) => Effect.fail(error),
        onSuccess: awaiter
      })

    const writeData = <E, R>(
      data: Stream.Stream<Uint8Array, E, R>,
      opts: { readonly owed: ReadonlyArray<string>; readonly label: string }
    ): Effect.Effect<ReadonlyArray<Awaiter>, SmtpError | E, R> =>
      writeLock.withPermits(1)(
        Effect.gen(function*() {
          // registered first, so that a reply the server sends early (552 too big) is theirs, but
          // armed only after the last byte: the end-of-data wait begins after the final dot
          const registered = yield* registerAll(opts.owed)
          let bytes = 0
          yield* Stream.runForEachChunk(data, (chunk) => {
            const joined = concatBytes(Array.from(chunk))
            bytes += joined.length
            return joined.length === 0 ? Effect.void : rawWrite(joined, `writing ${opts.label}`)
          }).pipe(
            // the connection is closed: stop pulling the message; an early reply is still in the
            // awaiters, else they fail with the disconnection
            Effect.catchIf(isWriteFailure, () => Effect.void),
            closeOnFailure
          )
          yield* arm(registered)
          if (options.debug !== 0) yield* transcript(`C: <${opts.label}: ${bytes} bytes>`)
          return registered.map(awaiter)
        })
      )

    /**
     * Writes commands produced by a Stream (BDAT chunks), each registering its reply before it is
     * written; returns the awaiters in order. The write lock is held throughout.
     */
    const writeCommands = <E, R>(
      commands: Stream.Stream<Command, E, R>,
      label: string
    ): Effect.Effect<ReadonlyArray<Awaiter>, SmtpError | E, R> =>
      writeLock.withPermits(1)(
        Effect.gen(function*() {
          const registered: Array<Owed> = []
          yield* Stream.runForEach(commands, (c) =>
            Effect.gen(function*() {
              const o = unsafeRegister(c.verb, false)
              if (o === undefined) {
                // closed: the stream is not pulled further; this reply will never come
                return yield* Effect.fail(markWriteFailure((closedWith ?? disconnected())(`writing ${label}`)))
              }
              registered.push(o)
              if (options.debug !== 0) yield* transcriptCommand(c)
              yield* writeSegments(commandSegments([c]), `writing ${label}`)
              yield* arm([o])
            })).pipe(Effect.catchIf(isWriteFailure, () => Effect.void), closeOnFailure)
          return registered.map(awaiter)
        })
      )

    const startTls = (
      upgrade: (c: SmtpTransport.Connection) => Effect.Effect<SmtpTransport.Connection, SmtpTlsError | SmtpTimeout>
    ): Effect.Effect<void, SmtpError> =>
      writeLock.withPermits(1)(
        Effect.gen(function*() {
          if (closedWith !== undefined) return yield* Effect.fail(closedWith("starting TLS"))
          if (owed.length > 0 || unsolicited.length > 0 || decoder.buffered() > 0) {
            const error = new SmtpTlsError({
              reason: "injection",
              detail: "the server sent data after its reply to STARTTLS, before the handshake " +
                "(STARTTLS command injection, CVE-2011-0411); the connection was closed"
            })
            terminate(() => error)
            return yield* Effect.fail(error)
          }
          stopping = true
          if (reader !== undefined) yield* Fiber.interrupt(reader)
          // after the reader: closing the writer while it runs would end() the socket (FIN)
          if (writerScope !== undefined) yield* Scope.close(writerScope, Exit.void)
          write = undefined
          const upgraded = yield* upgrade(connection).pipe(
            Effect.tapError((error) => Effect.sync(() => terminate(() => error)))
          )
          connection = upgraded
          decoder = ReplyDecoder.make()
          yield* startReader
        }).pipe(
          // interrupted half-way through the upgrade: neither plaintext nor TLS can go on
          Effect.onInterrupt(() => Effect.sync(() => terminate(disconnected())))
        )
      )

    yield* Effect.forkIn(watchdog, scope)

    return {
      pipeline,
      command,
      expect,
      writeData,
      writeCommands,
      startTls,
      close: Effect.sync(() => terminate(disconnected())),
      isClosed: () => closedWith !== undefined,
      isSecure: () => connection.secure
    } satisfies Engine
  })
