/**
 * A pooled sender, what an application provides as a Layer: connections are opened on demand up
 * to a limit, reused, replaced when they die, closed when idle; transient failures are retried;
 * the sending rate can be capped. Built from the public session API, as a user would build it.
 *
 * ```ts
 * const MailerLive = Mailer.layer({ host: "smtp.example.com", port: 587, security: "starttls", maxConnections: 4 })
 *   .pipe(Layer.provide(NodeSmtpTransport.layer))
 * const program = Effect.flatMap(Mailer.Mailer, (mailer) => mailer.sendMessage(message))
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as RateLimiter from "effect/RateLimiter"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"
import * as Batch from "./internal/batch.js"
import * as BulkInput from "./internal/bulkInput.js"
import * as ConnectionPool from "./internal/connectionPool.js"
import { Handoff } from "./internal/handoff.js"
import * as Iterators from "./internal/iterators.js"
import * as MessageParse from "./internal/message/parse.js"
import * as MessageSerialize from "./internal/message/serialize.js"
import * as Operation from "./internal/operation.js"
import * as QueueId from "./internal/queueId.js"
import type * as Message from "./Message.js"
import * as SmtpAuth from "./SmtpAuth.js"
import * as SmtpClient from "./SmtpClient.js"
import type * as SmtpConnection from "./SmtpConnection.js"
import {
  classify,
  type Disposition,
  isSmtpError,
  SmtpDeliveryUnknown,
  type SmtpError,
  SmtpInvalidInput
} from "./SmtpError.js"
import type { SmtpReply } from "./SmtpReply.js"
import { SmtpTransport } from "./SmtpTransport.js"

/**
 * Options: those of `SmtpClient.connect` for every connection, and the pool's own.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends SmtpClient.Options {
  /** Connections open at most at once. Default 4. */
  readonly maxConnections?: number | undefined
  /** How long an unused connection stays open. Default 30 seconds. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /**
   * When to retry a transient failure (see {@link isRetryable}), on a fresh connection when the
   * old one died. Default: up to 3 retries, exponential from 1 second with jitter. `false` never
   * retries. A Stream message is run again for each attempt (one from `Message.parseStream` reads
   * its source again; a source that cannot be read twice makes the retry fail with `SmtpInvalidInput`).
   */
  readonly retry?: Schedule.Schedule<unknown, SmtpError> | false | undefined
  /** At most `limit` messages per `interval` over all connections (a token bucket). */
  readonly rateLimit?: { readonly limit: number; readonly interval: Duration.DurationInput } | undefined
  /**
   * Signs every message before it is sent, once (not again for each retry): `Dkim.sign(signers)`.
   * A `Message` is signed as it is; a message in memory (a string or bytes) is parsed, signed and
   * sent as bytes; a Stream message given as such is `SmtpInvalidInput` (parse it with
   * `Message.parseStream`, or compose it). With a signer, `sendAll` sends each item on its own
   * (no batch across messages).
   */
  readonly dkim?: MessageSigner | undefined
}

/**
 * What signs a message before it is sent: `Dkim.sign(signers, options)` (data-last).
 *
 * @since 0.2.0
 * @category models
 */
export type MessageSigner = <E, R>(
  message: Message.Message<E, R>
) => Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R>

/**
 * The sender.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** `SmtpConnection.sendmail` on a pooled connection, with the retries and the rate limit. */
  readonly sendmail: <E = never, R = never>(
    from: string,
    to: string | ReadonlyArray<string>,
    message: SmtpConnection.MessageInput<E, R>,
    options?: SmtpConnection.SendmailOptions
  ) => Effect.Effect<SmtpConnection.RefusedRecipients, SmtpError | E, R>
  /** `SmtpConnection.sendMessage` on a pooled connection, with the retries and the rate limit. */
  readonly sendMessage: <E = never, R = never>(
    message: Message.Message<E, R>,
    options?: SmtpConnection.SendMessageOptions
  ) => Effect.Effect<SmtpConnection.RefusedRecipients, SmtpError | E, R>
  /**
   * `SmtpConnection.send` on a pooled connection, with the retries and the rate limit: one message
   * (a `Message`, or an envelope and a message) and the result an application logs (envelope,
   * Message-ID, accepted and refused recipients, final reply, queue id).
   */
  readonly send: <E = never, R = never>(
    message: Message.Message<E, R> | SmtpConnection.SendInput<E, R>,
    options?: SmtpConnection.SendMessageOptions
  ) => Effect.Effect<SmtpConnection.SendResult, SmtpError | E, R>
  /**
   * Checks the server and the options at start-up with a connection of its own (greeting,
   * STARTTLS as configured, login, what the server offers, QUIT): `SmtpClient.verify`.
   */
  readonly verify: Effect.Effect<SmtpClient.VerifyReport, SmtpError>
  /**
   * Sends many messages: one {@link BulkOutcome} per item, emitted as each one finishes (not in
   * input order: `index` is the item's position in the input). Each item is sent as by `sendmail`
   * or `sendMessage`, with the retries and the rate limit; a failure is an outcome, never the end
   * of the others. Memory is bounded by `concurrency`, not by the number of items: the input is
   * read as messages go out, and outcomes wait for the consumer (backpressure).
   *
   * Every item taken from the input gets its outcome (an item that is not an object, from
   * JavaScript, is `Failed` with `SmtpInvalidInput`); if the input Stream fails, the result fails
   * with its error after those. Interrupting the result (or taking fewer outcomes) interrupts the
   * messages in flight, and closes an iterable input read part of the way (its `return()`: a
   * generator's `finally` runs).
   *
   * @since 0.2.0
   */
  readonly sendAll: <E = never, R = never, EI = never, RI = never>(
    items: Stream.Stream<BulkItem<E, R>, EI, RI> | Iterable<BulkItem<E, R>>,
    options?: BulkOptions
  ) => Stream.Stream<BulkOutcome<E>, EI, R | RI>
}

/**
 * An item of {@link Service.sendAll}: an envelope and a message as `sendmail` takes them, or a
 * `Message` as `sendMessage` takes it (its envelope from its headers unless the options say).
 *
 * @since 0.2.0
 * @category bulk
 */
export type BulkItem<E = never, R = never> = BulkEnvelope<E, R> | BulkMessage<E, R>

/**
 * A `sendmail`-style item.
 *
 * @since 0.2.0
 * @category bulk
 */
export interface BulkEnvelope<E = never, R = never> {
  readonly from: string
  readonly to: string | ReadonlyArray<string>
  readonly message: SmtpConnection.MessageInput<E, R>
  readonly options?: SmtpConnection.SendmailOptions | undefined
}

/**
 * A `sendMessage`-style item.
 *
 * @since 0.2.0
 * @category bulk
 */
export interface BulkMessage<E = never, R = never> {
  readonly message: Message.Message<E, R>
  readonly options?: SmtpConnection.SendMessageOptions | undefined
}

/**
 * Options of {@link Service.sendAll}.
 *
 * @since 0.2.0
 * @category bulk
 */
export interface BulkOptions {
  /**
   * How many messages may be in flight at once; default `maxConnections`. How they are spread
   * over the connections is the Mailer's business (several may one day share a connection).
   */
  readonly concurrency?: number | undefined
}

/**
 * What became of one item of {@link Service.sendAll}.
 *
 * @since 0.2.0
 * @category bulk
 */
export type BulkOutcome<E = never> = BulkSent | BulkFailed<E>

/**
 * The server accepted the message, for every recipient but those in `refused`.
 *
 * @since 0.2.0
 * @category bulk
 */
export interface BulkSent {
  readonly _tag: "Sent"
  /** The item's position in the input, from 0. */
  readonly index: number
  readonly refused: SmtpConnection.RefusedRecipients
  /** The reply to the end of data. @since 0.2.0 */
  readonly reply: SmtpReply
  /** The server's id for the queued message, when its final reply carries one in a known form. @since 0.2.0 */
  readonly queueId: string | undefined
}

/**
 * The message was not sent, after the retries, or its fate is unknown: see `disposition`
 * (`SmtpError.classify`): `"transient"` not accepted, worth another try later; `"permanent"` not
 * accepted and would fail again (so is an error of the message itself, such as a failing Stream);
 * `"unknown"` the end of the data was (or may have been) sent and no final reply came: it may have
 * been delivered.
 *
 * @since 0.2.0
 * @category bulk
 */
export interface BulkFailed<E = never> {
  readonly _tag: "Failed"
  /** The item's position in the input, from 0. */
  readonly index: number
  readonly error: SmtpError | E
  readonly disposition: Disposition
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Mailer extends Context.Tag("effect-smtp/Mailer")<Mailer, Service>() {}

/**
 * Whether a failure is worth another attempt: `SmtpError.classify` says `"transient"` (a 4xx
 * reply, a connection that could not be made or was lost, a timeout, a malformed reply, all before
 * the end of the data). Never when the message may already have been accepted
 * (`SmtpDeliveryUnknown`): a retry could deliver it twice.
 *
 * @since 0.1.0
 * @category retries
 */
export const isRetryable = (error: SmtpError): boolean => classify(error) === "transient"

/**
 * The default retry schedule: 3 retries, exponential from 1 second, with jitter.
 *
 * @since 0.1.0
 * @category retries
 */
export const defaultRetry: Schedule.Schedule<unknown, SmtpError> = Schedule.exponential("1 second").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

const messagesSent = Metric.counter("smtp_messages_sent", { description: "Messages accepted by the server" })
const messagesFailed = Metric.counter("smtp_messages_failed", { description: "Messages that failed after retries" })
const attemptsRetried = Metric.counter("smtp_send_retries", { description: "Send attempts retried" })
const sendDuration = Metric.timerWithBoundaries("smtp_send_duration", [10, 50, 100, 250, 500, 1000, 5000, 30000])

/**
 * Builds a mailer; its connections live in the Scope (QUIT when it closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Scope.Scope | SmtpTransport> =>
  Effect.gen(function*() {
    const { idleTimeout, maxConnections, rateLimit, retry, ...clientOptions } = options
    // OAuth 2.0: one token for all the connections, renewed once per rejection (not per connection)
    const auth = clientOptions.auth
    const connectOptions: SmtpClient.Options = auth !== undefined && "oauth2" in auth ?
      { ...clientOptions, auth: { ...auth, oauth2: SmtpAuth.cachedTokenProvider(auth.oauth2) } } :
      clientOptions
    const clock = yield* Effect.clock
    const pool = yield* ConnectionPool.make({
      acquire: SmtpClient.connect(connectOptions),
      max: maxConnections ?? 4,
      idleTimeout: idleTimeout ?? Duration.seconds(30)
    })
    const limiter: RateLimiter.RateLimiter = rateLimit === undefined ?
      (effect) => effect :
      yield* RateLimiter.make({ limit: rateLimit.limit, interval: rateLimit.interval })
    const schedule = retry === false ? undefined : retry ?? defaultRetry
    const spanOptions = {
      kind: "client",
      captureStackTrace: false,
      attributes: {
        "server.address": options.host ?? "localhost",
        ...(options.port === undefined ? {} : { "server.port": options.port })
      }
    } as const

    /**
     * One attempt on a pooled connection. A connection found closed is replaced (a bounded number
     * of times), and one that died during the attempt is closed and its place freed at once.
     */
    /**
     * A pooled connection that is open: one closed while idle (the server hung up) is replaced, at
     * most 3 times. A chain of steps, not a generator: it runs for every message.
     */
    const openConnection = (
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
      replaced = 0
    ): Effect.Effect<ConnectionPool.Entry<SmtpConnection.Service>, SmtpError> =>
      Effect.flatMap(
        restore(pool.get),
        (entry) =>
          replaced === 3 ? Effect.succeed(entry) : Effect.flatMap(entry.value.isClosed, (closed) =>
            closed ?
              Effect.zipRight(pool.release(entry, false), openConnection(restore, replaced + 1)) :
              Effect.succeed(entry))
      )

    const attempt = <A, E, R>(send: (smtp: SmtpConnection.Service) => Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          openConnection(restore),
          (entry) => {
            // what `send` throws as it makes its Effect (a caller's object whose getter throws,
            // read by `send`'s spread) is a defect of this attempt: the connection still goes back
            // (it was never used), else the pool would lose it and, once all were lost, wait forever
            let sent: Effect.Effect<A, E, R>
            try {
              sent = send(entry.value)
            } catch (defect) {
              sent = Effect.die(defect)
            }
            return Effect.flatMap(Effect.exit(restore(sent)), (exit) =>
              Effect.flatMap(entry.value.isClosed, (closed) =>
                Effect.zipRight(pool.release(entry, !closed), exit)))
          }
        )
      )

    /** Retries after `error` on the schedule: a first attempt that failed with it, then fresh ones. */
    const retryAfter = <A, E, R>(
      error: SmtpError | E,
      once: Effect.Effect<A, SmtpError | E, R>
    ): Effect.Effect<A, SmtpError | E, R> => {
      if (schedule === undefined || !isSmtpErrorRetryable(error)) return Effect.fail(error)
      let known = true
      const again = Effect.suspend(() => {
        if (!known) return once
        known = false
        return Effect.fail(error)
      })
      return again.pipe(
        Effect.tapError((e) => (isSmtpErrorRetryable(e) ? Metric.increment(attemptsRetried) : Effect.void)),
        // sound: `while` lets only retryable SmtpErrors reach the schedule
        Effect.retry({ schedule: schedule as Schedule.Schedule<unknown, SmtpError | E>, while: isSmtpErrorRetryable })
      )
    }

    /**
     * One send with the retries, the rate limit, the metrics and the span. The success path pays
     * for none of the retry machinery (the schedule's driver is made on the first failure), and the
     * metrics are updated in one step at the end (with the fiber's metric labels).
     */
    const run = <A, E, R>(
      operation: string,
      send: (smtp: SmtpConnection.Service) => Effect.Effect<A, SmtpError | E, R>,
      /** The first attempt already failed with this (in a batch): the schedule goes on from there. */
      firstFailure?: SmtpError
    ): Effect.Effect<A, SmtpError | E, R> => {
      const once = limiter(attempt(send))
      const body = firstFailure !== undefined ?
        retryAfter(firstFailure, once) :
        Effect.catchAll(once, (error) => retryAfter(error, once))
      return Operation.withSpan(
        Effect.withFiberRuntime<A, SmtpError | E, R>((fiber) => {
          const started = clock.unsafeCurrentTimeMillis()
          return Effect.onExit(body, (exit) =>
            Effect.sync(() => {
              const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
              sendDuration.unsafeUpdate(Duration.millis(clock.unsafeCurrentTimeMillis() - started), labels)
              if (Exit.isSuccess(exit)) messagesSent.unsafeUpdate(1, labels)
              else if (!Cause.isInterruptedOnly(exit.cause)) messagesFailed.unsafeUpdate(1, labels)
            }))
        }),
        `Mailer.${operation}`,
        spanOptions
      )
    }

    const signer = options.dkim
    /** A Message signed by the configured signer (once, before the retries). */
    const signMessage = <E, R>(
      message: Message.Message<E, R>
    ): Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R> =>
      signer === undefined ? Effect.succeed(message) : signer(message)
    /** A message given as sendmail takes it, signed: parsed, signed and serialised again. */
    const signRaw = <E, R>(
      message: SmtpConnection.MessageInput<E, R>
    ): Effect.Effect<SmtpConnection.MessageInput<E, R>, E | SmtpInvalidInput, R> => {
      if (signer === undefined) return Effect.succeed(message)
      if (typeof message !== "string" && !(message instanceof Uint8Array)) {
        return Effect.fail(
          new SmtpInvalidInput({
            reason: "the Mailer's dkim option signs a message in memory or a Message, not a Stream given to sendmail " +
              "(parse it with Message.parseStream, or compose it)"
          })
        )
      }
      return Either.match(MessageParse.parse(message), {
        onLeft: Effect.fail,
        onRight: (parsed) => Effect.flatMap(signer(parsed), MessageSerialize.toBytes)
      })
    }

    const sendmail: Service["sendmail"] = (from, to, message, sendOptions) =>
      Effect.flatMap(
        signRaw(message),
        (signed) => run("sendmail", (smtp) => smtp.sendmail(from, to, signed, sendOptions))
      )
    const sendMessage: Service["sendMessage"] = (message, sendOptions) =>
      Effect.flatMap(
        signMessage(message),
        (signed) => run("sendMessage", (smtp) => smtp.sendMessage(signed, sendOptions))
      )

    /**
     * Whether an item can ride in a batch on a shared connection (`sendBatch`): an envelope and a
     * message in memory. A `Message` or a Stream goes alone.
     */
    const batchable = <E, R>(item: BulkItem<E, R>): boolean =>
      signer === undefined && BulkInput.isItem(item) && "from" in item && (
        // a batch with BDAT takes messages of at most 1 MiB (a string's line ends may grow it)
        (typeof item.message === "string" && item.message.length <= BATCH_LIMIT / 2) ||
        (item.message instanceof Uint8Array && item.message.length <= BATCH_LIMIT)
      )

    const sendItem = <E, R>(
      item: BulkItem<E, R>,
      index: number,
      firstFailure?: SmtpError
    ): Effect.Effect<BulkOutcome<E>, never, R> => {
      const refused = BulkInput.refusal(item)
      return (refused !== undefined
        ? Effect.zipRight(Metric.increment(messagesFailed), Effect.fail(refused))
        : "from" in item
        ? Effect.flatMap(
          signRaw(item.message),
          (signed) =>
            run(
              "sendmail",
              (smtp) => smtp.send({ from: item.from, to: item.to, message: signed, options: item.options }),
              firstFailure
            )
        )
        : Effect.flatMap(
          signMessage(item.message),
          (signed) => run("sendMessage", (smtp) => smtp.send(signed, item.options), firstFailure)
        ))
        .pipe(
          Effect.match({
            onSuccess: (result): BulkOutcome<E> => ({
              _tag: "Sent",
              index,
              refused: result.refused,
              reply: result.reply,
              queueId: result.queueId
            }),
            onFailure: (error): BulkOutcome<E> => ({
              _tag: "Failed",
              index,
              error,
              disposition: isSmtpError(error) ? disposition(error) : "permanent"
            })
          })
        )
    }

    /**
     * A feeder reads the input into a small queue, `concurrency` workers send one item after
     * another and queue the outcomes; all the waits are queue waits (first come, first served).
     */
    const sendAll: Service["sendAll"] = <E, R, EI, RI>(
      items: Stream.Stream<BulkItem<E, R>, EI, RI> | Iterable<BulkItem<E, R>>,
      bulkOptions?: BulkOptions
    ): Stream.Stream<BulkOutcome<E>, EI, R | RI> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const concurrency = Math.max(1, bulkOptions?.concurrency ?? maxConnections ?? 4)
        const input = new Handoff<readonly [BulkItem<E, R>, number] | undefined>(INPUT_AHEAD(concurrency))
        const output = yield* Queue.bounded<Take.Take<BulkOutcome<E>, EI>>(concurrency)
        let next = 0
        // (read once as it is taken: a getter that throws is that item's outcome)
        const offer = (item: BulkItem<E, R>) => input.offer([BulkInput.snapshot(item), next++] as const)
        const read: Effect.Effect<void, EI, RI> = Predicate.hasProperty(items, Stream.StreamTypeId) ?
          Stream.runForEach(items as Stream.Stream<BulkItem<E, R>, EI, RI>, offer) :
          Effect.suspend(() => {
            // one at a time (Stream.fromIterable would read 4096 items ahead); read part of the way
            // (the result's consumer stopped), closed as a for...of left by break
            const reader = new Iterators.Reader((items as Iterable<BulkItem<E, R>>)[Symbol.iterator]())
            // (what the iterator throws, Effect.suspend makes a defect)
            const loop: Effect.Effect<void> = Effect.suspend(() => {
              const next = reader.next()
              return next.done === true ? Effect.void : Effect.flatMap(offer(next.value), () => loop)
            })
            return Effect.ensuring(loop, Effect.sync(() => reader.close()))
          })
        // then one end marker per worker
        const feeder = Effect.exit(read).pipe(
          Effect.tap(() => Effect.forEach(Array.from({ length: concurrency }), () => input.offer(undefined)))
        )
        const emit = (outcome: BulkOutcome<E>) => Queue.offer(output, Take.of(outcome))
        /** Outcomes of a batch (`sent` of them Sent, the rest Failed) counted and emitted in one Take. */
        const counted = (outcomes: ReadonlyArray<BulkOutcome<E>>, sent: number): Effect.Effect<void> => {
          if (outcomes.length === 0) return Effect.void
          return Effect.zipRight(
            Effect.zipRight(
              Metric.incrementBy(messagesSent, sent),
              Metric.incrementBy(messagesFailed, outcomes.length - sent)
            ),
            Queue.offer(output, Take.chunk(Chunk.unsafeFromArray(outcomes)))
          )
        }
        /** An item read ahead that a worker's batch could not take: that worker's next. */
        interface Carry {
          item: readonly [BulkItem<E, R>, number] | undefined | null
        }
        const worker = Effect.gen(function*() {
          const carry: Carry = { item: null }
          for (;;) {
            const taken = carry.item !== null ? carry.item : yield* input.take
            carry.item = null
            if (taken === undefined) return
            if (rateLimit !== undefined || !batchable(taken[0])) {
              yield* emit(yield* sendItem(taken[0], taken[1]))
              continue
            }
            // several messages wait: they share this connection, pipelined across messages
            // (sendBatch), until the queue is momentarily empty or an item cannot be batched
            const retry = yield* sendBatchOn(taken as readonly [BulkEnvelope<never, never>, number], carry)
            // transient failures go through the single-send path (retries, a fresh connection),
            // once the batch has given its connection back
            for (const [item, index, failure] of retry) {
              yield* emit(yield* sendItem(item as BulkItem<E, R>, index, failure))
            }
          }
        })
        /**
         * Sends `first` and the items that wait behind it on one pooled connection with
         * `sendBatch`; emits their outcomes and returns those to try again one by one, each with
         * the failure of its first attempt.
         */
        const sendBatchOn = (
          first: readonly [BulkEnvelope<never, never>, number],
          carry: Carry
        ) =>
          Effect.uninterruptibleMask((restore) =>
            Effect.gen(function*() {
              const retry: Array<readonly [BulkEnvelope<never, never>, number, SmtpError | undefined]> = []
              const opened = yield* Effect.either(openConnection(restore))
              // no connection: the item's first attempt failed, the single-send path goes on from there
              if (Either.isLeft(opened)) return [[first[0], first[1], opened.left] as const]
              const entry = opened.right
              /** The items taken and not reported, by their position in the batch (`first` is 0). */
              const owed = new Map<number, readonly [BulkEnvelope<never, never>, number]>([[0, first]])
              let taken = 0
              const toBatchItem = ([item]: readonly [BulkEnvelope<never, never>, number]) => ({
                from: item.from,
                to: item.to,
                message: item.message as string | Uint8Array,
                options: item.options
              })
              /** Set once the batch's input has ended: an item it cannot take, or `holding`. */
              let ended = false
              /**
               * The batch's next item without waiting (`undefined`: none just now, or the input has
               * ended): from its reply callbacks, or from the Stream when it is pulled.
               */
              const poll = (): SmtpConnection.BatchItem | undefined => {
                if (taken === 0) {
                  taken = 1
                  return toBatchItem(first)
                }
                if (ended) return undefined
                // it holds a transient refusal (whose retry must not wait for the queue to empty),
                // or has had its share of the connection while another send waits for one
                if (retry.length > 0 || (taken >= FAIR_SHARE && pool.stats().waiting > 0)) {
                  ended = true
                  return undefined
                }
                // enough in flight: a connection lost leaves at most this many unknown
                if (owed.size >= OWED_MAX) return undefined
                const next = input.poll(null)
                if (next === null) return undefined
                if (next === undefined || !batchable(next[0])) {
                  carry.item = next
                  ended = true
                  return undefined
                }
                owed.set(taken++, next as readonly [BulkEnvelope<never, never>, number])
                return toBatchItem(next as readonly [BulkEnvelope<never, never>, number])
              }
              /** A pull waiting for the outcomes that bring the items owed under `OWED_MAX`. */
              let uncapped: (() => void) | undefined
              /** The Stream the batch pulls when a poll found nothing: ended, or waits while capped. */
              const pullItem: Effect.Effect<SmtpConnection.BatchItem, Option.Option<never>> = Effect.suspend(() => {
                const item = poll()
                if (item !== undefined) return Effect.succeed(item)
                if (ended || owed.size < OWED_MAX) return Effect.fail(Option.none())
                return Effect.flatMap(
                  Effect.async<void>((resume) => {
                    // (decided here, not a step before: outcomes may have been reported meanwhile)
                    if (ended || owed.size < OWED_MAX) return resume(Effect.void)
                    uncapped = () => resume(Effect.void)
                    return Effect.sync(() => {
                      uncapped = undefined
                    })
                  }),
                  () => pullItem
                )
              })
              const wakeUncapped = () => {
                const wake = uncapped
                uncapped = undefined
                wake?.()
              }
              const shared: Batch.SharedInput = {
                poll,
                // the connection failed: what is left is another connection's
                close: () => {
                  ended = true
                  wakeUncapped()
                },
                // outcomes reported as half the window has settled keep the window moving
                wakeAt: OWED_MAX / 2
              }
              const items = Object.assign(Stream.repeatEffectOption(pullItem), { [Batch.SharedInput]: shared })
              /** What the batch took and did not report goes one by one. */
              const retryOwed = (failure: SmtpError | undefined) =>
                Effect.sync(() => {
                  for (const [item, index] of owed.values()) retry.push([item, index, failure])
                  owed.clear()
                })
              const run = entry.value.sendBatch(items).pipe(
                // a chunk of outcomes at a time (up to 16 while replies are owed): one hand-off to
                // the result's consumer each, not one per message
                Stream.runForEachChunk((chunk) => {
                  const outcomes: Array<BulkOutcome<E>> = []
                  let sent = 0
                  for (const outcome of chunk) {
                    const item = owed.get(outcome.index)!
                    owed.delete(outcome.index)
                    const index = item[1]
                    switch (outcome._tag) {
                      case "Sent":
                        sent++
                        outcomes.push({
                          _tag: "Sent",
                          index,
                          refused: outcome.refused,
                          reply: outcome.reply,
                          queueId: QueueId.fromText(outcome.reply.text)
                        })
                        break
                      case "Unknown":
                        outcomes.push({ _tag: "Failed", index, error: outcome.error, disposition: "unknown" })
                        break
                      default: {
                        const kind = disposition(outcome.error)
                        if (kind === "transient" && schedule !== undefined) retry.push([item[0], index, outcome.error])
                        else outcomes.push({ _tag: "Failed", index, error: outcome.error, disposition: kind })
                      }
                    }
                  }
                  if (owed.size < OWED_MAX) wakeUncapped()
                  return counted(outcomes, sent)
                }),
                // the batch itself failed (the session could not greet): that was the items' first attempt
                Effect.catchAll(retryOwed)
              )
              const exit = yield* Effect.exit(restore(run))
              // a defect in the batch (a bug: of a transport, say): the items it took and did not
              // report may have been written, up to their end of data, and sent again could be
              // delivered twice; each is Unknown (the defect as its cause). Its connection is in
              // an unknown state too: it is not reused.
              const defect = Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? exit.cause : undefined
              const unreported = defect === undefined ? [] : [...owed.values()]
              owed.clear()
              yield* pool.release(entry, defect === undefined && !(yield* entry.value.isClosed))
              if (defect !== undefined) {
                yield* Effect.logError("Mailer.sendAll: a sendBatch died with a defect", defect)
                const error = new SmtpDeliveryUnknown({
                  during: "in a sendBatch that died with a defect",
                  cause: Cause.squash(defect),
                  endOfData: "unknown"
                })
                // (the consumer may have stopped reading: interruptible)
                yield* restore(counted(
                  unreported.map(([, index]): BulkOutcome<E> => ({
                    _tag: "Failed",
                    index,
                    error,
                    disposition: "unknown"
                  })),
                  0
                ))
              }
              return retry
            })
          )
        yield* Effect.gen(function*() {
          const reading = yield* Effect.fork(feeder)
          yield* Effect.all(Array.from({ length: concurrency }, () => worker), {
            concurrency: "unbounded",
            discard: true
          })
          const exit = yield* Fiber.join(reading)
          yield* Queue.offer(output, Exit.isSuccess(exit) ? Take.end : Take.failCause(exit.cause))
        }).pipe(
          // a defect ends the result too (an interruption means that nobody reads it any more)
          Effect.onError((cause) =>
            Cause.isInterruptedOnly(cause) ?
              Effect.void :
              Effect.interruptible(Queue.offer(output, Take.failCause(cause as Cause.Cause<never>)))
          ),
          Effect.forkScoped
        )
        return Stream.flattenTake(Stream.fromQueue(output))
      }))

    const transport = yield* SmtpTransport
    const verify = SmtpClient.verify(connectOptions).pipe(Effect.provideService(SmtpTransport, transport))
    const send: Service["send"] = (input, sendOptions) =>
      "headers" in input
        ? Effect.flatMap(signMessage(input), (signed) => run("send", (smtp) => smtp.send(signed, sendOptions)))
        : Effect.flatMap(
          signRaw(input.message),
          (signed) => run("send", (smtp) => smtp.send({ ...input, message: signed }, sendOptions))
        )
    return { sendmail, sendMessage, send, sendAll, verify } satisfies Service
  })

/** The largest message a batch on a shared connection takes (`sendBatch` with BDAT: 1 MiB). */
const BATCH_LIMIT = 1024 * 1024
/** Items read ahead of the workers at most (in the input queue). */
const INPUT_AHEAD = (concurrency: number) => Math.max(concurrency, 16)
/**
 * Messages of a batch in flight at most (taken, outcome not reported): with BDAT a batch may write
 * 64 messages ahead, each of them unknown if the connection is lost; here a loss leaves at most this many.
 */
const OWED_MAX = 16
/** Items a batch takes before it gives its connection up to another send that waits for one. */
const FAIR_SHARE = 64

const isSmtpErrorRetryable = (error: unknown): boolean => isSmtpError(error) && isRetryable(error)

/** What a failure means for the message (the session reports an unknown outcome as `SmtpDeliveryUnknown`). */
const disposition = (error: SmtpError): Disposition => classify(error)

/**
 * The mailer as a Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Mailer, never, SmtpTransport> =>
  Layer.scoped(Mailer, make(options))

/**
 * The same from Config (secrets as `Config.redacted`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options>
): Layer.Layer<Mailer, ConfigError.ConfigError, SmtpTransport> =>
  Layer.scoped(Mailer, Effect.flatMap(Config.unwrap(config), make))
