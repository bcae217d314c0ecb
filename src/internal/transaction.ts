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
 * errors. In LMTP (RFC 2033) the end of data draws one reply per accepted recipient.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
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
import * as Codec from "./command.js"
import type { Awaiter, Engine } from "./engine.js"
import * as MessageData from "./messageData.js"

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
  /** Registers what the next operation must do first when this transaction is interrupted. */
  readonly onInterrupted: (recover: Effect.Effect<void>) => void
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

/**
 * Turns a failure of the connection into `SmtpDeliveryUnknown` once an end of data has been
 * written since `since` (`engine.endsWritten()` before the transaction): from then on the server
 * may have accepted the message. Replies already decided (refusals) are not failures of this kind.
 */
export const unknownAfterEnd = (engine: Engine, since: number) => <E>(error: E): E | SmtpDeliveryUnknown => {
  if (engine.endsWritten() <= since || !isSmtpError(error)) return error
  switch (error._tag) {
    case "SmtpServerDisconnected":
      return new SmtpDeliveryUnknown({ during: error.during, cause: error })
    case "SmtpTimeout":
      return new SmtpDeliveryUnknown({ during: error.phase, cause: error })
    case "SmtpProtocolError":
    case "SmtpResponseException":
    case "SmtpTlsError":
      return new SmtpDeliveryUnknown({ during: "waiting for the final reply", cause: error })
    default:
      return error
  }
}

const emptyData = new TextEncoder().encode(".\r\n")

/**
 * Writes message data after a 354 and returns the awaiters of the `replies` it draws: a message
 * in memory and not large is stuffed at once and written as one segment; anything else streams
 * through the dot-stuffing transform.
 */
export const writeMessageData = <E, R>(
  engine: Engine,
  body: Body<E, R>,
  replies: number
): Effect.Effect<ReadonlyArray<Awaiter>, SmtpError | E, R> =>
  body.bytes !== undefined && body.bytes.length <= ONE_FLIGHT_LIMIT ?
    engine.pipeline([Codec.messageData(MessageData.dotStuffBytes(body.bytes), replies)]) :
    Effect.suspend(() => {
      const stuffed = MessageData.dotStuffParts(body.stream)
      return engine.writeData(stuffed.body, {
        owed: Array.from({ length: replies }, () => "<end of data>"),
        label: "message data",
        end: stuffed.end
      })
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
      Stream.concat(Stream.suspend(() => Stream.make(Codec.bdat(pending, true))))
    )
  })

/**
 * The replies to the commands, one at a time. Pipelined: written at once by `start`; otherwise
 * each is written when its reply is asked for. Writes are uninterruptible so that no owed reply
 * goes untracked.
 */
const replySource = (
  engine: Engine,
  commands: ReadonlyArray<Codec.Command>,
  pipelined: boolean,
  classify: (error: SmtpError) => SmtpError
) => {
  const awaiters: Array<Awaiter> = []
  let consumed = 0
  const write = (batch: ReadonlyArray<Codec.Command>) =>
    Effect.uninterruptible(Effect.map(engine.pipeline(batch), (a) => {
      awaiters.push(...a)
    }))
  const start: Effect.Effect<void, SmtpError> = pipelined ? write(commands) : Effect.void
  const next: Effect.Effect<SmtpReply, SmtpError> = Effect.gen(function*() {
    if (awaiters.length <= consumed) yield* write([commands[awaiters.length]])
    const reply = yield* Effect.mapError(awaiters[consumed], classify)
    consumed++
    return reply
  })
  /** Reads every reply still owed; true when the last command was DATA and it was answered 354. */
  const drainDataAccepted: Effect.Effect<boolean> = Effect.suspend(() => {
    const rest = awaiters.slice(consumed)
    consumed = awaiters.length
    // with no DATA in flight, owed replies need no reading: the engine matches them in order
    if (awaiters.length < commands.length || commands[commands.length - 1].verb !== "DATA") {
      return Effect.succeed(false)
    }
    return Effect.forEach(rest, Effect.option).pipe(
      Effect.map((replies) => {
        const last = replies[replies.length - 1]
        return last !== undefined && Option.isSome(last) && last.value.code === 354
      })
    )
  })
  return { start, next, drainDataAccepted }
}

export const run = <E, R>(
  ctx: TransactionContext,
  from: string,
  recipients: ReadonlyArray<string>,
  mail: Codec.Command,
  rcpts: ReadonlyArray<Codec.Command>,
  body: Body<E, R>
): Effect.Effect<Outcome, SmtpError | E, R> =>
  Effect.suspend(() => {
    const { engine } = ctx
    const oneFlight = ctx.chunking && body.bytes !== undefined && body.bytes.length <= ONE_FLIGHT_LIMIT
    const commands: Array<Codec.Command> = [mail, ...rcpts]
    if (!ctx.chunking) commands.push(DATA)
    if (oneFlight) commands.push(Codec.bdat(MessageData.withFinalCrlf(body.bytes!), true))
    const unknown = unknownAfterEnd(engine, engine.endsWritten())
    const replies = replySource(engine, commands, ctx.pipelining, unknown)
    // LMTP with BDAT: the replies after the first to BDAT LAST may come before they are expected
    const earlyReplies = ctx.lmtp && ctx.chunking ? recipients.length - 1 : 0
    /** DATA was answered 354 and the message is not fully written: only closing can end it now. */
    let dataOpen = false

    /** Ends a DATA the server accepted although the transaction failed, with an empty message. */
    const abandonData = engine.pipeline([Codec.messageData(emptyData, 1)]).pipe(
      Effect.flatMap(([a]) => a),
      Effect.ignore
    )
    const settle = replies.drainDataAccepted.pipe(Effect.flatMap((accepted) => (accepted ? abandonData : Effect.void)))
    const failAfterRset = (error: SmtpError) => Effect.zipRight(Effect.zipRight(settle, ctx.rset), Effect.fail(error))
    /** 421 closed the connection: no RSET. Otherwise RSET, as smtplib. */
    const failWith = (reply: SmtpReply, error: SmtpError) =>
      reply.code === 421 ? Effect.fail(error) : failAfterRset(error)

    return Effect.gen(function*() {
      if (earlyReplies > 0) engine.allowEarlyReplies(earlyReplies)
      yield* replies.start
      const mailReply = yield* replies.next
      if (mailReply.code !== 250) {
        return yield* failWith(mailReply, new SmtpSenderRefused({ ...replyFields(mailReply, "MAIL"), sender: from }))
      }
      const refused: Record<string, SmtpReply> = {}
      const accepted: Array<number> = []
      for (let i = 0; i < recipients.length; i++) {
        const reply = yield* replies.next
        if (reply.code === 250 || reply.code === 251) accepted.push(i)
        else refused[recipients[i]] = reply
        if (reply.code === 421) return yield* Effect.fail(new SmtpRecipientsRefused({ recipients: refused }))
      }
      if (accepted.length === 0) return yield* failAfterRset(new SmtpRecipientsRefused({ recipients: refused }))
      // LMTP: the end of data draws one reply per accepted recipient (RFC 2033 §4.2)
      const owedAtEnd = ctx.lmtp ? accepted.length : 1

      let endAwaiters: ReadonlyArray<Awaiter>
      let endCommand: string
      if (!ctx.chunking) {
        const dataReply = yield* replies.next
        if (dataReply.code !== 354) return yield* failWith(dataReply, new SmtpDataError(replyFields(dataReply, "DATA")))
        dataOpen = true
        endCommand = "<end of data>"
        endAwaiters = yield* writeMessageData(engine, body, owedAtEnd)
        dataOpen = false
      } else {
        endCommand = "BDAT"
        let chunkAwaiters: ReadonlyArray<Awaiter>
        if (oneFlight) {
          chunkAwaiters = []
        } else {
          chunkAwaiters = yield* engine.writeCommands(
            bdatCommands(MessageData.ensureFinalCrlf(body.stream)),
            "message data (BDAT)"
          )
        }
        // every chunk but the last must be accepted
        for (let i = 0; i < chunkAwaiters.length - 1; i++) {
          const reply = yield* Effect.mapError(chunkAwaiters[i], unknown)
          if (reply.code !== 250) {
            yield* Effect.forEach(chunkAwaiters.slice(i + 1), Effect.option, { discard: true })
            return yield* failWith(reply, new SmtpDataError(replyFields(reply, "BDAT")))
          }
        }
        // LMTP: the replies owed after the first reply to BDAT LAST (registered now, in order:
        // nothing else can be written meanwhile, and early arrivals wait in the engine)
        const extra = yield* Effect.forEach(Array.from({ length: owedAtEnd - 1 }), () => engine.expect("BDAT"))
        engine.allowEarlyReplies(0)
        endAwaiters = [oneFlight ? replies.next : chunkAwaiters[chunkAwaiters.length - 1], ...extra]
      }
      const finals: Array<Either.Either<SmtpReply, SmtpError>> = []
      for (const awaiter of endAwaiters) {
        // after a lost reply the rest cannot come either: they stay unknown
        if (finals.length > 0 && Either.isLeft(finals[finals.length - 1])) finals.push(finals[finals.length - 1])
        else finals.push(Either.mapLeft(yield* Effect.either(awaiter), unknown))
      }
      return { refused, accepted, finals, endCommand } satisfies Outcome
    }).pipe(
      // a write that failed after the end of data went out: the outcome is unknown too
      Effect.mapError(unknown),
      Effect.ensuring(Effect.sync(() => {
        if (earlyReplies > 0) engine.allowEarlyReplies(0)
      })),
      // interrupted half-way: replies may be owed and DATA may be open; the next operation
      // settles that first: RSET, or closing when DATA was accepted (an interruption while data
      // was being written closes the connection at once)
      Effect.onInterrupt(() =>
        // DATA open, or LMTP with BDAT (how many replies LAST draws is known only from the RCPT
        // replies): the session cannot be brought back in step, so it is closed now
        dataOpen || (ctx.lmtp && ctx.chunking) ? engine.close : Effect.sync(() =>
          ctx.onInterrupted(
            replies.drainDataAccepted.pipe(
              // DATA was accepted and recipients may have been: any end of data now would deliver
              // a message nobody asked for, and only closing the connection cancels it
              Effect.flatMap((accepted) => (accepted ? engine.close : ctx.rset))
            )
          )
        )
      )
    )
  })
