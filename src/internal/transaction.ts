/**
 * One mail transaction (MAIL, RCPT..., then DATA or BDAT), with smtplib's results and errors,
 * over any of the wire strategies:
 *
 * - unpipelined: each command waits for its reply;
 * - pipelined (RFC 2920): MAIL, every RCPT and DATA in one write, the body after 354: 2 round trips;
 * - pipelined with CHUNKING (RFC 3030): MAIL, every RCPT and `BDAT n LAST` with a small message in
 *   one write: 1 round trip. A large or streamed message goes as BDAT chunks once RCPT is known.
 *
 * The decisions read the replies in command order, so every strategy gives the same results and
 * errors. In LMTP (RFC 2033) the end of data draws one reply per accepted recipient. Once an end
 * of data has been written, a failure of the connection is `SmtpDeliveryUnknown`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as Stream from "effect/Stream"
import {
  isSmtpError,
  replyFields,
  SmtpDataError,
  SmtpDeliveryUnknown,
  type SmtpError,
  SmtpRecipientsRefused,
  SmtpSenderRefused
} from "../SmtpError.js"
import type { SmtpReply } from "../SmtpReply.js"
import * as Arrays from "./arrays.js"
import * as Async from "./async.js"
import * as Codec from "./command.js"
import type { Batch, Engine, Pending } from "./engine.js"
import * as MessageData from "./messageData.js"
import * as Streams from "./stream.js"

/** A message up to this size rides in the first flight with BDAT; a larger one waits for RCPT. */
export const ONE_FLIGHT_LIMIT = 1024 * 1024
/** BDAT chunks of a streamed message are cut to at most this size. */
export const BDAT_CHUNK = 256 * 1024

export interface TransactionContext {
  readonly engine: Engine
  readonly lmtp: boolean
  readonly pipelining: boolean
  /** Use BDAT: CHUNKING advertised, allowed by the caller, and PIPELINING. */
  readonly chunking: boolean
  /** RSET after a failed transaction, failures ignored (smtplib's `_rset`). */
  readonly rset: Effect.Effect<void>
  /** Registers what the next operation must do first when this transaction is interrupted (undefined: nothing). */
  readonly onInterrupted: (recover: Effect.Effect<void> | undefined) => void
}

export interface Body<E, R> {
  readonly stream: Stream.Stream<Uint8Array, E, R>
  /** The whole message when it is already in memory. */
  readonly bytes: Uint8Array | undefined
}

export interface Outcome {
  /** Recipients refused at RCPT, address to reply. */
  readonly refused: Readonly<Record<string, SmtpReply>>
  /** The positions (in the recipient list) of those accepted at RCPT, in order. */
  readonly accepted: ReadonlyArray<number>
  /**
   * The replies to the end of data: SMTP one, LMTP one per accepted recipient in RCPT order. A
   * Left is a reply that never came (the connection dropped or timed out).
   */
  readonly finals: ReadonlyArray<Either.Either<SmtpReply, SmtpError>>
  /** What drew the end-of-data replies: `"<end of data>"` or `"BDAT"`. */
  readonly endCommand: string
}

const DATA = Either.getOrThrow(Codec.encode("DATA"))
const emptyData = new TextEncoder().encode(".\r\n")
/**
 * Turns a failure of the connection into `SmtpDeliveryUnknown` once an end of data has been
 * written since `since` (`engine.endsWritten()` before the transaction): from then on the server
 * may have accepted the message. Replies already decided (refusals) are not failures of this kind.
 */
export const unknownAfterEnd = (engine: Engine, since: number) => <E>(error: E): E | SmtpDeliveryUnknown => {
  if (engine.endsWritten() <= since || !isSmtpError(error)) return error
  switch (error._tag) {
    case "SmtpServerDisconnected":
    case "SmtpTimeout":
    case "SmtpProtocolError":
    case "SmtpResponseException":
    case "SmtpTlsError":
      return deliveryUnknown(error)
    default:
      return error
  }
}

/** A failure of the connection after an end of data went out, as `SmtpDeliveryUnknown`. */
export const deliveryUnknown = (error: SmtpError): SmtpDeliveryUnknown =>
  error._tag === "SmtpDeliveryUnknown" ? error : new SmtpDeliveryUnknown({
    during: error._tag === "SmtpServerDisconnected" ?
      error.during :
      error._tag === "SmtpTimeout" ?
      error.phase :
      "waiting for the final reply",
    cause: error
  })

/** Fails with a refusal, after RSET unless the server said it is closing (421) (smtplib's `_rset`). */
export const failAfterRset = (
  rset: Effect.Effect<void>,
  code: number,
  error: SmtpError
): Effect.Effect<never, SmtpError> => code === 421 ? Effect.fail(error) : Effect.zipRight(rset, Effect.fail(error))

/**
 * `failAfterRset` for a transaction that registered a recovery (`onInterrupted`): the recovery is
 * withdrawn (`done`) only once the RSET is over, so that an interruption before it leaves the RSET
 * to the next operation.
 */
const rsetThenFail = (
  ctx: TransactionContext,
  code: number,
  error: SmtpError,
  done: () => void
): Effect.Effect<never, SmtpError> => {
  if (code === 421) {
    done()
    return Effect.fail(error)
  }
  return Effect.zipRight(
    ctx.rset,
    Effect.suspend(() => {
      done()
      return Effect.fail(error)
    })
  )
}

/**
 * Whether the final reply leaves the transaction open on the server (a refusal, not a 421): the
 * caller RSETs; until then the recovery stays registered (see `rsetThenFail`).
 */
const refusedFinal = (finals: Batch, at: number): boolean => {
  const final = finals.replies[at]
  return final !== undefined && final.code !== 250 && final.code !== 421
}

/** The end of data that closes a DATA accepted for an envelope that failed: an empty message nobody receives. */
export const abandonDataCommand = (): Codec.Command => Codec.messageData(emptyData, 1)

/**
 * The end of data never went out: nothing can have been accepted. A reply that came during the
 * upload (552 too big, 421 closing) is the answer to the whole transaction; else the failure.
 */
const endNeverWritten = (ctx: TransactionContext, finals: Batch): Effect.Effect<never, SmtpError> => {
  const early = finals.replies[0]
  if (early === undefined) return Effect.fail(finals.error ?? ctx.engine.failure("writing the message data"))
  return failAfterRset(
    ctx.engine.isClosed() ? Effect.void : ctx.rset,
    early.code,
    new SmtpDataError(replyFields(early, "<end of data>"))
  )
}

/** The replies to the end of data, one per owed reply; a missing one is the failure, as unknown. */
const finalsOf = (
  batch: Batch,
  owed: number,
  unknown: (error: SmtpError) => SmtpError
): Array<Either.Either<SmtpReply, SmtpError>> => {
  const finals: Array<Either.Either<SmtpReply, SmtpError>> = Arrays.objectArray()
  for (let i = 0; i < owed; i++) {
    const reply = batch.replies[i]
    finals.push(reply !== undefined ? Either.right(reply) : Either.left(unknown(batch.error!)))
  }
  return finals
}

/**
 * A reply no command asked for came during the transaction: the replies matched before it may
 * belong to other commands (a stray 250 shifts them), so no success can be trusted.
 */
const trusted = (
  engine: Engine,
  unknown: (error: SmtpError) => SmtpError,
  outcome: Outcome
): Effect.Effect<Outcome, SmtpError> =>
  engine.desynchronised() ?
    Effect.fail(unknown(engine.failure("reading the final reply"))) :
    Effect.succeed(outcome)

/**
 * Writes message data after a 354 and returns the pending `replies` it draws: a message in memory
 * and not large is stuffed at once and written as one segment; anything else streams through the
 * dot-stuffing transform.
 */
export const writeMessageData = <E, R>(
  engine: Engine,
  body: Body<E, R>,
  replies: number
): Effect.Effect<Pending, SmtpError | E, R> =>
  body.bytes !== undefined && body.bytes.length <= ONE_FLIGHT_LIMIT ?
    engine.send([Codec.messageData(MessageData.dotStuffBytes(body.bytes), replies)]) :
    Effect.suspend(() => {
      const stuffed = MessageData.dotStuffParts(body.stream)
      return engine.writeData(stuffed.body, { owed: replies, label: "message data", end: stuffed.end })
    })

/**
 * A message as BDAT commands of BDAT_CHUNK bytes (small stream elements are gathered, large ones
 * cut, nothing is copied), the last one marked LAST. What is gathered waits for more, so the
 * chunk that ends the stream is the one marked LAST.
 */
const bdatCommands = <E, R>(stream: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Codec.Command, E, R> =>
  Stream.suspend(() => {
    let pending: Array<Uint8Array> = []
    let pendingBytes = 0
    return stream.pipe(
      Stream.mapConcat((chunk) => {
        const out: Array<Codec.Command> = []
        let offset = 0
        while (offset < chunk.length) {
          // a full chunk goes out only once more data exists: until then it may be the last
          if (pendingBytes === BDAT_CHUNK) {
            out.push(Codec.bdat(pending, false))
            pending = []
            pendingBytes = 0
          }
          const take = Math.min(BDAT_CHUNK - pendingBytes, chunk.length - offset)
          pending.push(chunk.subarray(offset, offset + take))
          pendingBytes += take
          offset += take
        }
        return out
      }),
      (commands) => Streams.concat(commands, Stream.suspend(() => Stream.succeed(Codec.bdat(pending, true))))
    )
  })

/** An envelope whose MAIL and at least one RCPT were accepted. */
export interface Accepted {
  readonly _tag: "Accepted"
  readonly refused: Record<string, SmtpReply>
  readonly accepted: Array<number>
}

/** The envelope decided from its replies, or why it failed. */
export type Envelope =
  | Accepted
  | {
    readonly _tag: "Failed"
    readonly error: SmtpError
    /** RSET after it (not after a 421 or a lost connection). */
    readonly rset: boolean
  }

/**
 * Reads the replies to MAIL and each RCPT, in order, from `replies` (those that came); `missing`
 * is the failure when a reply did not come. Pure.
 */
export const decideEnvelope = (
  from: string,
  recipients: ReadonlyArray<string>,
  replies: ReadonlyArray<SmtpReply>,
  missing: SmtpError | undefined
): Envelope | undefined => {
  const mail = replies[0]
  if (mail === undefined) return missing === undefined ? undefined : { _tag: "Failed", error: missing, rset: false }
  if (mail.code !== 250) {
    return {
      _tag: "Failed",
      error: new SmtpSenderRefused({ ...replyFields(mail, "MAIL"), sender: from }),
      rset: mail.code !== 421
    }
  }
  // per-message objects made with `new` and `Arrays`, not literals (see `perMessage`)
  const refused: Record<string, SmtpReply> = new Object() as Record<string, SmtpReply>
  const accepted: Array<number> = Arrays.objectArray()
  for (let i = 0; i < recipients.length; i++) {
    const reply = replies[i + 1]
    if (reply === undefined) {
      return missing === undefined ? undefined : { _tag: "Failed", error: missing, rset: false }
    }
    if (reply.code === 250 || reply.code === 251) accepted.push(i)
    else refused[recipients[i]] = reply
    if (reply.code === 421) {
      return { _tag: "Failed", error: new SmtpRecipientsRefused({ recipients: refused }), rset: false }
    }
  }
  if (accepted.length === 0) {
    return { _tag: "Failed", error: new SmtpRecipientsRefused({ recipients: refused }), rset: true }
  }
  return new AcceptedEnvelope(refused, accepted)
}

/**
 * Per-message objects (the accepted envelope, the transaction's command list, ...) are made with
 * `new` or `Arrays` (`internal/arrays.ts`) rather than literals: V8 may decide to allocate a literal's objects in the
 * old generation (allocation-site pretenuring, measured on this path), and an old object keeps the
 * young ones it points to alive at every scavenge until the next full collection, so a message's
 * whole object graph outlived the young generation. See bench/README.md ("Where the CPU still goes").
 */
class AcceptedEnvelope implements Accepted {
  readonly _tag = "Accepted"
  constructor(readonly refused: Record<string, SmtpReply>, readonly accepted: Array<number>) {}
}

export const run = <E, R>(
  ctx: TransactionContext,
  from: string,
  recipients: ReadonlyArray<string>,
  mail: Codec.Command,
  rcpts: ReadonlyArray<Codec.Command>,
  body: Body<E, R>
): Effect.Effect<Outcome, SmtpError | E, R> =>
  ctx.pipelining && body.bytes !== undefined && body.bytes.length <= ONE_FLIGHT_LIMIT ?
    !ctx.chunking ?
      pipelinedData(ctx, from, recipients, mail, rcpts, body.bytes) :
      !ctx.lmtp ?
      oneFlightBdat(ctx, from, recipients, mail, rcpts, body.bytes) :
      general(ctx, from, recipients, mail, rcpts, body) :
    general(ctx, from, recipients, mail, rcpts, body)

/** MAIL, every RCPT, then `last` (DATA, or BDAT LAST with the message): one write. */
const flight = (
  mail: Codec.Command,
  rcpts: ReadonlyArray<Codec.Command>,
  last: Codec.Command
): Array<Codec.Command> => {
  const commands: Array<Codec.Command> = Arrays.one(mail)
  for (const r of rcpts) commands.push(r)
  commands.push(last)
  return commands
}

/** A transaction's outcome: a class, not a literal (see `AcceptedEnvelope`). */
class TransactionOutcome implements Outcome {
  constructor(
    readonly refused: Readonly<Record<string, SmtpReply>>,
    readonly accepted: ReadonlyArray<number>,
    readonly finals: ReadonlyArray<Either.Either<SmtpReply, SmtpError>>,
    readonly endCommand: string
  ) {}
}

/**
 * SMTP with CHUNKING and a message in memory: MAIL, RCPT... and `BDAT n LAST` with the message
 * in one write, one round trip, one `Effect.async` when the transport's write hands the bytes over
 * at once (the replies are decided in the reader's callback). Every command is complete when
 * written: an interruption leaves only replies to read, and RSET (registered before the write)
 * settles them. The same results and errors as `general`'s one-flight BDAT.
 */
const oneFlightBdat = (
  ctx: TransactionContext,
  from: string,
  recipients: ReadonlyArray<string>,
  mail: Codec.Command,
  rcpts: ReadonlyArray<Codec.Command>,
  bytes: Uint8Array
): Effect.Effect<Outcome, SmtpError> =>
  Effect.suspend(() => {
    const { engine } = ctx
    const since = engine.endsWritten()
    const unknown = unknownAfterEnd(engine, since)
    const commands = flight(mail, rcpts, Codec.bdat(MessageData.withFinalCrlf(bytes), true))
    ctx.onInterrupted(ctx.rset)
    /** The replies came (or the connection failed): the outcome. */
    const done = () => ctx.onInterrupted(undefined)
    const outcome = (batch: Batch): Effect.Effect<Outcome, SmtpError> => {
      const decided = decideEnvelope(from, recipients, batch.replies, batch.error)
      if (decided === undefined) {
        done()
        return Effect.fail(unknown(batch.error!))
      }
      if (decided._tag === "Failed") {
        if (decided.rset) return rsetThenFail(ctx, 250, unknown(decided.error), done)
        done()
        return Effect.fail(unknown(decided.error))
      }
      // a refused final reply: the caller's RSET withdraws the recovery
      if (!refusedFinal(batch, recipients.length + 1)) done()
      const final = batch.replies[recipients.length + 1]
      const finals: Array<Either.Either<SmtpReply, SmtpError>> = Arrays.one(
        final !== undefined ? Either.right(final) : Either.left(unknown(batch.error!))
      )
      return trusted(engine, unknown, new TransactionOutcome(decided.refused, decided.accepted, finals, "BDAT"))
    }
    /** Through the Socket writer (a transport without a synchronous write): made only then. */
    const slow = () => Effect.flatMap(engine.send(commands), (p) => Effect.flatMap(p.await, outcome))
    // no canceler (see `pipelinedData`): when the fiber was interrupted while it waited, the
    // callback does nothing, and the RSET registered above reads what is owed
    return Effect.withFiberRuntime<Outcome, SmtpError>((fiber, status) =>
      Async.once<Outcome, SmtpError>((resume) => {
        const cancellable = RuntimeFlags.interruptible(status.runtimeFlags) && !interrupted(fiber)
        const sent = engine.sendNow(commands)
        if (sent === undefined) return resume(slow())
        if (!("pending" in sent)) {
          ctx.onInterrupted(undefined)
          return resume(Effect.fail(sent))
        }
        if (sent.written !== Effect.void) {
          return resume(Effect.zipRight(sent.written, Effect.flatMap(sent.pending.await, outcome)))
        }
        engine.onSettled(sent.pending, (batch) => {
          if (!(cancellable && interrupted(fiber))) resume(outcome(batch))
        })
      })
    )
  })

/**
 * The common case, as a short chain of callbacks: MAIL, RCPT... and DATA in one write, then the
 * message in memory and its end of data in one write. With a transport whose write hands the bytes
 * over when called, the whole exchange is one `Effect.async`: the message is written from the
 * reader's callback when the 354 comes, and the fiber resumes once, with the final reply. The
 * recovery from an interruption is registered before the first write and withdrawn when the
 * transaction ends, so an interruption needs no handler of its own (nothing can stop half-way
 * through a write: a send is one synchronous or uninterruptible step).
 */
const pipelinedData = (
  ctx: TransactionContext,
  from: string,
  recipients: ReadonlyArray<string>,
  mail: Codec.Command,
  rcpts: ReadonlyArray<Codec.Command>,
  bytes: Uint8Array
): Effect.Effect<Outcome, SmtpError> =>
  Effect.suspend(() => {
    const { engine } = ctx
    const since = engine.endsWritten()
    const unknown = unknownAfterEnd(engine, since)
    const commands = flight(mail, rcpts, DATA)
    let envelope: Pending | undefined
    let end: Pending | undefined
    const registeredBefore = engine.registered()
    // until the transaction ends, an interruption leaves this for the next operation: read what
    // is owed; if DATA was accepted and its data never went out, only closing can end it (and so
    // when the commands went out but the interruption came before their batch was noted)
    const recovery = Effect.suspend(() => {
      if (envelope === undefined) return engine.registered() > registeredBefore ? engine.close : ctx.rset
      if (end !== undefined) return ctx.rset
      return Effect.flatMap(envelope.await, (batch) => {
        const last = batch.replies[batch.replies.length - 1]
        return batch.error === undefined && batch.replies.length === commands.length && last.code === 354 ?
          engine.close :
          ctx.rset
      })
    })
    ctx.onInterrupted(recovery)
    const done = () => ctx.onInterrupted(undefined)
    const fail = (error: SmtpError) => {
      done()
      return Effect.fail(unknown(error))
    }
    /** The envelope's replies decided: the message data to write, or the transaction's end. */
    const decide = (batch: Batch): Codec.Command | Effect.Effect<Outcome, SmtpError> => {
      const decided = decideEnvelope(from, recipients, batch.replies, batch.error)
      const dataReply = batch.replies[commands.length - 1]
      if (decided === undefined) return fail(batch.error!)
      if (decided._tag === "Failed") {
        if (!decided.rset) return fail(decided.error)
        if (dataReply?.code !== 354) return rsetThenFail(ctx, 250, decided.error, done)
        // DATA is open for an envelope that failed: end it empty (no recipient), then RSET; an
        // interruption before that leaves only closing
        ctx.onInterrupted(engine.close)
        return Effect.zipRight(
          Effect.zipRight(Effect.ignore(engine.exchange([abandonDataCommand()])), ctx.rset),
          Effect.suspend(() => fail(decided.error))
        )
      }
      if (dataReply === undefined) return fail(batch.error!)
      if (dataReply.code !== 354) {
        return rsetThenFail(ctx, dataReply.code, new SmtpDataError(replyFields(dataReply, "DATA")), done)
      }
      accepted = decided
      return Codec.messageData(MessageData.dotStuffBytes(bytes), ctx.lmtp ? decided.accepted.length : 1)
    }
    let accepted: Accepted | undefined
    /** The replies to the end of data came: the outcome. */
    const outcome = (finals: Batch): Effect.Effect<Outcome, SmtpError> => {
      // a refused final reply (SMTP): the caller's RSET withdraws the recovery
      if (ctx.lmtp || !refusedFinal(finals, 0) || engine.endsWritten() <= since) done()
      if (engine.endsWritten() <= since) return endNeverWritten(ctx, finals)
      return trusted(engine, unknown, {
        refused: accepted!.refused,
        accepted: accepted!.accepted,
        finals: finalsOf(finals, ctx.lmtp ? accepted!.accepted.length : 1, unknown),
        endCommand: "<end of data>"
      })
    }
    /** The message data, written by the fiber. */
    const writeEnd = (data: Codec.Command): Effect.Effect<Outcome, SmtpError> =>
      Effect.flatMap(
        Effect.tapError(engine.send([data]), () => Effect.sync(done)),
        (e) => {
          end = e
          return Effect.flatMap(e.await, outcome)
        }
      )
    const afterEnvelope = (batch: Batch): Effect.Effect<Outcome, SmtpError> => {
      const next = decide(batch)
      return Effect.isEffect(next) ? next : writeEnd(next)
    }

    /** Through the Socket writer (a transport without a synchronous write): made only then. */
    const slow = () =>
      Effect.flatMap(engine.send(commands), (p) => {
        envelope = p
        return Effect.flatMap(p.await, afterEnvelope)
      })
    // No canceler: an `Effect.async` that returns one is wrapped in an interruption handler for
    // every message (and, measured, makes V8 keep each message's objects past the young
    // generation). The callbacks check instead whether the fiber was interrupted while it waited
    // (interruptibly, and not interrupted before): then they do nothing (no message data goes out;
    // the recovery settles what is owed). An interruption that the fiber has not processed yet is
    // the same race as with a canceler, which would run later: the data may go out, and `end`
    // tells the recovery.
    return Effect.withFiberRuntime<Outcome, SmtpError>((fiber, status) =>
      Async.once<Outcome, SmtpError>((resume) => {
        const cancellable = RuntimeFlags.interruptible(status.runtimeFlags) && !interrupted(fiber)
        const first = engine.sendNow(commands)
        if (first === undefined) return resume(slow())
        if (!("pending" in first)) {
          done()
          return resume(Effect.fail(first))
        }
        envelope = first.pending
        if (first.written !== Effect.void) {
          return resume(Effect.zipRight(first.written, Effect.flatMap(first.pending.await, afterEnvelope)))
        }
        // from the reader's callback: the message goes out as soon as the 354 is read
        engine.onSettled(first.pending, (batch) => {
          if (cancellable && interrupted(fiber)) return
          const next = decide(batch)
          if (Effect.isEffect(next)) return resume(next)
          const second = engine.sendNow([next])
          if (second === undefined) return resume(writeEnd(next))
          if (!("pending" in second)) {
            done()
            return resume(Effect.fail(second))
          }
          end = second.pending
          if (second.written !== Effect.void) {
            return resume(Effect.zipRight(second.written, Effect.flatMap(second.pending.await, outcome)))
          }
          engine.onSettled(second.pending, (finals) => {
            if (!(cancellable && interrupted(fiber))) resume(outcome(finals))
          })
        })
      })
    )
  })

/** Whether the fiber has been interrupted (the signal processed: it stays set). */
const interrupted = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean =>
  !Cause.isEmpty(fiber.getFiberRef(FiberRef.interruptedCause))

const general = <E, R>(
  ctx: TransactionContext,
  from: string,
  recipients: ReadonlyArray<string>,
  mail: Codec.Command,
  rcpts: ReadonlyArray<Codec.Command>,
  body: Body<E, R>
): Effect.Effect<Outcome, SmtpError | E, R> =>
  Effect.suspend(() => {
    const { engine } = ctx
    const since = engine.endsWritten()
    const unknown = unknownAfterEnd(engine, since)
    const oneFlight = ctx.chunking && body.bytes !== undefined && body.bytes.length <= ONE_FLIGHT_LIMIT
    const envelope: Array<Codec.Command> = [mail, ...rcpts]
    // LMTP with BDAT: the replies after the first to BDAT LAST may come before they are expected
    const earlyReplies = ctx.lmtp && ctx.chunking ? recipients.length - 1 : 0
    /** Batches written and maybe still owed replies: what an interruption must settle. */
    const inFlight: Array<Pending> = []
    const registeredBefore = engine.registered()
    /** Whether the last command in flight is DATA (an interruption must read whether it was accepted). */
    let dataInFlight = false
    /** DATA was answered 354 and the message is not fully written: only closing can end it now. */
    let dataOpen = false

    const sendTracked = (commands: ReadonlyArray<Codec.Command>) =>
      Effect.map(engine.send(commands), (p) => {
        inFlight.push(p)
        return p
      })
    /** After a failed envelope: end an accepted DATA, then RSET (smtplib's `_rset`, failures ignored). */
    const failEnvelope = (failed: Extract<Envelope, { _tag: "Failed" }>, dataAccepted: boolean) =>
      Effect.zipRight(
        failed.rset ?
          Effect.zipRight(
            dataAccepted ? Effect.ignore(engine.exchange([abandonDataCommand()])) : Effect.void,
            ctx.rset
          ) :
          Effect.void,
        Effect.fail(unknown(failed.error))
      )

    /** The envelope's replies (and DATA's, or one-flight BDAT's), pipelined or one at a time. */
    const envelopeReplies: Effect.Effect<Batch, SmtpError> = ctx.pipelining ?
      Effect.suspend(() => {
        const commands = ctx.chunking ?
          oneFlight ? [...envelope, Codec.bdat(MessageData.withFinalCrlf(body.bytes!), true)] : envelope :
          [...envelope, DATA]
        dataInFlight = !ctx.chunking
        return Effect.flatMap(sendTracked(commands), (p) => p.await)
      }) :
      Effect.gen(function*() {
        // one at a time: stop at the first decisive reply, as smtplib does
        const replies: Array<SmtpReply> = []
        const commands = [...envelope, DATA]
        for (let i = 0; i < commands.length; i++) {
          dataInFlight = i === commands.length - 1
          const batch = yield* Effect.flatMap(sendTracked([commands[i]]), (p) => p.await)
          if (batch.error !== undefined) return { replies, error: batch.error }
          replies.push(batch.replies[0])
          if (i < envelope.length) {
            const decided = decideEnvelope(from, recipients, replies, undefined)
            if (i === 0 && decided?._tag === "Failed") return { replies, error: undefined }
            if (i > 0 && replies[i].code === 421) return { replies, error: undefined }
            if (i === envelope.length - 1 && decided?._tag === "Failed") return { replies, error: undefined }
          }
        }
        return { replies, error: undefined }
      })

    return Effect.gen(function*() {
      if (earlyReplies > 0) engine.allowEarlyReplies(earlyReplies)
      const batch = yield* envelopeReplies
      const envelopeEnd = envelope.length
      const decided = decideEnvelope(from, recipients, batch.replies, batch.error)
      // the reply to DATA (or the one-flight BDAT), when it came
      const afterEnvelope = batch.replies[envelopeEnd]
      if (decided === undefined) return yield* Effect.fail(unknown(batch.error!))
      if (decided._tag === "Failed") {
        return yield* failEnvelope(decided, !ctx.chunking && afterEnvelope?.code === 354)
      }
      const { accepted, refused } = decided
      // LMTP: the end of data draws one reply per accepted recipient (RFC 2033 §4.2)
      const owedAtEnd = ctx.lmtp ? accepted.length : 1

      if (!ctx.chunking) {
        if (afterEnvelope === undefined) return yield* Effect.fail(unknown(batch.error!))
        if (afterEnvelope.code !== 354) {
          return yield* failAfterRset(
            ctx.rset,
            afterEnvelope.code,
            new SmtpDataError(replyFields(afterEnvelope, "DATA"))
          )
        }
        dataInFlight = false
        dataOpen = true
        const end = yield* Effect.mapError(writeMessageData(engine, body, owedAtEnd), unknown)
        dataOpen = false
        inFlight.push(end)
        const finals = yield* end.await
        if (engine.endsWritten() <= since) return yield* endNeverWritten(ctx, finals)
        return yield* trusted(engine, unknown, {
          refused,
          accepted,
          finals: finalsOf(finals, owedAtEnd, unknown),
          endCommand: "<end of data>"
        })
      }

      // BDAT: every chunk but the last must be accepted
      let last: Batch
      if (oneFlight) {
        last = { replies: batch.replies.slice(envelopeEnd), error: batch.error }
      } else {
        const chunks = yield* Effect.mapError(
          engine.writeCommands(bdatCommands(MessageData.ensureFinalCrlf(body.stream)), "message data (BDAT)"),
          unknown
        )
        inFlight.push(...chunks)
        // when the connection failed before BDAT LAST went out, every chunk written is read, and
        // then the transaction fails: no reply to a non-last chunk may be taken for the final one
        const lastWritten = engine.endsWritten() > since
        for (let i = 0; i < (lastWritten ? chunks.length - 1 : chunks.length); i++) {
          const chunk = yield* chunks[i].await
          if (chunk.error !== undefined) return yield* Effect.fail(unknown(chunk.error))
          const reply = chunk.replies[0]
          if (reply.code !== 250) {
            const rest = yield* Effect.forEach(chunks.slice(i + 1), (p) => p.await)
            // a server that refused a chunk and then accepted LAST took something: what, is unknown
            const lastReply = rest[rest.length - 1]?.replies[0]
            if (lastWritten && lastReply !== undefined && lastReply.code === 250) {
              return yield* Effect.fail(
                new SmtpDeliveryUnknown({ during: "a BDAT chunk was refused, then BDAT LAST was accepted" })
              )
            }
            return yield* failAfterRset(ctx.rset, reply.code, new SmtpDataError(replyFields(reply, "BDAT")))
          }
        }
        if (!lastWritten) return yield* Effect.fail(engine.failure("writing message data (BDAT)"))
        last = chunks.length === 0 ?
          { replies: [], error: undefined } :
          yield* chunks[chunks.length - 1].await
      }
      if (owedAtEnd > 1 && last.error === undefined) {
        // LMTP: the replies owed after the first reply to BDAT LAST (registered now, in order:
        // nothing else can be written meanwhile, and early arrivals wait in the engine)
        const extra = engine.expect("BDAT", owedAtEnd - 1)
        engine.allowEarlyReplies(0)
        inFlight.push(extra)
        const more = yield* extra.await
        last = { replies: [...last.replies, ...more.replies], error: more.error }
      }
      return yield* trusted(engine, unknown, {
        refused,
        accepted,
        finals: finalsOf(last, owedAtEnd, unknown),
        endCommand: "BDAT"
      })
    }).pipe(
      (effect) => earlyReplies === 0 ? effect : Effect.ensuring(effect, Effect.sync(() => engine.allowEarlyReplies(0))),
      // interrupted half-way: replies may be owed and DATA may be open; the next operation
      // settles that first: RSET, or closing when DATA was accepted (an interruption while data
      // was being written closes the connection at once)
      Effect.onInterrupt(() =>
        // DATA open, or LMTP with BDAT (how many replies LAST draws is known only from the RCPT
        // replies): the session cannot be brought back in step, so it is closed now
        dataOpen || (ctx.lmtp && ctx.chunking) ? engine.close : Effect.sync(() =>
          ctx.onInterrupted(
            // with no DATA in flight, owed replies need no reading: the engine matches them in order;
            // a batch that went out before it was noted may hold a DATA: only closing is safe then
            !dataInFlight ?
              ctx.rset :
              engine.registered() - registeredBefore > inFlight.length ?
              engine.close :
              Effect.forEach(inFlight, (p) => p.await).pipe(
                Effect.flatMap((batches) => {
                  // DATA was accepted and recipients may have been: any end of data now would
                  // deliver a message nobody asked for, and only closing the connection cancels it
                  const lastBatch = batches[batches.length - 1]
                  const lastReply = lastBatch?.replies[lastBatch.replies.length - 1]
                  const accepted = lastReply !== undefined && lastReply.code === 354 && lastBatch.error === undefined
                  return accepted ? engine.close : ctx.rset
                })
              )
          )
        )
      )
    )
  })
