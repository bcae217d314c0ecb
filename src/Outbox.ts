/**
 * A durable outbox: a message is enqueued in the same `@effect/sql` transaction as the change that
 * caused it, so it is sent if and only if that transaction commits; workers (`OutboxWorker`, on
 * `@effect/cluster` and `@effect/workflow`) send it, retry it, and record what happened. This
 * module is what producers need (enqueue, status, cancel, requeue, metrics): it requires only a
 * `SqlClient` (SQLite or PostgreSQL), not the cluster.
 *
 * ```ts
 * const placeOrder = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   const outbox = yield* Outbox.Outbox
 *   yield* sql.withTransaction(Effect.gen(function*() {
 *     yield* sql`INSERT INTO orders ${sql.insert({ id: "o-1" })}`
 *     yield* outbox.enqueue({ from: "shop@example.com", to: "ann@example.org", message, idempotencyKey: "order-o-1" })
 *   }))
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as Command from "./internal/command.js"
import * as Policy from "./internal/outbox/policy.js"
import * as Store from "./internal/outbox/store.js"
import * as Message from "./Message.js"
import type * as SmtpConnection from "./SmtpConnection.js"
import { SmtpInvalidInput } from "./SmtpError.js"

/**
 * Where a message stands:
 *
 * - `queued`: waiting for its first attempt (or its `notBefore`), or for a retry;
 * - `sending`: an attempt is in flight;
 * - `sent`: every recipient was accepted;
 * - `partial`: some recipients were accepted, the others refused or given up on;
 * - `failed`: no recipient was accepted (refused with 5xx, or a permanent failure);
 * - `unknown`: the end of the data may have been written and no final reply came (or the worker
 *   sending it died): it may have been delivered, so it is not retried unless the worker's
 *   `onUnknown` policy says so or {@link Service.requeue} is called;
 * - `expired`: retries ended (its expiry, or the retry schedule) with recipients still deferred;
 * - `cancelled`: {@link Service.cancel} before it was sent (a cancel after some recipients were
 *   accepted, during a retry wait, ends it `partial`; after some may have been, `unknown`).
 *
 * @since 0.2.0
 * @category models
 */
export type State = Policy.MessageState

/**
 * A recipient's fate: `pending` (not yet accepted, or deferred with a 4xx and to be tried again),
 * `accepted`, `refused` (5xx), `unknown`, `expired`, `cancelled`.
 *
 * @since 0.2.0
 * @category models
 */
export type RecipientState = Policy.RecipientState

/**
 * A server reply as recorded: the code and the text (lines joined with `"\n"`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Reply {
  readonly code: number
  readonly text: string
}

/**
 * What to enqueue: an envelope and a message in memory (a string as `sendmail` takes it, or the
 * bytes), or a composed `Message` (its envelope from its headers unless `from` / `to` are given;
 * serialised once, at enqueue, without Bcc).
 *
 * @since 0.2.0
 * @category models
 */
export type EnqueueInput = EnqueueEnvelope | EnqueueMessage

/**
 * @since 0.2.0
 * @category models
 */
export interface EnqueueEnvelope extends CommonOptions {
  readonly from: string
  readonly to: string | ReadonlyArray<string>
  readonly message: string | Uint8Array
}

/**
 * @since 0.2.0
 * @category models
 */
export interface EnqueueMessage extends CommonOptions {
  readonly message: Message.Message
  readonly from?: string | undefined
  readonly to?: string | ReadonlyArray<string> | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CommonOptions {
  /**
   * Enqueueing again under the same key does nothing and returns the first message's id (a
   * retried request handler, a replayed job). Default: a fresh key, so every call enqueues.
   */
  readonly idempotencyKey?: string | undefined
  /** Not sent before this time. */
  readonly notBefore?: DateTime.DateTime | Date | undefined
  /** Retries end at this time (the deferred recipients become `expired`). Default: the Outbox's `expireAfter` from now. */
  readonly expiresAt?: DateTime.DateTime | Date | undefined
  /**
   * What the workers shard by: messages with the same destination go through the same worker
   * entity (one Mailer, one set of connections, one rate limit). Default: the first recipient's
   * domain, lower-cased.
   */
  readonly destination?: string | undefined
  /** MAIL and RCPT parameters, DSN, REQUIRETLS, as `sendmail` takes them (stored as JSON). */
  readonly options?: SmtpConnection.SendmailOptions | undefined
}

/**
 * One attempt as recorded: when, on which runner, and what came of it (`sent`, `partial`,
 * `deferred`, `refused`, `unknown`), with the error's tag and the server's reply.
 *
 * @since 0.2.0
 * @category models
 */
export interface Attempt {
  readonly attempt: number
  readonly runner: string
  readonly startedAt: DateTime.Utc
  readonly finishedAt: DateTime.Utc | undefined
  readonly outcome: string | undefined
  readonly error: string | undefined
  readonly reply: Reply | undefined
  readonly queueId: string | undefined
}

/**
 * What happened to a message: its state, each recipient's, every attempt, and the server's queue
 * id once accepted.
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly id: string
  readonly idempotencyKey: string
  readonly destination: string
  readonly from: string
  readonly state: State
  readonly recipients: ReadonlyArray<{
    readonly address: string
    readonly state: RecipientState
    readonly reply: Reply | undefined
  }>
  readonly attempts: ReadonlyArray<Attempt>
  readonly queueId: string | undefined
  readonly lastReply: Reply | undefined
  readonly createdAt: DateTime.Utc
  readonly updatedAt: DateTime.Utc
  readonly notBefore: DateTime.Utc
  readonly expiresAt: DateTime.Utc
}

/**
 * The outbox as a whole, read from the database (so the same from every process): messages by
 * state, how many wait, the age of the oldest waiting, attempts and their outcomes.
 *
 * @since 0.2.0
 * @category models
 */
export interface Metrics {
  readonly byState: Readonly<Record<State, number>>
  /** Messages `queued` or `sending`. */
  readonly depth: number
  /** Age of the oldest message `queued` or `sending` (zero when none). */
  readonly oldestAge: Duration.Duration
  readonly attempts: number
  /** Finished attempts by outcome: `sent`, `partial`, `deferred`, `refused`, `unknown`. */
  readonly outcomes: Readonly<Record<string, number>>
}

/**
 * A request the outbox cannot honour: no message with that id, or one in a state that does not
 * allow it (cancelling a message already sent, requeueing one still queued).
 *
 * @since 0.2.0
 * @category errors
 */
export class OutboxError extends Schema.TaggedError<OutboxError>("effect-smtp/OutboxError")("OutboxError", {
  reason: Schema.Literal("NotFound", "InvalidState"),
  id: Schema.String,
  state: Schema.optional(Schema.String)
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return this.reason === "NotFound"
      ? `No outbox message ${this.id}`
      : `Outbox message ${this.id} is ${this.state}: not allowed`
  }
}

/**
 * @since 0.2.0
 * @category guards
 */
export const isOutboxError = (u: unknown): u is OutboxError => Predicate.isTagged(u, "OutboxError")

/**
 * Options of {@link make}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The expiry of a message enqueued without `expiresAt`. Default 5 days (RFC 5321 §4.5.4.1). */
  readonly expireAfter?: Duration.DurationInput | undefined
  /** Create the tables when missing (at layer start). Default true. */
  readonly migrate?: boolean | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /**
   * Enqueues a message, inside the caller's transaction when there is one
   * (`sql.withTransaction`): a rollback leaves nothing to send. Returns the message id (the first
   * one's when the idempotency key was used before). An invalid envelope or message fails with
   * `SmtpInvalidInput` and writes nothing.
   */
  readonly enqueue: (input: EnqueueInput) => Effect.Effect<string, SmtpInvalidInput | SqlError>
  /** The state and history of a message. */
  readonly status: (id: string) => Effect.Effect<Option.Option<Status>, SqlError>
  /** The message enqueued under an idempotency key. */
  readonly statusByKey: (idempotencyKey: string) => Effect.Effect<Option.Option<Status>, SqlError>
  /**
   * Cancels a message not yet sent (`queued`, including one waiting for a retry): it will not be
   * sent. A message being sent right now cannot be cancelled (`OutboxError` `InvalidState`, also
   * when an attempt claims it while the cancel runs). Its recipients still pending become
   * `cancelled` and its state follows from all of them: `cancelled`, or `partial` when an earlier
   * attempt had some accepted (`unknown` when some may have been).
   */
  readonly cancel: (id: string) => Effect.Effect<void, OutboxError | SqlError>
  /**
   * Sends a finished message again for its recipients not accepted (`unknown`, `failed`,
   * `partial`, `expired`, `cancelled` ones), as a new workflow, now and with a fresh expiry (the
   * Outbox's `expireAfter` from now, as a new enqueue gets: the one it had may have passed). For
   * an `unknown` message this is the application saying that a duplicate is acceptable; its
   * `unknown` recipients stay `unknown` while sent again, so that a resend deferred until the
   * expiry (or the end of the retry schedule) leaves them `unknown`, not `expired`.
   */
  readonly requeue: (id: string) => Effect.Effect<void, OutboxError | SqlError>
  readonly metrics: Effect.Effect<Metrics, SqlError>
  /** Deletes finished messages (and their history) last updated before `before`; returns how many. */
  readonly purge: (before: DateTime.DateTime | Date) => Effect.Effect<number, SqlError>
}

/**
 * @since 0.2.0
 * @category tags
 */
export class Outbox extends Context.Tag("effect-smtp/Outbox")<Outbox, Service>() {}

const millis = (t: DateTime.DateTime | Date): number => t instanceof Date ? t.getTime() : DateTime.toEpochMillis(t)

const domainOf = (address: string): string => {
  const bare = Command.addressOnly(address)
  return bare.slice(bare.lastIndexOf("@") + 1).toLowerCase()
}

const textEncoder = new TextEncoder()

const envelopeOf = (
  input: EnqueueInput
): Effect.Effect<
  {
    readonly from: string
    readonly to: ReadonlyArray<string>
    readonly kind: "text" | "bytes"
    readonly bytes: Uint8Array
    readonly mailOptions: ReadonlyArray<string>
  },
  SmtpInvalidInput
> => {
  if (typeof input.message === "string" || input.message instanceof Uint8Array) {
    const message = input.message
    const to = typeof input.to === "string" ? [input.to] : [...(input.to ?? [])]
    return Effect.succeed({
      from: input.from ?? "",
      to,
      kind: typeof message === "string" ? "text" : "bytes",
      bytes: typeof message === "string" ? textEncoder.encode(message) : message,
      mailOptions: []
    })
  }
  const message = input.message as Message.Message
  return Effect.gen(function*() {
    const envelope = yield* Either.match(
      Message.envelope(message, {
        ...(input.from !== undefined ? { from: input.from } : {}),
        ...(input.to !== undefined ? { to: input.to } : {})
      }),
      { onLeft: Effect.fail, onRight: Effect.succeed }
    )
    const bytes = yield* Message.toBytes(message)
    // what sendMessage would add when the server supports SMTPUTF8 (a server without it refuses)
    const utf8 = envelope.international || Message.needsSmtpUtf8(message)
    return {
      from: envelope.from,
      to: envelope.to,
      kind: "bytes" as const,
      bytes,
      mailOptions: utf8 ? ["SMTPUTF8", "BODY=8BITMIME"] : []
    }
  })
}

const toUtc = (ms: number): DateTime.Utc => DateTime.unsafeMake(ms)

const statusOf = (sql: SqlClient.SqlClient, row: Store.MessageRow): Effect.Effect<Status, SqlError> =>
  Effect.map(
    Effect.zip(Store.recipients(sql, row.id), Store.attempts(sql, row.id)),
    ([recipients, attempts]) => ({
      id: row.id,
      idempotencyKey: row.idempotencyKey,
      destination: row.destination,
      from: row.from,
      state: row.state,
      recipients,
      attempts: attempts.map((a) => ({
        ...a,
        startedAt: toUtc(a.startedAt),
        finishedAt: a.finishedAt === undefined ? undefined : toUtc(a.finishedAt)
      })),
      queueId: row.queueId,
      lastReply: row.lastReply,
      createdAt: toUtc(row.createdAt),
      updatedAt: toUtc(row.updatedAt),
      notBefore: toUtc(row.notBefore),
      expiresAt: toUtc(row.expiresAt)
    })
  )

/**
 * Builds the outbox on the `SqlClient` in context (creating its tables unless `migrate: false`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (options.migrate !== false) yield* Store.migrate(sql)
    const expireAfter = Duration.toMillis(Duration.decode(options.expireAfter ?? "5 days"))

    const enqueue = (input: EnqueueInput): Effect.Effect<string, SmtpInvalidInput | SqlError> =>
      Effect.gen(function*() {
        const envelope = yield* envelopeOf(input)
        if (envelope.to.length === 0) {
          return yield* new SmtpInvalidInput({ reason: "Outbox.enqueue: no recipients" })
        }
        yield* Command.checkAddress("sender", envelope.from)
        for (const address of envelope.to) yield* Command.checkAddress("recipient", address)
        const now = yield* Clock.currentTimeMillis
        const options = input.options ?? {}
        const mailOptions = [...(options.mailOptions ?? [])]
        for (const o of envelope.mailOptions) if (!mailOptions.includes(o)) mailOptions.push(o)
        const id = crypto.randomUUID()
        const result = yield* Store.insert(sql, {
          id,
          idempotencyKey: input.idempotencyKey ?? id,
          destination: input.destination ?? domainOf(envelope.to[0]),
          from: envelope.from,
          to: envelope.to,
          kind: envelope.kind,
          message: envelope.bytes,
          options: JSON.stringify({ ...options, mailOptions }),
          notBefore: input.notBefore === undefined ? now : millis(input.notBefore),
          expiresAt: input.expiresAt === undefined ? now + expireAfter : millis(input.expiresAt),
          now
        })
        return result.id
      }).pipe(Effect.withSpan("Outbox.enqueue", { kind: "producer" }))

    const statusBy = (by: { readonly id: string } | { readonly idempotencyKey: string }) =>
      Effect.flatMap(
        Store.find(sql, by),
        Option.match({
          onNone: () => Effect.succeedNone,
          onSome: (row) => Effect.asSome(statusOf(sql, row))
        })
      )
    const status = (id: string) => statusBy({ id })
    const statusByKey = (idempotencyKey: string) => statusBy({ idempotencyKey })

    const mustFind = (id: string) =>
      Effect.flatMap(
        Store.find(sql, { id }),
        Option.match({
          onNone: () => Effect.fail(new OutboxError({ reason: "NotFound", id })),
          onSome: Effect.succeed
        })
      )

    const invalidState = (id: string) =>
      Effect.flatMap(
        mustFind(id),
        (row) => Effect.fail(new OutboxError({ reason: "InvalidState", id, state: row.state }))
      )

    const cancel = (id: string) =>
      sql.withTransaction(Effect.gen(function*() {
        // the row's write lock first (PostgreSQL: the row; SQLite: the database): a claim committed
        // meanwhile is seen here, never overwritten
        yield* Store.lock(sql, id)
        const row = yield* mustFind(id)
        if (row.state !== "queued") {
          return yield* new OutboxError({ reason: "InvalidState", id, state: row.state })
        }
        const now = yield* Clock.currentTimeMillis
        // the recipients still pending are cancelled; the message's state follows from all of them
        // (`partial` when some were accepted by an earlier attempt, `unknown` when some may have been)
        const recipients = yield* Store.recipients(sql, id)
        const state = Policy.finalState(recipients.map((r) => r.state === "pending" ? "cancelled" : r.state))
        // written only if still `queued`: the state checked above is the state changed
        if (!(yield* Store.transition(sql, id, ["queued"], state, now))) return yield* invalidState(id)
        yield* Store.moveRecipients(sql, id, ["pending"], "cancelled")
      })).pipe(Effect.withSpan("Outbox.cancel"))

    const requeue = (id: string) =>
      sql.withTransaction(Effect.gen(function*() {
        yield* Store.lock(sql, id)
        const row = yield* mustFind(id)
        if (!Policy.finalStates.has(row.state) || row.state === "sent") {
          return yield* new OutboxError({ reason: "InvalidState", id, state: row.state })
        }
        const now = yield* Clock.currentTimeMillis
        // a fresh expiry, as a new enqueue gets: the one it had may have passed (an expired message)
        if (!(yield* Store.requeue(sql, id, row.state, now, now + expireAfter))) return yield* invalidState(id)
        // the `unknown` recipients stay `unknown` while they are sent again (the next attempt sends to
        // them too): possibly delivered, they end accepted, refused or still unknown, never `expired`
        yield* Store.moveRecipients(sql, id, ["refused", "expired", "cancelled", "pending"], "pending")
      })).pipe(Effect.withSpan("Outbox.requeue"))

    const metrics = Effect.gen(function*() {
      const counts = yield* Store.counts(sql)
      const now = yield* Clock.currentTimeMillis
      const byState = Object.fromEntries(Policy.messageStates.map((s) => [s, 0])) as Record<State, number>
      for (const { count, state } of counts.states) byState[state as State] = count
      return {
        byState,
        depth: byState.queued + byState.sending,
        oldestAge: Duration.millis(counts.oldestWaiting === undefined ? 0 : Math.max(0, now - counts.oldestWaiting)),
        attempts: counts.attempts,
        outcomes: Object.fromEntries(counts.outcomes.map((o) => [o.outcome, o.count]))
      }
    })

    const purge = (before: DateTime.DateTime | Date) =>
      Store.purge(sql, millis(before), ["sent", "partial", "failed", "unknown", "expired", "cancelled"])

    return { enqueue, status, statusByKey, cancel, requeue, metrics, purge }
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Outbox, SqlError, SqlClient.SqlClient> =>
  Layer.effect(Outbox, make(options))
