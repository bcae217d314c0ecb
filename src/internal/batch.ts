/**
 * Cross-message pipelining (RFC 2920 §3.1): a sequence of messages on one connection, the next
 * message's envelope in the same write as the previous message's end of data.
 *
 * - DATA: flight k+1 is `body(k) . CRLF` + `MAIL, RCPT..., DATA` of message k+1 (or, when message
 *   k's envelope failed, `RSET` + the next envelope): one round trip per message.
 * - BDAT (CHUNKING): every message is `RSET` (after the first), `MAIL, RCPT..., BDAT n LAST` + body,
 *   written without waiting, several messages per write, up to a window of messages in flight:
 *   about no round trip per message. The RSET puts the server back in its initial state whatever
 *   the previous message's outcome, since that outcome is not known yet when the next envelope is
 *   written.
 *
 * One outcome per message, in order: a refusal of one message never affects another, and after a
 * connection failure each message is `Unknown` when its end of data had been written, else `NotSent`.
 * Outcomes are emitted in chunks: while replies are owed, of up to `WAKE_AT`.
 *
 * The batch is a state machine driven by the engine's reply callbacks (`engine.onSettled`): a
 * flight's replies are decided and the next flight is written in the reader's callback, with no
 * fiber step per message. The consuming fiber takes the outcomes decided so far (one suspension per
 * batch of replies at most), pulls a Stream's input, and performs what a callback cannot do at once
 * (a write through a transport whose write is an Effect, or the wait for a congested socket).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as SmtpConnection from "../SmtpConnection.js"
import { replyFields, SmtpDataError, type SmtpError, SmtpInvalidInput } from "../SmtpError.js"
import type { SmtpReply } from "../SmtpReply.js"
import * as Arrays from "./arrays.js"
import * as Codec from "./command.js"
import type { Batch, Engine, Pending } from "./engine.js"
import * as Iterators from "./iterators.js"
import * as MessageData from "./messageData.js"
import * as Transaction from "./transaction.js"

/** A message of a batch, validated and encoded. */
export interface Prepared {
  readonly recipients: ReadonlyArray<string>
  readonly mail: Codec.Command
  readonly rcpts: ReadonlyArray<Codec.Command>
  readonly bytes: Uint8Array
}

export interface BatchContext {
  readonly engine: Engine
  /** Use BDAT (CHUNKING and PIPELINING advertised, allowed by the caller). */
  readonly chunking: boolean
  /** EHLO (or HELO) when the session has not greeted yet. */
  readonly greet: Effect.Effect<void, SmtpError>
  /** Validates and encodes one item (after the greeting: options depend on the extensions). */
  readonly prepare: (item: SmtpConnection.BatchItem) => Either.Either<Prepared, SmtpError>
  /** Registers what the next operation must do first when the batch stops half-way. */
  readonly onInterrupted: (recover: Effect.Effect<void>) => void
  readonly rset: Effect.Effect<void>
}

/**
 * A Stream input shared with other batches (`Mailer.sendAll`'s queue of items) carries this: `poll`
 * takes its next item without waiting (`undefined`: none just now; the Stream, pulled, polls the
 * same way). The batch polls it from its reply callbacks, so that the next message rides with the
 * previous end of data as with an iterable (a pull is a fiber step: the writes split); and once
 * its connection has failed it takes nothing more (what is left is another connection's).
 */
export const SharedInput: unique symbol = Symbol.for("effect-smtp/internal/batch/SharedInput")

export interface SharedInput {
  readonly poll: () => SmtpConnection.BatchItem | undefined
  /** The batch's connection failed: it takes nothing more (a pull under way ends). */
  readonly close: () => void
  /**
   * The consumer is woken once this many outcomes are decided (instead of `WAKE_AT`): an owner
   * that gives more items only as outcomes are reported keeps its window moving.
   */
  readonly wakeAt: number
}

/** Messages written ahead with BDAT before the oldest reply is awaited. */
const BDAT_WINDOW = 64
/** Messages per BDAT write at most: several writes in flight keep the connection busy. */
const BDAT_GROUP = 16
/** Bytes written ahead with BDAT at most (the window closes earlier for large messages). */
const BDAT_WINDOW_BYTES = 1024 * 1024
/** Bytes of one BDAT write at most (messages are added while under it): one write of the socket. */
const BDAT_GROUP_BYTES = 60 * 1024
/** Outcomes decided and not yet taken by the consumer: beyond this, no new message is written. */
const AHEAD = 64
/**
 * Items taken whose outcome the consumer has not taken (in flight, decided behind one in flight, or
 * ready) at most: invalid items decided at once wait behind the messages in flight within it.
 */
const HELD = AHEAD + BDAT_WINDOW
/**
 * While replies are still owed, the consumer is woken once this many outcomes are decided (a wake
 * per message cost a third of the CPU of a DATA batch): outcomes come in chunks of up to this many.
 */
const WAKE_AT = 16

const DATA = Either.getOrThrow(Codec.encode("DATA"))
const RSET = Either.getOrThrow(Codec.encode("RSET"))

type Outcome = SmtpConnection.BatchOutcome

const unknown = (index: number, error: SmtpError): Outcome => ({
  _tag: "Unknown",
  index,
  error: Transaction.deliveryUnknown(error)
})
const notSent = (index: number, error: SmtpError): Outcome => ({ _tag: "NotSent", index, error })

/** The outcome of an item, once decided: kept in input order. */
class Slot {
  outcome: Outcome | undefined = undefined
}

/** An item that can be sent: its position, its slot and its commands. */
class Entry {
  /** DATA: the message dot-stuffed with its end of data, made ahead of its 354. */
  data: Codec.Command | undefined = undefined
  constructor(
    readonly index: number,
    readonly from: string,
    readonly prepared: Prepared,
    readonly slot: Slot
  ) {}
}

/** The envelope's replies ([MAIL, RCPT...]) decided as a transaction decides them; undefined while some are missing. */
const decideEnvelope = (entry: Entry, replies: ReadonlyArray<SmtpReply>) =>
  Transaction.decideEnvelope(entry.from, entry.prepared.recipients, replies, undefined)

const pushEnvelope = (commands: Array<Codec.Command>, entry: Entry) => {
  commands.push(entry.prepared.mail)
  for (const rcpt of entry.prepared.rcpts) commands.push(rcpt)
}

/** A BDAT write: its messages, in order, and what it holds of the window. */
class Group {
  pending: Pending | undefined = undefined
  constructor(
    readonly entries: ReadonlyArray<Entry>,
    /** Whether each message is preceded by RSET. */
    readonly rsets: ReadonlyArray<boolean>,
    readonly bytes: number
  ) {}
}

/** A DATA flight: its replies are [final of `ending`] [`skip`: abandon, RSET] [envelope of `opening`, DATA]. */
class Flight {
  pending: Pending | undefined = undefined
  constructor(
    /** The message whose end of data leads the flight. */
    readonly ending: Entry | undefined,
    /** Its recipients refused at RCPT. */
    readonly refused: Record<string, SmtpReply> | undefined,
    readonly skip: number,
    /** The message whose envelope and DATA close the flight. */
    readonly opening: Entry | undefined,
    /** It starts with the "." that abandons a DATA accepted for a failed envelope. */
    readonly abandons: boolean
  ) {}
}

/** A write the consuming fiber must make (the transport's write is an Effect, or several writes). */
interface DeferredWrite {
  readonly commands: ReadonlyArray<Codec.Command>
  readonly written: (pending: Pending) => void
  readonly failed: (error: SmtpError) => void
  /** It answers a 354 (a message's data, or the "." that abandons it): stopping before it leaves only closing. */
  readonly dataOpen: boolean
  /** It holds an envelope and DATA: once it may have gone out, a 354 may come. */
  readonly opens: boolean
}

/**
 * The batch as a pull of outcomes (`Stream.repeatEffectChunkOption` makes it the Stream), in
 * `scope` (the caller's): nothing new is written while the consumer leaves `AHEAD` outcomes untaken,
 * beyond one flight (DATA) or one window (BDAT), so memory stays bounded. Closing the Scope stops
 * the batch. `SmtpConnection.sendBatch` makes it one scoped Stream layer (each further layer adds
 * to what every batch pays when it ends); `sendBatchAll` pulls it in a loop, with no Stream.
 */
export const make = <E, R>(
  ctx: BatchContext,
  items: Iterable<SmtpConnection.BatchItem> | Stream.Stream<SmtpConnection.BatchItem, E, R>,
  scope: Scope.Scope
): Effect.Effect<Effect.Effect<Chunk.Chunk<Outcome>, Option.Option<E | SmtpError>, R>, SmtpError, R> =>
  Effect.gen(function*() {
    const { engine } = ctx
    // the input: an iterable is read synchronously (from the reply callbacks too), a Stream pulled
    const iterator = Stream.StreamTypeId in items ?
      undefined :
      new Iterators.Reader((items as Iterable<SmtpConnection.BatchItem>)[Symbol.iterator]())
    const pull = iterator === undefined ?
      yield* Scope.extend(Stream.toPull(items as Stream.Stream<SmtpConnection.BatchItem, E, R>), scope) :
      undefined
    const shared = iterator === undefined ?
      (items as { readonly [SharedInput]?: SharedInput })[SharedInput] :
      undefined
    /** A pull is under way (a pull made while it runs could take an item before the ones it brings). */
    let inPull = false
    const wakeAt = shared === undefined ? WAKE_AT : shared.wakeAt
    /** Items pulled from the Stream and not yet taken. */
    let pulled: ReadonlyArray<SmtpConnection.BatchItem> = []
    let pulledAt = 0
    let inputDone = false
    /** The iterator (or the validation of an item) threw: the stream dies with it, after what was taken. */
    let inputDefect: { readonly defect: unknown } | undefined
    /** The input Stream failed: the stream fails with it, after what was taken. */
    let inputFailure: { readonly error: E } | undefined
    /** A pull running beside the replies (something was in flight when it was needed). */
    let pulling: Fiber.RuntimeFiber<Chunk.Chunk<SmtpConnection.BatchItem>, Option.Option<E>> | undefined
    /** The machine wants more items and only a pull can bring them. */
    let needPull = false

    let index = 0
    /** Items taken whose outcome has not been emitted, in order (from `slotsAt`). */
    let slots: Array<Slot> = []
    let slotsAt = 0
    /** Outcomes decided, in order, not yet taken by the consumer. */
    let ready: Array<Outcome> = []
    /** Set when the connection failed: every later item is NotSent with it. */
    let dead: SmtpError | undefined
    /** The connection failed: a shared input is told (nothing more is taken from it). */
    const setDead = (error: SmtpError) => {
      dead = error
      shared?.close()
    }
    /** The consumer stopped (the stream's scope closed): callbacks do nothing more. */
    let stopped = false
    /** The consuming fiber, waiting for something to do. */
    let waiter: (() => void) | undefined
    /** Writes the fiber must make, in order (once one waits, every later write waits behind it). */
    const deferred: Array<DeferredWrite> = []
    /** The write the fiber is making: if it is interrupted, the bytes went out. */
    let writing: DeferredWrite | undefined
    const inFlight = () => ctx.chunking ? groups.length > 0 : flights.length > 0
    /** A write waits for the fiber, or the fiber is writing (several writes): the next must wait too. */
    const mustQueue = () => deferred.length > 0 || writing !== undefined

    /**
     * Whether the consumer has enough to take, or something to do, or nothing is owed (exactly what
     * `step` acts on before it waits, so that a wait never returns to find nothing to do).
     */
    const wanted = () =>
      ready.length >= wakeAt || deferred.length > 0 || (needPull && !inputDone && pulling === undefined) ||
      (!inFlight() && (pulling === undefined || ready.length > 0))
    const wake = () => {
      const w = waiter
      if (w !== undefined && wanted()) {
        waiter = undefined
        w()
      }
    }

    /** The next item of the input; `pull`: when a Stream's pulled items are used up, ask for a pull. */
    const nextItem = (pull = true): SmtpConnection.BatchItem | undefined => {
      // an item threw: nothing after it is taken
      if (inputDefect !== undefined) return undefined
      if (iterator !== undefined) {
        if (inputDone) return undefined
        try {
          const next = iterator.next()
          if (next.done === true) {
            inputDone = true
            return undefined
          }
          return next.value
        } catch (defect) {
          inputDefect = { defect }
          inputDone = true
          return undefined
        }
      }
      if (pulledAt < pulled.length) return pulled[pulledAt++]
      if (shared !== undefined && !inputDone && !inPull) {
        // a shared input: nothing more once the connection has failed
        if (dead !== undefined) {
          inputDone = true
          return undefined
        }
        const item = shared.poll()
        if (item !== undefined) return item
      }
      if (!inputDone && pull) needPull = true
      return undefined
    }

    /**
     * An item validated and encoded; undefined when it threw (a getter of a JavaScript caller's
     * item, say; what is not a BatchItem is refused as its outcome): a defect, after the outcomes
     * of what came before it.
     */
    const prepareItem = (item: SmtpConnection.BatchItem): Either.Either<Prepared, SmtpError> | undefined => {
      try {
        return ctx.prepare(item)
      } catch (defect) {
        inputDefect = { defect }
        inputDone = true
        return undefined
      }
    }

    /** The next item that can be sent; those that cannot are decided at once (their slots keep the order). */
    const take = (pull = true): Entry | undefined => {
      // (invalid items are decided at once, up to HELD items held: the consumer takes their outcomes first)
      while (ready.length + slots.length - slotsAt < HELD) {
        const item = nextItem(pull)
        if (item === undefined) return undefined
        const prepared = prepareItem(item)
        if (prepared === undefined) return undefined
        const slot = new Slot()
        slots.push(slot)
        const i = index++
        if (Either.isLeft(prepared)) {
          slot.outcome = notSent(i, prepared.left)
          continue
        }
        if (ctx.chunking && prepared.right.bytes.length > Transaction.ONE_FLIGHT_LIMIT) {
          slot.outcome = notSent(
            i,
            new SmtpInvalidInput({
              reason:
                `A message of a batch may be at most ${Transaction.ONE_FLIGHT_LIMIT} bytes with BDAT; send it with sendmail`
            })
          )
          continue
        }
        return new Entry(i, item.from, prepared.right, slot)
      }
      return undefined
    }

    /** Moves the decided outcomes at the head of the slots to `ready`. */
    const flush = () => {
      while (slotsAt < slots.length) {
        const outcome = slots[slotsAt].outcome
        if (outcome === undefined) break
        ready.push(outcome)
        slotsAt++
      }
      if (slotsAt === slots.length) {
        slots = []
        slotsAt = 0
      } else if (slotsAt > 1024) {
        slots = slots.slice(slotsAt)
        slotsAt = 0
      }
    }

    /** The outcome of a message from its final reply (not trusted after a stray reply). */
    const finalOutcome = (
      entry: Entry,
      refused: Record<string, SmtpReply>,
      reply: SmtpReply,
      verb: string
    ): Outcome => {
      if (reply.code !== 250) {
        return { _tag: "Refused", index: entry.index, error: new SmtpDataError(replyFields(reply, verb)) }
      }
      if (engine.desynchronised()) return unknown(entry.index, engine.failure("reading the final reply"))
      return { _tag: "Sent", index: entry.index, refused, reply }
    }

    /**
     * Writes commands: at once when the transport allows (then `written` runs now), else through
     * the consuming fiber, in order.
     */
    const write = (
      commands: ReadonlyArray<Codec.Command>,
      flags: { readonly dataOpen: boolean; readonly opens: boolean },
      written: (pending: Pending) => void,
      failed: (error: SmtpError) => void
    ): void => {
      const sent = mustQueue() ? undefined : engine.sendNow(commands)
      if (sent === undefined) {
        deferred.push({ commands, written, failed, dataOpen: flags.dataOpen, opens: flags.opens })
        return
      }
      if (!("pending" in sent)) return failed(sent)
      // the socket did not take the bytes at once: the wait for it ends the write's timeout; it
      // runs on its own (it ends when the socket drains or closes), so that no consumer has to
      if (sent.written !== Effect.void) Effect.runFork(sent.written)
      written(sent.pending)
    }

    // ---------------------------------------------------------------------------------------- DATA
    /** DATA flights in flight, oldest first. */
    const flights: Array<Flight> = []
    /** The flight whose envelope (and DATA) is in flight: its 354 may come, and then its data must follow. */
    let opened: Flight | undefined

    const writeFlight = (f: Flight, commands: ReadonlyArray<Codec.Command>) => {
      flights.push(f)
      if (f.opening !== undefined) opened = f
      write(commands, { dataOpen: f.ending !== undefined || f.abandons, opens: f.opening !== undefined }, (p) => {
        f.pending = p
        engine.onSettled(p, (batch) => settleFlight(f, batch))
      }, (error) => {
        // nothing could be written: the message's data did not go out either
        setDead(error)
        flights.splice(flights.indexOf(f), 1)
        if (opened === f) opened = undefined
        if (f.ending !== undefined) f.ending.slot.outcome = notSent(f.ending.index, error)
        if (f.opening !== undefined) f.opening.slot.outcome = notSent(f.opening.index, error)
      })
    }

    /**
     * The next message, taken, validated, encoded and dot-stuffed while a flight is in flight: when
     * the replies come, the reader's callback only decides and writes. From a Stream whose pulled
     * items are used up, the next chunk is pulled now, beside the replies (so that it is at hand
     * when the 354 comes, and the next envelope rides with this message's end of data).
     */
    let lookahead: Entry | undefined
    const prefetch = () => {
      if (lookahead !== undefined || stopped || dead !== undefined || ready.length >= AHEAD) return
      lookahead = take()
      if (lookahead !== undefined) {
        lookahead.data = Codec.messageData(MessageData.dotStuffBytes(lookahead.prepared.bytes), 1)
      }
    }
    const takeAhead = (): Entry | undefined => {
      const entry = lookahead ?? (ready.length < AHEAD ? take() : undefined)
      lookahead = undefined
      return entry
    }

    /** The next message's envelope and DATA, when no other envelope is in flight. */
    const pumpData = () => {
      if (opened !== undefined || mustQueue() || stopped || dead !== undefined || ready.length >= AHEAD) {
        return
      }
      const entry = takeAhead()
      if (entry !== undefined) {
        const commands: Array<Codec.Command> = Arrays.objectArray()
        pushEnvelope(commands, entry)
        commands.push(DATA)
        writeFlight(new Flight(undefined, undefined, 0, entry, false), commands)
        prefetch()
      }
      flush()
    }

    const settleFlight = (f: Flight, batch: Batch): void => {
      flights.splice(flights.indexOf(f), 1)
      if (opened === f) opened = undefined
      if (stopped) return
      let at = f.skip
      if (f.ending !== undefined) {
        const final = batch.replies[0]
        // without its final reply: unknown once its end of data went out, else not sent (the
        // write of its data failed before it)
        f.ending.slot.outcome = final === undefined ?
          (engine.endsWritten() > f.pending!.endsBefore ? unknown : notSent)(f.ending.index, batch.error!) :
          finalOutcome(f.ending, f.refused!, final, "<end of data>")
        at++
      }
      const entry = f.opening
      const commands: Array<Codec.Command> = Arrays.objectArray()
      let ending: Entry | undefined
      let refused: Record<string, SmtpReply> | undefined
      let skip = 0
      let abandons = false
      if (entry !== undefined) {
        const replies = at === 0 ? batch.replies : batch.replies.slice(at)
        const decided = decideEnvelope(entry, replies)
        const dataReply = replies[entry.prepared.recipients.length + 1]
        if (decided === undefined || (decided._tag === "Accepted" && dataReply === undefined)) {
          // the connection failed before the envelope's replies came: nothing of the body was written
          entry.slot.outcome = notSent(entry.index, batch.error!)
        } else if (decided._tag === "Accepted" && dataReply!.code === 354) {
          commands.push(entry.data ?? Codec.messageData(MessageData.dotStuffBytes(entry.prepared.bytes), 1))
          entry.data = undefined
          ending = entry
          refused = decided.refused
        } else {
          entry.slot.outcome = {
            _tag: "Refused",
            index: entry.index,
            error: decided._tag === "Failed" ? decided.error : new SmtpDataError(replyFields(dataReply!, "DATA"))
          }
          // an accepted DATA for a failed envelope is ended empty (nobody receives it), then RSET
          // unless the server is closing (421)
          if (dataReply?.code === 354) {
            commands.push(Transaction.abandonDataCommand())
            abandons = true
            skip++
          }
          if (decided._tag === "Failed" ? decided.rset : dataReply!.code !== 421) {
            commands.push(RSET)
            skip++
          }
        }
      }
      if (batch.error !== undefined && dead === undefined) setDead(batch.error)
      if (dead === undefined) {
        // one envelope in flight at a time: another one (written while only an end of data was in
        // flight) is answered first, and its message's data must come right after its 354
        const following = opened === undefined ? takeAhead() : undefined
        if (following !== undefined) {
          pushEnvelope(commands, following)
          commands.push(DATA)
        }
        if (commands.length > 0) writeFlight(new Flight(ending, refused, skip, following, abandons), commands)
        if (following !== undefined) prefetch()
      }
      flush()
      wake()
    }

    // ---------------------------------------------------------------------------------------- BDAT
    /** BDAT writes in flight, oldest first. */
    const groups: Array<Group> = []
    let windowMessages = 0
    let windowBytes = 0
    let first = true
    /** Taken and not yet written (it did not fit in the last write). */
    let carried: Entry | undefined
    /** The last message written was refused: its transaction may still be open on the server. */
    let lastRefused = false

    const bdatOutcome = (
      entry: Entry,
      replies: ReadonlyArray<SmtpReply>,
      error: SmtpError | undefined,
      /** Its `BDAT ... LAST` went out (a write before it may have failed: a large message goes in several). */
      ended: boolean
    ): Outcome => {
      const decided = decideEnvelope(entry, replies)
      if (decided !== undefined && decided._tag === "Failed") {
        return { _tag: "Refused", index: entry.index, error: decided.error }
      }
      const final = replies[entry.prepared.recipients.length + 1]
      // without its reply the outcome is unknown once BDAT LAST went out, else not sent
      if (decided === undefined || final === undefined) return (ended ? unknown : notSent)(entry.index, error!)
      return finalOutcome(entry, decided.refused, final, "BDAT")
    }

    const pumpBdat = () => {
      while (
        !mustQueue() && !stopped && dead === undefined && ready.length < AHEAD &&
        windowMessages < BDAT_WINDOW && windowBytes < BDAT_WINDOW_BYTES
      ) {
        const entries: Array<Entry> = Arrays.objectArray()
        const rsets: Array<boolean> = Arrays.objectArray()
        const commands: Array<Codec.Command> = Arrays.objectArray()
        let bytes = 0
        while (entries.length < BDAT_GROUP && windowMessages + entries.length < BDAT_WINDOW) {
          const entry = carried ?? take()
          carried = undefined
          if (entry === undefined) break
          const size = entry.prepared.bytes.length
          // (a message alone in the window always goes: it is at most ONE_FLIGHT_LIMIT)
          if (
            (entries.length > 0 && bytes + size > BDAT_GROUP_BYTES) ||
            (windowBytes + bytes > 0 && windowBytes + bytes + size > BDAT_WINDOW_BYTES)
          ) {
            carried = entry
            break
          }
          if (!first) commands.push(RSET)
          rsets.push(!first)
          first = false
          pushEnvelope(commands, entry)
          commands.push(Codec.bdat(MessageData.withFinalCrlf(entry.prepared.bytes), true))
          entries.push(entry)
          bytes += size
        }
        flush()
        if (entries.length === 0) return
        const group = new Group(entries, rsets, bytes)
        groups.push(group)
        windowMessages += entries.length
        windowBytes += bytes
        write(commands, { dataOpen: false, opens: false }, (p) => {
          group.pending = p
          engine.onSettled(p, (batch) => settleGroup(group, batch))
        }, (error) => {
          // nothing could be written
          setDead(error)
          groups.splice(groups.indexOf(group), 1)
          windowMessages -= entries.length
          windowBytes -= bytes
          for (const entry of entries) entry.slot.outcome = notSent(entry.index, error)
          flush()
        })
      }
    }

    const settleGroup = (group: Group, batch: Batch): void => {
      groups.splice(groups.indexOf(group), 1)
      windowMessages -= group.entries.length
      windowBytes -= group.bytes
      if (stopped) return
      // how many of its messages' BDAT LAST went out (see `Pending.endsBefore`)
      const ended = engine.endsWritten() - group.pending!.endsBefore
      let at = 0
      for (let i = 0; i < group.entries.length; i++) {
        const entry = group.entries[i]
        if (group.rsets[i]) at++
        const owed = entry.prepared.recipients.length + 2
        const outcome = bdatOutcome(entry, batch.replies.slice(at, at + owed), batch.error, i < ended)
        at += owed
        entry.slot.outcome = outcome
        lastRefused = outcome._tag === "Refused"
      }
      if (batch.error !== undefined) setDead(batch.error)
      flush()
      pumpBdat()
      wake()
    }

    // ------------------------------------------------------------------------------------ the fiber
    const pump = ctx.chunking ? pumpBdat : pumpData

    // stopped half-way (the consumer had enough, or an interruption): with DATA, a message whose
    // envelope and DATA went out may have been answered 354, and then the server reads whatever
    // comes next as its data; ending it with an empty "." would deliver an empty message to the
    // recipients it accepted, so only closing the connection ends it. With BDAT every message in
    // flight is complete: reading the owed replies and RSET is enough.
    // A write the fiber was making when it stopped went out (an interrupted `send` completes).
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        stopped = true
        waiter = undefined
        // an iterable read part of the way is closed (a generator's finally runs), as a for...of
        // left by break or by an exception of its body (an item's getter that threw)
        iterator?.close()
        const mayBeOpen = (opened !== undefined && opened.pending !== undefined) ||
          (writing !== undefined && (writing.opens || writing.dataOpen)) ||
          deferred.some((d) => d.dataOpen)
        if (mayBeOpen) return Effect.runSync(engine.close)
        if (inFlight() || writing !== undefined || lastRefused) ctx.onInterrupted(ctx.rset)
      })
    )

    yield* ctx.greet

    const done: Effect.Effect<never, Option.Option<never>> = Effect.fail(Option.none())
    // (the fiber may yield between its last look and this registration: a callback that ran
    // meanwhile found no waiter to wake, so the registration looks again)
    const wait: Effect.Effect<void> = Effect.async<void>((resume) => {
      if (wanted()) return resume(Effect.void)
      waiter = () => resume(Effect.void)
    })
    /** A pull's result, from the fiber or from a pull running beside the replies. */
    const pulledChunk = (exit: Exit.Exit<Chunk.Chunk<SmtpConnection.BatchItem>, Option.Option<E>>) => {
      inPull = false
      if (stopped || Exit.isInterrupted(exit)) return
      // the pull answers the need; items not taken yet (a need noted while it ran) stay first
      needPull = false
      if (Exit.isSuccess(exit)) {
        const chunk = Chunk.toReadonlyArray(exit.value)
        pulled = pulledAt < pulled.length ? [...pulled.slice(pulledAt), ...chunk] : chunk
        pulledAt = 0
        if (dead !== undefined) drainDead()
        else {
          pump()
          if (!ctx.chunking && opened !== undefined) prefetch()
        }
        return
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) {
        if (Option.isSome(failure.value)) inputFailure = { error: failure.value.value }
        inputDone = true
      } else {
        inputDefect = { defect: Cause.squash(exit.cause) }
        inputDone = true
      }
    }

    /** The next outcomes: what is decided, after doing what the machine cannot do alone. */
    const step: Effect.Effect<Chunk.Chunk<Outcome>, Option.Option<E | SmtpError>, R> = Effect.suspend(() => {
      if (deferred.length > 0) {
        const d = deferred.shift()!
        writing = d
        return Effect.flatMap(Effect.either(engine.send(d.commands)), (sent) => {
          writing = undefined
          if (Either.isLeft(sent)) d.failed(sent.left)
          else d.written(sent.right)
          flush()
          pump()
          return step
        })
      }
      if (ready.length > 0) {
        const outcomes = ready
        ready = []
        pump()
        return Effect.succeed(Chunk.unsafeFromArray(outcomes))
      }
      if (needPull && pulledAt < pulled.length) needPull = false
      if (needPull && !inputDone && pulling === undefined) {
        needPull = false
        inPull = true
        // nothing in flight: the fiber pulls; else the pull runs beside the replies, so that
        // neither the outcomes nor a message's data after its 354 wait for the input
        if (!inFlight()) {
          return Effect.flatMap(Effect.exit(pull!), (exit) => {
            pulledChunk(exit)
            return step
          })
        }
        return Effect.flatMap(Effect.forkIn(pull!, scope), (fiber) => {
          pulling = fiber
          fiber.addObserver((exit) => {
            pulling = undefined
            pulledChunk(exit)
            flush()
            const w = waiter
            waiter = undefined
            w?.()
          })
          return step
        })
      }
      if (inFlight() || pulling !== undefined) return Effect.zipRight(wait, step)
      if (dead !== undefined && (!inputDone || carried !== undefined || lookahead !== undefined)) {
        drainDead()
        return step
      }
      if (inputDone && carried === undefined && lookahead === undefined) {
        if (lastRefused && dead === undefined) {
          // the next operation on this connection must find no transaction open (a MAIL after a
          // refused BDAT LAST is a 503 "nested MAIL" on most servers), as after a refused sendmail
          // (cleared once it is over: stopped before, the finalizer leaves it to the next operation)
          return Effect.zipRight(
            ctx.rset,
            Effect.suspend(() => {
              lastRefused = false
              return step
            })
          )
        }
        // the input failed (or threw): what was taken before has its outcome, then the failure
        if (inputDefect !== undefined) return Effect.die(inputDefect.defect)
        if (inputFailure !== undefined) return Effect.fail(Option.some<E | SmtpError>(inputFailure.error))
        return done
      }
      pump()
      if (inFlight() || ready.length > 0 || deferred.length > 0 || needPull || inputDone) return step
      return Effect.dieMessage("sendBatch: the batch stalled (a bug of effect-smtp)")
    })

    /**
     * After a failure of the connection: the input is NotSent, `AHEAD` items at a time, each with
     * the connection's failure, or with its own when it is invalid (sending it again would not do).
     */
    const drainDead = () => {
      for (const entry of [carried, lookahead]) {
        if (entry !== undefined) entry.slot.outcome = notSent(entry.index, dead!)
      }
      carried = undefined
      lookahead = undefined
      for (let n = 0; n < AHEAD; n++) {
        const item = nextItem()
        if (item === undefined) break
        const prepared = prepareItem(item)
        if (prepared === undefined) break
        const slot = new Slot()
        slot.outcome = notSent(index++, Either.isLeft(prepared) ? prepared.left : dead!)
        slots.push(slot)
      }
      flush()
    }

    return step
  })
