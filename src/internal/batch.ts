/**
 * Cross-message pipelining (RFC 2920 §3.1): a sequence of messages on one connection, the next
 * message's envelope in the same write as the previous message's end of data.
 *
 * - DATA: flight k+1 is `body(k) . CRLF` + `MAIL, RCPT..., DATA` of message k+1 (or, when message
 *   k's envelope failed, `RSET` + the next envelope): one round trip per message.
 * - BDAT (CHUNKING): every message is `RSET` (after the first), `MAIL, RCPT..., BDAT n LAST` + body,
 *   written without waiting, up to a window of messages in flight: about no round trip per message.
 *   The RSET puts the server back in its initial state whatever the previous message's outcome,
 *   since that outcome is not known yet when the next envelope is written.
 *
 * One outcome per message, in order: a refusal of one message never affects another, and after a
 * connection failure each message is `Unknown` when its end of data had been written, else `NotSent`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as SmtpConnection from "../SmtpConnection.js"
import { replyFields, SmtpDataError, type SmtpError, SmtpInvalidInput } from "../SmtpError.js"
import type { SmtpReply } from "../SmtpReply.js"
import * as Codec from "./command.js"
import type { Batch, Engine, Pending } from "./engine.js"
import * as MessageData from "./messageData.js"
import * as Streams from "./stream.js"
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

/** Messages written ahead with BDAT before the oldest reply is awaited. */
const BDAT_WINDOW = 32
/** Bytes written ahead with BDAT at most (the window closes earlier for large messages). */
const BDAT_WINDOW_BYTES = 1024 * 1024

const DATA = Either.getOrThrow(Codec.encode("DATA"))
const RSET = Either.getOrThrow(Codec.encode("RSET"))

type Outcome = SmtpConnection.BatchOutcome

const unknown = (index: number, error: SmtpError): Outcome => ({
  _tag: "Unknown",
  index,
  error: Transaction.deliveryUnknown(error)
})
const notSent = (index: number, error: SmtpError): Outcome => ({ _tag: "NotSent", index, error })

/** The envelope's replies ([MAIL, RCPT...]) decided as a transaction decides them; undefined while some are missing. */
const decideEnvelope = (entry: Entry, replies: ReadonlyArray<SmtpReply>) =>
  Transaction.decideEnvelope(entry.item.from, entry.prepared.recipients, replies, undefined)

/** The outcome of a message from its final reply. */
const finalOutcome = (index: number, refused: Record<string, SmtpReply>, reply: SmtpReply, verb: string): Outcome =>
  reply.code === 250 ?
    { _tag: "Sent", index, refused, reply } :
    { _tag: "Refused", index, error: new SmtpDataError(replyFields(reply, verb)) }

interface Entry {
  readonly index: number
  readonly item: SmtpConnection.BatchItem
  readonly prepared: Prepared
}

/**
 * The batch as a Stream of outcomes, pulled on demand: nothing is written ahead of what the
 * consumer asks for beyond one flight (DATA) or one window (BDAT), so memory stays bounded.
 */
export const run = <E, R>(
  ctx: BatchContext,
  items: Stream.Stream<SmtpConnection.BatchItem, E, R>
): Stream.Stream<Outcome, E | SmtpError, R> =>
  Streams.unwrapScoped(Effect.gen(function*() {
    const { engine } = ctx
    const pull = yield* Stream.toPull(items)
    let index = 0
    let inputDone = false
    /** Set when the connection failed: every later item is NotSent with it. */
    let dead: SmtpError | undefined
    /** What is in flight and must be settled if the consumer stops half-way. */
    let inFlight: Array<Pending> = []
    /** DATA was accepted (354) for the current message and its body is not written yet. */
    let dataOpen = false
    /** The current message (DATA): its envelope (with DATA) is in flight in `flight`, from `offset`. */
    let current: Entry | undefined

    // stopped half-way (the consumer had enough, or an interruption): with DATA, a message whose
    // envelope and DATA went out may have been answered 354, and then the server reads whatever
    // comes next as its data; ending it with an empty "." would deliver an empty message to the
    // recipients it accepted, so only closing the connection ends it. With BDAT every message in
    // flight is complete: reading the owed replies and RSET is enough.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (dataOpen || current !== undefined) return Effect.runSync(engine.close)
        if (inFlight.some((p) => !p.settled())) ctx.onInterrupted(ctx.rset)
      })
    )

    /** Items pulled and not yet taken, in order (a pull may bring several). */
    const pending: Array<SmtpConnection.BatchItem> = []
    /** The next pending item that can be sent; those that cannot become outcomes at once. */
    const takePending = (outcomes: Array<Outcome>): Entry | undefined => {
      while (pending.length > 0) {
        const item = pending.shift()!
        const i = index++
        if (dead !== undefined) {
          outcomes.push(notSent(i, dead))
          continue
        }
        const prepared = ctx.prepare(item)
        if (Either.isLeft(prepared)) {
          outcomes.push({ _tag: "NotSent", index: i, error: prepared.left })
          continue
        }
        return { index: i, item, prepared: prepared.right }
      }
      return undefined
    }
    /** The next item and its preparation, pulling the input when nothing is pending. */
    const nextEntry = (outcomes: Array<Outcome>): Effect.Effect<Entry | undefined, E, R> =>
      Effect.suspend(() => {
        const ready = takePending(outcomes)
        if (ready !== undefined || inputDone) return Effect.succeed(ready)
        return Effect.flatMap(
          Effect.catchAll(pull, (e) =>
            Option.match(e, {
              onNone: () => {
                inputDone = true
                return Effect.succeed(undefined)
              },
              onSome: (error) => Effect.fail(error)
            })),
          (chunk) => {
            if (chunk === undefined) return Effect.succeed(undefined)
            for (const item of chunk) pending.push(item)
            return nextEntry(outcomes)
          }
        )
      })

    /** After a failure of the connection: the rest of the input is NotSent. */
    const drainDead = (outcomes: Array<Outcome>) =>
      Effect.gen(function*() {
        while (true) {
          const entry = yield* nextEntry(outcomes)
          if (entry === undefined) return
          outcomes.push(notSent(entry.index, dead!))
        }
      })

    const envelopeOf = (entry: Entry): Array<Codec.Command> => [entry.prepared.mail, ...entry.prepared.rcpts]

    yield* ctx.greet

    // ---------------------------------------------------------------------------------------- DATA
    let flight: Batch | undefined
    let offset = 0
    let started = false

    const dataStep: Effect.Effect<Option.Option<ReadonlyArray<Outcome>>, E, R> = Effect.gen(function*() {
      const outcomes: Array<Outcome> = []
      if (!started) {
        started = true
        current = yield* nextEntry(outcomes)
        if (current !== undefined) {
          const sent = yield* Effect.either(engine.send([...envelopeOf(current), DATA]))
          if (Either.isLeft(sent)) {
            dead = sent.left
            outcomes.push(notSent(current.index, dead))
            current = undefined
            yield* drainDead(outcomes)
          } else {
            inFlight = [sent.right]
            flight = yield* sent.right.await
            offset = 0
          }
        }
        return Option.some(outcomes)
      }
      if (current === undefined) return outcomes.length > 0 ? Option.some(outcomes) : Option.none()
      const entry = current
      const batch = flight!
      const replies = batch.replies.slice(offset)
      const n = entry.prepared.recipients.length
      const decided = decideEnvelope(entry, replies)
      const dataReply = replies[n + 1]
      // the connection failed before the envelope's replies came: nothing of the body was written
      if (decided === undefined || (decided._tag === "Accepted" && dataReply === undefined)) {
        dead = batch.error!
        outcomes.push(notSent(entry.index, dead))
        current = undefined
        yield* drainDead(outcomes)
        return Option.some(outcomes)
      }
      // items read ahead that are already decided (invalid) come after this message's outcome
      const later: Array<Outcome> = []
      const following = yield* nextEntry(later)
      const commands: Array<Codec.Command> = []
      let endsAt = -1
      // RSET after a refusal unless the server is closing (421)
      const rset = decided._tag === "Failed" ? decided.rset : dataReply!.code !== 421
      if (decided._tag === "Accepted" && dataReply!.code === 354) {
        dataOpen = true
        commands.push(Codec.messageData(MessageData.dotStuffBytes(entry.prepared.bytes), 1))
        endsAt = 0
      } else {
        const error = decided._tag === "Failed" ? decided.error : new SmtpDataError(replyFields(dataReply!, "DATA"))
        outcomes.push({ _tag: "Refused", index: entry.index, error })
        // an accepted DATA for a failed envelope is ended empty (nobody receives it), then RSET
        if (dataReply?.code === 354) commands.push(Transaction.abandonDataCommand())
        if (rset) commands.push(RSET)
      }
      if (following !== undefined) commands.push(...envelopeOf(following), DATA)
      if (commands.length === 0) {
        current = undefined
        outcomes.push(...later)
        return Option.some(outcomes)
      }
      const sent = yield* Effect.either(engine.send(commands))
      dataOpen = false
      if (Either.isLeft(sent)) {
        // nothing could be written: the body was not sent either
        dead = sent.left
        if (endsAt === 0) outcomes.push(notSent(entry.index, dead))
        outcomes.push(...later)
        if (following !== undefined) outcomes.push(notSent(following.index, dead))
        current = undefined
        yield* drainDead(outcomes)
        return Option.some(outcomes)
      }
      inFlight = [sent.right]
      const result = yield* sent.right.await
      // replies: [final of this message] [abandon] [RSET] [next envelope...]
      let at = 0
      if (endsAt === 0) {
        const final = result.replies[0]
        outcomes.push(
          final === undefined ?
            unknown(entry.index, result.error!) :
            finalOutcome(entry.index, (decided as Transaction.Accepted).refused, final, "<end of data>")
        )
        at = 1
      } else {
        if (dataReply?.code === 354) at++
        if (rset) at++
      }
      outcomes.push(...later)
      current = following
      flight = result
      offset = at
      if (following !== undefined && result.replies.length <= at && result.error !== undefined) {
        dead = result.error
        outcomes.push(notSent(following.index, dead))
        current = undefined
        yield* drainDead(outcomes)
      }
      return Option.some(outcomes)
    })

    // ---------------------------------------------------------------------------------------- BDAT
    interface Written {
      readonly entry: Entry
      readonly pending: Pending
      readonly rset: boolean
      readonly bytes: number
    }
    /** A place in the window: a message written, or an outcome already known (kept in order). */
    type Slot = Written | { readonly decided: Outcome }
    const window: Array<Slot> = []
    let windowBytes = 0
    let first = true
    /** The last message written was refused: its transaction may still be open on the server. */
    let lastRefused = false

    const bdatOutcome = (w: Written, batch: Batch): Outcome => {
      const replies = w.rset ? batch.replies.slice(1) : batch.replies
      const decided = decideEnvelope(w.entry, replies)
      if (decided !== undefined && decided._tag === "Failed") {
        return { _tag: "Refused", index: w.entry.index, error: decided.error }
      }
      const final = replies[w.entry.prepared.recipients.length + 1]
      // BDAT LAST went out with the envelope: without its reply the outcome is unknown
      if (decided === undefined || final === undefined) {
        return unknown(w.entry.index, batch.error!)
      }
      return finalOutcome(w.entry.index, decided.refused, final, "BDAT")
    }

    const bdatStep: Effect.Effect<Option.Option<ReadonlyArray<Outcome>>, E, R> = Effect.gen(function*() {
      const outcomes: Array<Outcome> = []
      // fill the window
      while (dead === undefined && window.length < BDAT_WINDOW && windowBytes < BDAT_WINDOW_BYTES) {
        const decided: Array<Outcome> = []
        const entry = yield* nextEntry(decided)
        for (const outcome of decided) window.push({ decided: outcome })
        if (entry === undefined) break
        if (entry.prepared.bytes.length > Transaction.ONE_FLIGHT_LIMIT) {
          window.push({
            decided: {
              _tag: "NotSent",
              index: entry.index,
              error: new SmtpInvalidInput({
                reason:
                  `A message of a batch may be at most ${Transaction.ONE_FLIGHT_LIMIT} bytes with BDAT; send it with sendmail`
              })
            }
          })
          continue
        }
        const commands: Array<Codec.Command> = first ? [] : [RSET]
        commands.push(...envelopeOf(entry), Codec.bdat(MessageData.withFinalCrlf(entry.prepared.bytes), true))
        const sent = yield* Effect.either(engine.send(commands))
        if (Either.isLeft(sent)) {
          dead = sent.left
          window.push({ decided: notSent(entry.index, dead) })
          break
        }
        window.push({ entry, pending: sent.right, rset: !first, bytes: entry.prepared.bytes.length })
        inFlight.push(sent.right)
        windowBytes += entry.prepared.bytes.length
        first = false
      }
      // settle the oldest message
      const oldest = window.shift()
      if (oldest === undefined) {
        if (dead !== undefined) yield* drainDead(outcomes)
        else if (lastRefused && inputDone) {
          // the next operation on this connection must find no transaction open (a MAIL after a
          // refused BDAT LAST is a 503 "nested MAIL" on most servers), as after a refused sendmail
          lastRefused = false
          yield* ctx.rset
        }
        return outcomes.length > 0 || !inputDone ? Option.some(outcomes) : Option.none()
      }
      if ("decided" in oldest) {
        outcomes.push(oldest.decided)
        return Option.some(outcomes)
      }
      windowBytes -= oldest.bytes
      inFlight = inFlight.filter((p) => p !== oldest.pending)
      const batch = yield* oldest.pending.await
      const outcome = bdatOutcome(oldest, batch)
      lastRefused = outcome._tag === "Refused"
      outcomes.push(outcome)
      if (batch.error !== undefined) dead = batch.error
      if (dead !== undefined) {
        // the rest of the window went out too: each is decided by what came back, or unknown
        for (const w of window.splice(0)) {
          outcomes.push("decided" in w ? w.decided : bdatOutcome(w, yield* w.pending.await))
        }
        windowBytes = 0
        yield* drainDead(outcomes)
      }
      return Option.some(outcomes)
    })

    const step = ctx.chunking ? bdatStep : dataStep
    return Stream.repeatEffectOption(
      Effect.flatMap(
        Effect.mapError(step, Option.some),
        (o) => Option.isNone(o) ? Effect.fail(Option.none()) : Effect.succeed(o.value)
      )
    ).pipe(Stream.flattenIterables)
  }))
