/**
 * The engine: writes batches of commands and hands back the replies they draw, in order
 * (RFC 2920 pipelining is the only mode; without PIPELINING a batch has one command).
 *
 * A callback-driven state machine with Effect at its edges. Writing registers a *group*: the
 * replies a batch of commands is owed, in a FIFO. The socket's reader callback decodes replies and
 * fills the oldest group; a group is settled once, when its last reply came (or the connection
 * failed), so waiting for a whole flight costs one suspension. Timeouts cost nothing per message:
 * one watchdog per connection (a host timer under Effect's own clock, else a fiber sleeping on
 * the clock) wakes at most once per `period` while nothing is late. It
 * knows a `Socket`, never `node:*`.
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
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
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
import * as Arrays from "./arrays.js"
import * as Async from "./async.js"
import { byteLength, type Command, encodeLines, verbName as replyName } from "./command.js"
import * as ReplyDecoder from "./replyDecoder.js"
import { concat as concatBytes } from "./slab.js"
import * as Timer from "./timer.js"

export interface EngineOptions {
  /** 0: quiet; 1: `C:`/`S:` transcript at Debug level; 2: the same with timestamps. */
  readonly debug: 0 | 1 | 2
  /** How long to wait for the reply to a command (by verb, `"<greeting>"`, `"<data>"`). */
  readonly replyTimeout: (verb: string) => Duration.Duration
  /** How long one write may take to be accepted by the socket. */
  readonly writeTimeout: Duration.Duration
}

/**
 * The replies a batch drew, in order. When the connection failed before all of them came,
 * `error` says why and `replies` holds those that came first.
 */
export interface Batch {
  readonly replies: ReadonlyArray<SmtpReply.SmtpReply>
  readonly error: SmtpError | undefined
}

/** A batch that was written and is owed replies: await it once, or more than once. */
export interface Pending {
  readonly await: Effect.Effect<Batch>
  /** Whether every reply came (or the connection failed). */
  readonly settled: () => boolean
  readonly batch: Batch
  /**
   * `endsWritten()` when its commands were registered, just before their writes: a failed write
   * stops the writes after it, so `endsWritten()` minus this is how many of its own ends of data
   * went out (or more, once later batches were written after all of it).
   */
  readonly endsBefore: number
}

/** What `sendNow` did. */
export interface Sent {
  readonly pending: Pending
  /**
   * What is left of the write: `Effect.void` when the socket took the bytes at once, else the
   * wait for it to take them (run it before relying on the replies; it never fails: a failure is
   * the batch's `error`).
   */
  readonly written: Effect.Effect<void>
}

export interface Engine {
  /** The greeting: owed from the start, so that it is never an unsolicited reply. */
  readonly greeting: Effect.Effect<SmtpReply.SmtpReply, SmtpError>
  /**
   * Writes the commands in one flush (registering the replies they draw first) and returns the
   * pending batch. Fails only when nothing could be written (the connection is closed).
   * Registering and writing are never separated by an interruption: no owed reply goes untracked.
   * `registered()` counts the batches registered so far (an interruption right after a send can
   * tell from it that the commands went out).
   */
  readonly send: (commands: ReadonlyArray<Command>) => Effect.Effect<Pending, SmtpError>
  /**
   * `send` as one synchronous step, for a caller inside a callback (the reader's, through
   * `onSettled`) or an `Effect.async` registration: registers the replies, hands the commands to
   * the socket and begins the wait. `undefined` when it cannot be done so (the transport's write
   * is an Effect, several writes, or the debug transcript): use `send`. An `SmtpError` when the
   * connection is unusable (nothing was registered or written).
   */
  readonly sendNow: (commands: ReadonlyArray<Command>) => Sent | SmtpError | undefined
  /**
   * Calls `f` once when the batch is settled: at once when it is, else from the reader's callback
   * after the whole chunk that settled it was read (so a stray reply in the same chunk is seen
   * first), or when the connection fails. One callback per batch; `offSettled` withdraws it.
   */
  readonly onSettled: (pending: Pending, f: (batch: Batch) => void) => void
  readonly offSettled: (pending: Pending) => void
  /** `send`, then waits once for every reply. Never fails: a failure is the batch's `error`. */
  readonly exchange: (commands: ReadonlyArray<Command>) => Effect.Effect<Batch>
  /** Writes one command and waits for its reply. */
  readonly command: (command: Command) => Effect.Effect<SmtpReply.SmtpReply, SmtpError>
  /** How many batches of commands have been registered on this connection (see `send`). */
  readonly registered: () => number
  /** Replies that no command draws: LMTP's replies after the first reply to BDAT LAST. */
  readonly expect: (verb: string, count: number) => Pending
  /**
   * Allows `count` replies to arrive while none is owed (LMTP's replies after BDAT LAST, before
   * the transaction knows how many to expect); they wait for `expect`. Any other reply that comes
   * when none is owed is a protocol error (RFC 5321 allows no unsolicited reply but 421).
   */
  readonly allowEarlyReplies: (count: number) => void
  /**
   * How many ends of message data (the final dot, `BDAT ... LAST`) have been handed to the socket,
   * in writing order (a write that holds several counts each): once one has, the server may have
   * accepted its message.
   */
  readonly endsWritten: () => number
  /**
   * Writes message data (already dot-stuffed) and then the end of data, and returns the pending
   * batch of the `owed` replies that draws. Registered before the first byte, so that a reply the
   * server sends early (552 too big) is theirs; the wait begins after the final dot.
   */
  readonly writeData: <E, R>(
    data: Stream.Stream<Uint8Array, E, R>,
    options: {
      readonly owed: number
      readonly label: string
      /** The end of data, written (and counted by `endsWritten`) once the stream has ended. */
      readonly end: () => Uint8Array
    }
  ) => Effect.Effect<Pending, SmtpError | E, R>
  /** Writes commands from a Stream (BDAT chunks), each owed one reply; the pending replies in order. */
  readonly writeCommands: <E, R>(
    commands: Stream.Stream<Command, E, R>,
    label: string
  ) => Effect.Effect<ReadonlyArray<Pending>, SmtpError | E, R>
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
  /** Closes the connection after QUIT: later operations say the session was closed by quit. */
  readonly closeAfterQuit: Effect.Effect<void>
  /** Whether the connection is closed (by either side, a timeout or a protocol error). */
  readonly isClosed: () => boolean
  /** Why the connection is unusable, for an operation that was `during` something. */
  readonly failure: (during: string) => SmtpError
  /** Whether a reply came that no command asked for: the replies matched before it are in doubt. */
  readonly desynchronised: () => boolean
  /** Whether the socket is encrypted now. */
  readonly isSecure: () => boolean
  /** What TLS negotiated, when encrypted and the transport can tell. */
  readonly tlsDetails: () => SmtpTransport.TlsDetails | undefined
}

/**
 * A batch of owed replies (see the module doc), and the pending batch handed out for it (one
 * object: a message's batches cost one allocation each).
 */
class Group implements Batch, Pending {
  // not a literal: V8 pretenured it (see `AcceptedEnvelope` in transaction.ts)
  readonly replies: Array<SmtpReply.SmtpReply> = Arrays.objectArray()
  error: SmtpError | undefined = undefined
  done = false
  resume: ((exit: Exit.Exit<Batch>) => void) | undefined = undefined
  /** Called once when settled (see `onSettled`). */
  settledCallback: ((batch: Batch) => void) | undefined = undefined
  /** Whether its commands are fully written (its wait may begin). */
  armed = false
  /** When the next reply is late (-1: not waiting yet). */
  deadline = -1
  /** See `Pending.endsBefore`. */
  endsBefore = 0
  constructor(
    /** The commands that draw the replies (for names), or undefined: they all have `verb`. */
    readonly commands: ReadonlyArray<Command> | undefined,
    readonly verb: string,
    readonly need: number,
    private readonly awaiter: (g: Group) => Effect.Effect<Batch>
  ) {}
  get await(): Effect.Effect<Batch> {
    return this.awaiter(this)
  }
  settled(): boolean {
    return this.done
  }
  get batch(): Batch {
    return this
  }
}

/** Made when it happens, not per connection (an error's constructor validates its fields). */
const injection = (): SmtpTlsError =>
  new SmtpTlsError({
    reason: "injection",
    detail: "the server sent data after its reply to STARTTLS, before the handshake " +
      "(STARTTLS command injection, CVE-2011-0411); the connection was closed"
  })

/** The verb of the command that draws reply `index` of a group. */
const verbAt = (g: Group, index: number): string => {
  if (g.commands === undefined) return g.verb
  let at = 0
  for (const c of g.commands) {
    at += c.replies ?? 1
    if (index < at) return c.verb
  }
  return g.verb
}

/**
 * Failures of the socket, told apart from those of a message Stream being written, by a hidden
 * mark (not by identity: Effect may hand the error back wrapped in a Proxy inside a span).
 */
const WriteFailure = Symbol.for("effect-smtp/internal/WriteFailure")
const markWriteFailure = <E extends object>(error: E): E => {
  Object.defineProperty(error, WriteFailure, { value: true, enumerable: false })
  return error
}
const isWriteFailure = (error: unknown): error is SmtpError =>
  typeof error === "object" && error !== null && (error as { readonly [WriteFailure]?: boolean })[WriteFailure] === true

/** What a write is doing, for errors: a phrase, or the commands it sends (named only when needed). */
type What = string | ReadonlyArray<Command>
const describe = (what: What): string =>
  typeof what === "string" ?
    what :
    what.length === 1 ?
    `sending ${replyName(what[0].verb)}` :
    `sending ${what.map((c) => replyName(c.verb)).join(", ")}`

/** Segments smaller than this are joined into one write; larger message data is written in slices of it. */
const COALESCE_LIMIT = 64 * 1024
/** The most bytes a server may send that no command asked for (allowed early replies included). */
export const UNSOLICITED_LIMIT = 4 * 1024
/** The most bytes of replies allowed to come before they are asked for (LMTP's after BDAT LAST). */
export const EARLY_LIMIT = 64 * 1024
/** The watchdog sleeps at least this long between checks unless a deadline is nearer. */
const MIN_PERIOD = 1000
/** The verbs whose timeouts set the watchdog's period. */
const timedVerbs = ["<greeting>", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "<end of data>", "RSET", "QUIT", "AUTH"]

export const make = (
  initial: SmtpTransport.Connection,
  options: EngineOptions
): Effect.Effect<Engine, never, Scope.Scope> =>
  Effect.gen(function*() {
    // a child scope made now, so that what the engine forks later (the reader after STARTTLS)
    // is closed after finalizers added by the caller after this point (the QUIT on close)
    const scope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const clock = yield* Effect.clock
    let connection = initial
    let decoder = ReplyDecoder.make()
    /** The owed groups, oldest first. */
    const owed: Array<Group> = []
    /** Replies that came while none was owed, within the allowance (LMTP after BDAT LAST). */
    const unsolicited: Array<SmtpReply.SmtpReply> = []
    let unsolicitedBytes = 0
    let earlyAllowance = 0
    let endsWritten = 0
    /** Batches registered by `send`. */
    let sent = 0
    /** The last reply settled, and to what: a reply right after STARTTLS's 220 is an injection. */
    let lastVerb = ""
    let lastCode = 0
    /** Set once the connection is unusable: makes the error for an operation that needs it. */
    let closedWith: ((during: string) => SmtpError) | undefined
    /**
     * Set when a write failed: nothing more is written, the connection is being closed, and the
     * reader reads what the server had already sent (a reply sent before it closed is kept) before
     * the owed replies fail with this.
     */
    let broken: ((during: string) => SmtpError) | undefined
    let desynchronised = false
    let reader: Fiber.RuntimeFiber<void, never> | undefined
    let writerScope: Scope.CloseableScope | undefined
    let write: ((chunk: Uint8Array) => Effect.Effect<void, Socket.SocketError>) | undefined
    let stopping = false
    /** The reply timeouts of the common verbs, in ms, worked out once (every wait reads one). */
    const timedMillis = new Map(timedVerbs.map((verb) => [verb, Duration.toMillis(options.replyTimeout(verb))]))
    const timeoutMillis = (verb: string): number =>
      timedMillis.get(verb) ?? Duration.toMillis(options.replyTimeout(verb))
    const writeMillis = Duration.toMillis(options.writeTimeout)

    // asked for, the transcript is shown even where the minimum log level hides Debug
    const transcript = (line: string): Effect.Effect<void> =>
      options.debug === 0 ? Effect.void : Logger.withMinimumLogLevel(
        options.debug === 1 ?
          Effect.logDebug(line) :
          Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.logDebug(`${new Date(now).toISOString()} ${line}`)),
        LogLevel.Debug
      )

    const disconnected = (cause?: unknown) => (during: string) =>
      new SmtpServerDisconnected(cause === undefined ? { during } : { during, cause })

    /** Set while the reader's callback delivers a chunk's replies: `onSettled` callbacks wait for its end. */
    let delivering = false
    /** Settled groups whose `onSettled` callback waits for the end of the chunk. */
    const settledInChunk: Array<Group> = []

    const finish = (g: Group): void => {
      g.done = true
      const resume = g.resume
      g.resume = undefined
      if (resume !== undefined) resume(Exit.succeed(g))
      if (g.settledCallback !== undefined) {
        if (delivering) settledInChunk.push(g)
        else runThen(g)
      }
    }
    const runThen = (g: Group): void => {
      const then = g.settledCallback
      g.settledCallback = undefined
      if (then !== undefined) then(g)
    }

    /** Marks the connection unusable, fails every owed group, destroys the socket. Idempotent. */
    const terminate = (error: (during: string) => SmtpError): void => {
      if (closedWith !== undefined) return
      closedWith = error
      cancelTimer?.()
      cancelTimer = undefined
      Deferred.unsafeDone(wake, Exit.void)
      for (const g of owed.splice(0)) {
        const verb = verbAt(g, g.replies.length)
        const name = replyName(verb)
        // a command not fully written yet: the failure came while sending it
        g.error = error(
          g.armed ?
            `waiting for the reply to ${name}` :
            verb === "<end of data>" ?
            "writing the message data" :
            `sending ${name}`
        )
        finish(g)
      }
      stopping = true
      Effect.runSync(connection.close)
    }

    // Timeouts: one watchdog per connection. The oldest owed group's wait for its next
    // reply begins when it becomes the oldest (a reply cannot come before the ones ahead of it) and
    // its commands are written; a write's wait begins when it is handed to the socket. The
    // watchdog sleeps `period` at most, the shortest timeout, so a deadline set later is never
    // earlier than its wake-up and needs no poke (nothing per message); a shorter one pokes it.
    const period = Math.max(MIN_PERIOD, Math.min(writeMillis, ...timedMillis.values()))
    let writingSince = -1
    let writingWhat: What = ""
    let writeSeq = 0
    let watchdogTarget = Number.POSITIVE_INFINITY
    // Under Effect's own clock the watchdog is a host timer, armed and re-armed from callbacks
    // (no fiber, no race); under another clock (a TestClock) a fiber sleeping on that clock.
    const timers = clock === Timer.defaultClock
    let cancelTimer: (() => void) | undefined
    /**
     * Whether the timer may be armed: from the end of `make` (with its finalizer in place: a
     * poke before arms nothing, or an interrupted `make` would leave the timer behind; the first
     * check covers what was owed by then) until the engine's Scope closes.
     */
    let timerOn = false
    /** The timer's next check, at `at` (the one armed before is cancelled). */
    const armTimer = (at: number): void => {
      cancelTimer?.()
      cancelTimer = undefined
      if (closedWith !== undefined || !timerOn) return
      watchdogTarget = at
      cancelTimer = Timer.schedule(tick, at - clock.unsafeCurrentTimeMillis())
    }
    /** A check from the timer, or the first one. */
    const tick = (): void => {
      if (closedWith !== undefined) return
      const next = check()
      if (next !== -1) armTimer(next)
    }
    let wake = Deferred.unsafeMake<void>(FiberId.none)
    /** A deadline earlier than the watchdog's next check: check then. */
    const poke = (deadline: number) => {
      if (deadline >= watchdogTarget) return
      if (!timers) Deferred.unsafeDone(wake, Exit.void)
      else armTimer(deadline)
    }
    const startWaiting = (): void => {
      const head = owed[0]
      if (head === undefined || head.deadline !== -1 || !head.armed) return
      head.deadline = clock.unsafeCurrentTimeMillis() + timeoutMillis(verbAt(head, head.replies.length))
      poke(head.deadline)
    }

    const deliver = (reply: SmtpReply.SmtpReply, size: number): void => {
      const g = owed[0]
      if (g !== undefined) {
        g.replies.push(reply)
        lastVerb = verbAt(g, g.replies.length - 1)
        lastCode = reply.code
        if (g.replies.length >= g.need) {
          owed.shift()
          finish(g)
          startWaiting()
        } else if (g.armed) {
          g.deadline = clock.unsafeCurrentTimeMillis() + timeoutMillis(verbAt(g, g.replies.length))
          poke(g.deadline)
        }
      } else if (earlyAllowance > 0 && unsolicitedBytes + size <= EARLY_LIMIT) {
        // an early reply that will be asked for (LMTP after BDAT LAST), 421 included
        earlyAllowance--
        unsolicitedBytes += size
        unsolicited.push(reply)
      } else if (reply.code === 421) {
        // the one reply a server may send unasked (RFC 5321 §3.8): handled below
      } else if (lastVerb === "STARTTLS" && lastCode === 220) {
        const error = injection()
        return terminate(() => error)
      } else {
        desynchronised = true
        // a reply no command asked for: every later reply would be matched to the wrong command
        // (a stray 250 would turn a refusal into a success), so the stream cannot be trusted
        const error = new SmtpProtocolError({
          reason: "Unsolicited reply: the server sent a reply that no command asked for",
          line: reply.toString().split("\r\n")[0].slice(0, 120)
        })
        return terminate(() => error)
      }
      // 421: the server is closing the channel (RFC 5321 §3.8); nothing more will come
      if (reply.code === 421) terminate(disconnected())
    }

    const onChunk = (chunk: Uint8Array): void => {
      if (closedWith !== undefined) return
      delivering = true
      try {
        readChunk(chunk)
      } finally {
        delivering = false
        // callbacks run after every reply of the chunk was delivered: one may write commands
        for (let i = 0; i < settledInChunk.length; i++) runThen(settledInChunk[i])
        settledInChunk.length = 0
      }
    }

    const readChunk = (chunk: Uint8Array): void => {
      const result = decoder.push(chunk)
      for (const raw of result.replies) {
        const reply = SmtpReply.fromLines(raw, raw.bytes)
        if (Either.isLeft(reply)) {
          const line = raw.find((l) => !/^\d{3}[ -]?/.test(l)) ?? raw[raw.length - 1] ?? ""
          const error = new SmtpProtocolError({ reason: `Malformed reply: ${reply.left}`, line: line.slice(0, 120) })
          return terminate(() => error)
        }
        deliver(reply.right, raw.length === 1 ? raw[0].length + 2 : raw.reduce((n, l) => n + l.length + 2, 0))
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
        return terminate(() => error)
      }
      // bytes of a reply nobody has asked for yet are bounded too (a flooding server)
      if (
        owed.length === 0 &&
        decoder.buffered() > (earlyAllowance > 0 ? EARLY_LIMIT - unsolicitedBytes : UNSOLICITED_LIMIT)
      ) {
        const error = new SmtpProtocolError({
          reason: `Unsolicited data: the server sent more than ${UNSOLICITED_LIMIT} bytes that no command asked for`
        })
        terminate(() => error)
      }
    }

    const startReader = Effect.gen(function*() {
      const socket = connection.socket
      const ws = yield* Scope.fork(scope, ExecutionStrategy.sequential)
      writerScope = ws
      const writer = yield* Scope.extend(socket.writer, ws)
      write = connection.write ?? writer
      stopping = false
      reader = yield* socket.run(onChunk).pipe(
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            if (stopping) return
            terminate(
              broken ??
                (Exit.isSuccess(exit) ? disconnected() : disconnected(Exit.isFailure(exit) ? exit.cause : undefined))
            )
          })
        ),
        Effect.forkIn(scope)
      )
    })

    // No canceler: an interrupted wait leaves its resume in the group, and calling it later does
    // nothing (Effect ignores a resume after the interruption); a later wait replaces it. A
    // canceler would cost an interruption handler for every wait (and, measured, makes V8 keep
    // each message's objects past the young generation).
    const awaitGroup = (g: Group): Effect.Effect<Batch> =>
      g.done ? Effect.succeed(g) : Async.once<Batch, never>((resume) => {
        if (g.done) return resume(Effect.succeed(g))
        g.resume = resume
      })
    const traced = (g: Group): Effect.Effect<Batch> =>
      options.debug === 0 ? awaitGroup(g) : Effect.tap(
        awaitGroup(g),
        (batch) =>
          Effect.forEach(
            batch.replies,
            (reply) => Effect.forEach(reply.toString().split("\r\n"), (l) => transcript(`S: ${l}`), { discard: true }),
            {
              discard: true
            }
          )
      )
    const makeGroup = (commands: ReadonlyArray<Command> | undefined, verb: string, need: number): Group =>
      new Group(commands, verb, need, traced)

    /** Registers a group (its wait begins once armed); takes replies that came early. */
    const register = (g: Group): void => {
      g.endsBefore = endsWritten
      while (unsolicited.length > 0 && g.replies.length < g.need) g.replies.push(unsolicited.shift()!)
      if (unsolicited.length === 0) unsolicitedBytes = 0
      if (g.replies.length >= g.need) {
        g.done = true
        return
      }
      owed.push(g)
    }
    const arm = (g: Group): void => {
      g.armed = true
      if (owed[0] === g) startWaiting()
    }

    const greetingGroup = makeGroup(undefined, "<greeting>", 1)
    register(greetingGroup)
    arm(greetingGroup)
    yield* startReader
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        stopping = true
        terminate(disconnected())
      })
    )

    /**
     * The watchdog's check: closes the connection when a deadline has passed (and returns -1),
     * else returns when to check next.
     */
    const check = (): number => {
      const now = clock.unsafeCurrentTimeMillis()
      let next = now + period
      const head = owed[0]
      if (head !== undefined && head.deadline !== -1) {
        if (now >= head.deadline) {
          const verb = verbAt(head, head.replies.length)
          const error = new SmtpTimeout({
            phase: `waiting for the reply to ${replyName(verb)}`,
            timeoutMillis: timeoutMillis(verb)
          })
          terminate(() => error)
          return -1
        }
        next = Math.min(next, head.deadline)
      }
      if (writingSince !== -1) {
        const deadline = writingSince + writeMillis
        if (now >= deadline) {
          const error = new SmtpTimeout({ phase: describe(writingWhat), timeoutMillis: writeMillis })
          terminate(() => error)
          return -1
        }
        next = Math.min(next, deadline)
      }
      return next
    }

    /** Under another clock: a fiber that sleeps on it until the next check or a poke. */
    const watchdog = Effect.gen(function*() {
      while (closedWith === undefined) {
        const now = clock.unsafeCurrentTimeMillis()
        const next = check()
        if (next === -1) return
        wake = Deferred.unsafeMake<void>(FiberId.none)
        watchdogTarget = next
        yield* Effect.raceFirst(Clock.sleep(Duration.millis(next - now)), Deferred.await(wake))
      }
    })

    const pending = (g: Group): Pending => g

    /** One write; `ends`: the ends of message data it holds (counted by `endsWritten`). */
    const rawWrite = (bytes: Uint8Array, what: What, ends: number): Effect.Effect<void, SmtpError> => {
      if (closedWith !== undefined || broken !== undefined || write === undefined) {
        return Effect.fail(markWriteFailure((closedWith ?? broken ?? disconnected())(describe(what))))
      }
      // from here the bytes may reach the server, whatever the write's outcome
      endsWritten += ends
      const seq = ++writeSeq
      writingSince = clock.unsafeCurrentTimeMillis()
      writingWhat = what
      if (writingSince + writeMillis < watchdogTarget) poke(writingSince + writeMillis)
      const written = write(bytes)
      // a transport's write that completed at once (the bytes are buffered) returns Effect.void
      if (written === Effect.void) {
        writingSince = -1
        return Effect.void
      }
      return Effect.matchEffect(
        // interrupted while the socket's buffer is full: the bytes are handed over; the write's
        // own timeout must not outlive the wait
        Effect.onInterrupt(written, () =>
          Effect.sync(() => {
            if (seq === writeSeq) writingSince = -1
          })),
        {
          onFailure: (error) => {
            if (seq === writeSeq) writingSince = -1
            // a write failed because the watchdog closed the connection: report the timeout
            const failure = closedWith ?? broken ?? disconnected(error)
            if (closedWith === undefined && broken === undefined) {
              // close, and let the reader take what the server sent before it closed; its end
              // fails the owed replies with this failure
              broken = failure
              if (reader === undefined || stopping) terminate(failure)
              else Effect.runSync(connection.close)
            }
            return Effect.fail(markWriteFailure(failure(describe(what))))
          },
          onSuccess: () => {
            if (seq === writeSeq) writingSince = -1
            return Effect.void
          }
        }
      )
    }

    /**
     * Writes segments in as few writes as possible: small ones are joined (one flush for a batch
     * of commands), a large one (a BDAT chunk) is written as it is, never copied. Each write counts
     * the ends of message data it holds (`ends`: the indexes of the segments that end one, in order),
     * so that a batch knows which of its messages' ends went out when a write fails.
     */
    const writeSegments = (
      segments: ReadonlyArray<Uint8Array>,
      what: What,
      ends: ReadonlyArray<number>
    ): Effect.Effect<void, SmtpError> => {
      if (segments.length === 1) return rawWrite(segments[0], what, ends.length)
      let total = 0
      for (const segment of segments) total += segment.length
      // the common case: a flight of commands (and a small message) in one write
      if (total < COALESCE_LIMIT) return rawWrite(concatBytes(segments), what, ends.length)
      const writes: Array<Uint8Array> = []
      const endsOf: Array<number> = []
      let next = 0
      let small: Array<Uint8Array> = []
      let smallBytes = 0
      let smallEnds = 0
      const flush = () => {
        if (small.length > 0) {
          writes.push(small.length === 1 ? small[0] : concatBytes(small))
          endsOf.push(smallEnds)
        }
        small = []
        smallBytes = 0
        smallEnds = 0
      }
      for (let i = 0; i < segments.length; i++) {
        const segment = segments[i]
        const isEnd = next < ends.length && ends[next] === i
        if (isEnd) next++
        if (segment.length === 0 && !isEnd) continue
        if (segment.length >= COALESCE_LIMIT) {
          flush()
          writes.push(segment)
          endsOf.push(isEnd ? 1 : 0)
        } else {
          small.push(segment)
          smallBytes += segment.length
          if (isEnd) smallEnds++
          if (smallBytes >= COALESCE_LIMIT) flush()
        }
      }
      flush()
      return writes.length === 1 ?
        rawWrite(writes[0], what, endsOf[0]) :
        Effect.forEach(writes, (w, i) => rawWrite(w, what, endsOf[i]), { discard: true })
    }

    /** The segments of commands, and the indexes of those that end message data, in order. */
    const commandSegments = (commands: ReadonlyArray<Command>) => {
      const segments: Array<Uint8Array> = []
      const ends: Array<number> = []
      for (const c of commands) {
        segments.push(c.bytes)
        if (c.payload !== undefined) { for (const p of c.payload) segments.push(p) }
        if (c.endsData === true) ends.push(segments.length - 1)
      }
      return { segments, ends }
    }

    const transcriptCommands = (commands: ReadonlyArray<Command>) =>
      Effect.forEach(commands, (c) =>
        Effect.zipRight(
          transcript(`C: ${c.display}`),
          c.payload === undefined ?
            Effect.void :
            transcript(`C: <message data: ${c.payload.reduce((n, p) => n + p.length, 0)} bytes>`)
        ), { discard: true })

    const sendingWhat = (commands: ReadonlyArray<Command>) => describe(commands)

    const unsafeSend = (commands: ReadonlyArray<Command>, single: boolean): Effect.Effect<Pending, SmtpError> => {
      const unusable = closedWith ?? broken
      if (unusable !== undefined) return Effect.fail(unusable(sendingWhat(commands)))
      let need = 0
      for (const c of commands) need += c.replies ?? 1
      const g = makeGroup(commands, commands[commands.length - 1].verb, need)
      register(g)
      sent++
      const writing = writeCommandsOf(commands)
      if (single) {
        // one write, already handed to the socket: the wait for the replies may begin (the write
        // timeout covers a write the socket has not taken yet); nothing is left to interrupt
        arm(g)
        const ready = Effect.succeed(pending(g))
        const written = writing === Effect.void ? ready : Effect.matchEffect(writing, {
          // the write failed: the group holds the failure (the connection is being closed)
          onFailure: () => ready,
          onSuccess: () => ready
        })
        return options.debug === 0 ? written : Effect.zipRight(transcriptCommands(commands), written)
      }
      const written = Effect.matchEffect(writing, {
        // the write failed: the group holds the failure (the connection was terminated)
        onFailure: () => Effect.succeed(pending(g)),
        onSuccess: () => {
          arm(g)
          return Effect.succeed(pending(g))
        }
      })
      return options.debug === 0 ? written : Effect.zipRight(transcriptCommands(commands), written)
    }
    /** Whether the commands go out in several writes (a large BDAT chunk after its line, ...). */
    const severalWrites = (commands: ReadonlyArray<Command>): boolean => {
      let segments = 0
      let total = 0
      for (const c of commands) {
        segments += c.payload === undefined ? 1 : 1 + c.payload.length
        total += byteLength(c)
      }
      return segments > 1 && total >= COALESCE_LIMIT
    }
    /** Writes a flight of commands: command lines alone and small, encoded in one array. */
    const writeCommandsOf = (commands: ReadonlyArray<Command>): Effect.Effect<void, SmtpError> => {
      const lines = encodeLines(commands)
      if (lines !== undefined && lines.length < COALESCE_LIMIT) return rawWrite(lines, commands, 0)
      const { ends, segments } = commandSegments(commands)
      return writeSegments(segments, commands, ends)
    }
    const sendNow = (commands: ReadonlyArray<Command>): Sent | SmtpError | undefined => {
      if (options.debug !== 0 || connection.write === undefined || severalWrites(commands)) return undefined
      const unusable = closedWith ?? broken
      if (unusable !== undefined) return unusable(sendingWhat(commands))
      let need = 0
      for (const c of commands) need += c.replies ?? 1
      const g = makeGroup(commands, commands[commands.length - 1].verb, need)
      register(g)
      sent++
      const writing = writeCommandsOf(commands)
      // one write, handed to the socket: the wait may begin (as `send` with one write)
      arm(g)
      return { pending: pending(g), written: writing === Effect.void ? Effect.void : Effect.ignore(writing) }
    }
    const onSettled = (p: Pending, f: (batch: Batch) => void): void => {
      const g = p.batch as Group
      if (g.done) f(g)
      else g.settledCallback = f
    }
    const offSettled = (p: Pending): void => {
      ;(p.batch as Group).settledCallback = undefined
    }
    // registering the replies and writing them must not be separated by an interruption: a single
    // write happens in the same synchronous step as the registration; several writes run
    // uninterruptibly
    const send = (commands: ReadonlyArray<Command>): Effect.Effect<Pending, SmtpError> =>
      // (only a transport whose `write` hands the bytes over when called writes in that step: with
      // the Socket's writer, the write happens when its Effect runs)
      severalWrites(commands) || connection.write === undefined ?
        Effect.uninterruptible(Effect.suspend(() => unsafeSend(commands, false))) :
        Effect.suspend(() => unsafeSend(commands, true))

    const exchange = (commands: ReadonlyArray<Command>): Effect.Effect<Batch> =>
      Effect.matchEffect(send(commands), {
        onFailure: (error) => Effect.succeed({ replies: [], error }),
        onSuccess: (p) => p.await
      })

    const command = (c: Command): Effect.Effect<SmtpReply.SmtpReply, SmtpError> =>
      Effect.flatMap(
        exchange([c]),
        (batch) => batch.error === undefined ? Effect.succeed(batch.replies[0]) : Effect.fail(batch.error)
      )

    const expect = (verb: string, count: number): Pending => {
      const g = makeGroup(undefined, verb, count)
      if (count === 0) {
        g.done = true
      } else if (closedWith !== undefined) {
        // replies that came before the connection closed are still theirs
        while (unsolicited.length > 0 && g.replies.length < count) {
          g.replies.push(unsolicited.shift()!)
        }
        if (g.replies.length < count) {
          g.error = closedWith(`waiting for the reply to ${replyName(verb)}`)
        }
        g.done = true
      } else {
        register(g)
        arm(g)
      }
      return pending(g)
    }

    /** A write that stopped half-way (failure or interruption) leaves the stream unusable. */
    const closeOnFailure = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.onExit(
        effect,
        (exit) => Exit.isFailure(exit) ? Effect.sync(() => terminate(disconnected(exit.cause))) : Effect.void
      )

    const writeData = <E, R>(
      data: Stream.Stream<Uint8Array, E, R>,
      opts: { readonly owed: number; readonly label: string; readonly end: () => Uint8Array }
    ): Effect.Effect<Pending, SmtpError | E, R> =>
      Effect.suspend((): Effect.Effect<Pending, SmtpError | E, R> => {
        const unusable = closedWith ?? broken
        if (unusable !== undefined) return Effect.fail(unusable(`writing ${opts.label}`))
        const g = makeGroup(undefined, "<end of data>", opts.owed)
        register(g)
        const what = `writing ${opts.label}`
        let bytes = 0
        // each chunk of the stream is written at once, in writes of at most COALESCE_LIMIT bytes:
        // small elements are joined, large ones sliced (never copied), so memory stays bounded
        // whatever the stream's chunking
        return Stream.runForEachChunk(data, (chunk) => {
          const writes: Array<Uint8Array> = []
          let small: Array<Uint8Array> = []
          let smallBytes = 0
          for (const element of chunk) {
            bytes += element.length
            for (let offset = 0; offset < element.length; offset += COALESCE_LIMIT) {
              const piece = offset === 0 && element.length <= COALESCE_LIMIT ?
                element :
                element.subarray(offset, offset + COALESCE_LIMIT)
              if (smallBytes + piece.length > COALESCE_LIMIT) {
                writes.push(small.length === 1 ? small[0] : concatBytes(small))
                small = []
                smallBytes = 0
              }
              small.push(piece)
              smallBytes += piece.length
            }
          }
          if (small.length > 0) writes.push(small.length === 1 ? small[0] : concatBytes(small))
          return writes.length === 1 ?
            rawWrite(writes[0], what, 0) :
            Effect.forEach(writes, (w) => rawWrite(w, what, 0), { discard: true })
        }).pipe(
          // the end of data in a write of its own: from here the server may accept the message
          Effect.zipRight(Effect.suspend(() => {
            const end = opts.end()
            bytes += end.length
            return rawWrite(end, what, 1)
          })),
          // the connection is closed: stop pulling the message; an early reply is still in the
          // group, else it holds the disconnection
          Effect.catchIf(isWriteFailure, () => Effect.void),
          closeOnFailure,
          Effect.zipRight(Effect.sync(() => arm(g))),
          Effect.zipRight(
            options.debug === 0 ? Effect.void : Effect.suspend(() => transcript(`C: <${opts.label}: ${bytes} bytes>`))
          ),
          Effect.as(pending(g))
        )
      })

    /**
     * Writes commands produced by a Stream (BDAT chunks), each registering its reply before it is
     * written; returns the pending replies in order.
     */
    const writeCommands = <E, R>(
      commands: Stream.Stream<Command, E, R>,
      label: string
    ): Effect.Effect<ReadonlyArray<Pending>, SmtpError | E, R> =>
      Effect.suspend(() => {
        const registered: Array<Pending> = []
        return Stream.runForEach(commands, (c) =>
          Effect.suspend(() => {
            const unusable = closedWith ?? broken
            if (unusable !== undefined) {
              // closed: the stream is not pulled further; this reply will never come
              return Effect.fail(markWriteFailure(unusable(`writing ${label}`)))
            }
            const g = makeGroup([c], c.verb, 1)
            register(g)
            registered.push(pending(g))
            const { ends, segments } = commandSegments([c])
            const written = Effect.map(writeSegments(segments, `writing ${label}`, ends), () => arm(g))
            return options.debug === 0 ? written : Effect.zipRight(transcriptCommands([c]), written)
          })).pipe(Effect.catchIf(isWriteFailure, () => Effect.void), closeOnFailure, Effect.as(registered))
      })

    const startTls = (
      upgrade: (c: SmtpTransport.Connection) => Effect.Effect<SmtpTransport.Connection, SmtpTlsError | SmtpTimeout>
    ): Effect.Effect<void, SmtpError> =>
      Effect.gen(function*() {
        if (closedWith !== undefined) return yield* Effect.fail(closedWith("starting TLS"))
        if (owed.length > 0 || unsolicited.length > 0 || decoder.buffered() > 0) {
          const error = injection()
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
        lastVerb = ""
        yield* startReader
      }).pipe(
        // interrupted half-way through the upgrade: neither plaintext nor TLS can go on
        Effect.onInterrupt(() => Effect.sync(() => terminate(disconnected())))
      )

    if (timers) {
      yield* Scope.addFinalizer(
        scope,
        Effect.sync(() => {
          timerOn = false
          cancelTimer?.()
        })
      )
      timerOn = true
      tick()
    } else {
      yield* Effect.forkIn(watchdog, scope)
    }

    return {
      // (made at each run: a group's wait is an `Async.once`)
      greeting: Effect.suspend(() =>
        Effect.flatMap(
          traced(greetingGroup),
          (batch) => batch.error === undefined ? Effect.succeed(batch.replies[0]) : Effect.fail(batch.error)
        )
      ),
      send,
      sendNow,
      onSettled,
      offSettled,
      exchange,
      command,
      expect,
      allowEarlyReplies: (count) => {
        earlyAllowance = count
      },
      endsWritten: () => endsWritten,
      registered: () => sent,
      writeData,
      writeCommands,
      startTls,
      close: Effect.sync(() => terminate(disconnected())),
      closeAfterQuit: Effect.sync(() =>
        terminate((during) => new SmtpServerDisconnected({ during: `${during}: the session was closed by quit` }))
      ),
      isClosed: () => closedWith !== undefined || broken !== undefined,
      failure: (during) => (closedWith ?? broken ?? disconnected())(during),
      desynchronised: () => desynchronised,
      isSecure: () => connection.secure,
      tlsDetails: () => connection.tls?.()
    } satisfies Engine
  })
