/**
 * The outbox's workers: run in every process that sends, on `@effect/cluster` and
 * `@effect/workflow`. A singleton dispatcher starts one durable workflow per committed message;
 * the workflow makes attempts, waits between them on the durable clock with a backoff
 * `Schedule`, and ends at a final state; each attempt is made by the entity of the message's
 * destination (sharded over the runners: one `Mailer`, one connection pool and one rate limit per
 * destination in the whole cluster).
 *
 * A message whose attempt was in flight when its worker died is recorded `unknown` (its end of
 * data may have been written) and not sent again unless `onUnknown: "retry"`.
 *
 * ```ts
 * const Worker = OutboxWorker.layer({ mailer: () => ({ host: "smtp.example.com", port: 587, security: "starttls" }) }).pipe(
 *   Layer.provide(ClusterWorkflowEngine.layer),
 *   Layer.provideMerge(NodeClusterSocket.layer({ storage: "sql" })),
 *   Layer.provide(NodeSmtpTransport.layer),
 *   Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) }))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Entity from "@effect/cluster/Entity"
import type { Sharding } from "@effect/cluster/Sharding"
import * as Singleton from "@effect/cluster/Singleton"
import * as Rpc from "@effect/rpc/Rpc"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Activity from "@effect/workflow/Activity"
import * as DurableClock from "@effect/workflow/DurableClock"
import * as Workflow from "@effect/workflow/Workflow"
import type { WorkflowEngine } from "@effect/workflow/WorkflowEngine"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Policy from "./internal/outbox/policy.js"
import * as Store from "./internal/outbox/store.js"
import * as Mailer from "./Mailer.js"
import type * as SmtpConnection from "./SmtpConnection.js"
import { classify, type SmtpError } from "./SmtpError.js"
import type { SmtpTransport } from "./SmtpTransport.js"

/**
 * Options of {@link layer}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /**
   * The Mailer options for a destination (the relay, its credentials, `maxConnections`,
   * `rateLimit`). Their `retry` is replaced by `false`: retries are the workflow's, durable.
   */
  readonly mailer: (destination: string) => Mailer.Options
  /**
   * When to try again after a deferral (a 4xx, a connection failure): the delay before retry
   * number n is the schedule's n-th; when the schedule ends, the deferred recipients are
   * `expired`. Default: exponential from 1 minute, doubling, at most 1 hour apart (the message's
   * expiry ends it).
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * A message whose attempt was in flight when its worker died (or its connection was lost after
   * the end of data): `"hold"` (default) records it `unknown` and stops, since it may have been
   * delivered; `"retry"` sends it again (a duplicate is possible). Either way, its recipients
   * stay `unknown` until a later attempt has them accepted or refused: a message whose expiry (or
   * retry schedule) ends first ends `unknown`, not `expired`.
   */
  readonly onUnknown?: "hold" | "retry" | undefined
  /**
   * Attempts in flight at once per destination: claimed in the database and handed to the
   * Mailer. It bounds how many messages a worker that dies takes with it as `unknown`, so keep it
   * near the Mailer's connections. Default twice the destination's `maxConnections` (4): enough
   * for the Mailer to put several messages on one connection.
   */
  readonly concurrency?: number | undefined
  /**
   * At most this many messages in progress in the whole cluster (workflows started and not yet
   * past their first attempt, or in an attempt): the dispatcher starts more as they finish, so a
   * backlog of any size costs the workers the memory of this many. Default 1,000.
   */
  readonly maxInFlight?: number | undefined
  /** How often the dispatcher looks for newly committed messages. Default 200 ms. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * How long a waiting message may go untouched before the dispatcher checks its workflow: one
   * that ended without finishing the message (the workflow engine's own storage failed, say) is
   * started again. Default 1 minute.
   */
  readonly sweepAfter?: Duration.DurationInput | undefined
  /** Create the tables when missing. Default true. */
  readonly migrate?: boolean | undefined
}

/**
 * What an attempt told the workflow.
 *
 * @since 0.2.0
 * @category models
 */
export const AttemptReply = Schema.Union(
  Schema.TaggedStruct("Done", { state: Schema.String }),
  Schema.TaggedStruct("Retry", { expiresAt: Schema.Number, soon: Schema.Boolean }),
  Schema.TaggedStruct("Wait", { until: Schema.Number })
)

/**
 * @since 0.2.0
 * @category models
 */
export type AttemptReply = typeof AttemptReply.Type

/**
 * The entity that sends for one destination (its id is the destination).
 *
 * @since 0.2.0
 * @category entities
 */
export const Destination = Entity.make("effect-smtp/OutboxDestination", [
  Rpc.make("Attempt", {
    payload: { id: Schema.String, generation: Schema.Number },
    success: AttemptReply
  })
])

/**
 * One workflow per message and generation (a requeue starts a new one).
 *
 * @since 0.2.0
 * @category workflows
 */
export const Delivery = Workflow.make({
  name: "effect-smtp/OutboxDelivery",
  payload: { id: Schema.String, generation: Schema.Number, destination: Schema.String },
  success: Schema.String,
  idempotencyKey: ({ generation, id }) => `${id}/${generation}`
})

/**
 * The default retry schedule: exponential from 1 minute, at most 1 hour apart, with jitter.
 *
 * @since 0.2.0
 * @category retries
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 minute").pipe(
  Schedule.union(Schedule.spaced("1 hour")),
  Schedule.jittered
)

const attemptsCounter = Metric.counter("smtp_outbox_attempts", { description: "Outbox attempts, by outcome" })

const replyOf = (r: { readonly code: number; readonly lines: ReadonlyArray<string> }): Policy.Reply => ({
  code: r.code,
  text: r.lines.join("\n")
})

const resultOf = (
  either: { readonly _tag: "Right"; readonly right: SmtpConnection.SendResult } | {
    readonly _tag: "Left"
    readonly left: SmtpError
  }
): Policy.AttemptResult => {
  if (either._tag === "Right") {
    const r = either.right
    return {
      _tag: "Sent",
      refused: Object.fromEntries(Object.entries(r.refused).map(([k, v]) => [k, replyOf(v)])),
      reply: replyOf(r.reply),
      queueId: r.queueId
    }
  }
  const error = either.left
  const code = "code" in error && typeof error.code === "number" ? error.code : undefined
  const text = "text" in error && typeof error.text === "string" ? error.text : ""
  return {
    _tag: "Failed",
    disposition: classify(error),
    error: error._tag,
    reply: code === undefined ? undefined : { code, text },
    recipients: error._tag === "SmtpRecipientsRefused"
      ? Object.fromEntries(Object.entries(error.recipients).map(([k, v]) => [k, replyOf(v)]))
      : undefined
  }
}

const textDecoder = new TextDecoder()

const recordRetry = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(6)))

/** An attempt in flight in a destination's entity, for the calls with its key made meanwhile. */
interface Running {
  readonly deferred: Deferred.Deferred<AttemptReply, SqlError>
  /** Whether it got past the wait for a permit (it may have claimed the message). */
  claimed: boolean
}

const makeDestinationHandlers = (options: Options) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const address = yield* Entity.CurrentAddress
    const runnerAddress = yield* Entity.CurrentRunnerAddress
    const runner = `${runnerAddress.host}:${runnerAddress.port}`
    const mailerOptions = options.mailer(address.entityId)
    const mailer = yield* Mailer.make({ ...mailerOptions, retry: false })
    const permits = yield* Effect.makeSemaphore(options.concurrency ?? 2 * (mailerOptions.maxConnections ?? 4))
    const onUnknown = options.onUnknown ?? "hold"
    const inflight = new Map<string, Running>()

    type Claim =
      | { readonly _tag: "Reply"; readonly reply: AttemptReply }
      | {
        readonly _tag: "Send"
        readonly attempt: number
        readonly row: Store.MessageRow
        readonly pending: ReadonlyArray<string>
        /** Those of `pending` that an earlier attempt may have delivered (`onUnknown: "retry"`, a requeue). */
        readonly unknown: ReadonlySet<string>
        readonly payload: Store.Payload
      }

    const finish = (id: string, now: number, expire: boolean) =>
      Effect.map(Store.settle(sql, id, now, { expire }), (state) => ({ _tag: "Done", state }) as const)

    const claim = (id: string, generation: number): Effect.Effect<Claim, SqlError> =>
      sql.withTransaction(Effect.gen(function*() {
        // write first: a claim never races another, and SQLite never has to upgrade a read lock
        yield* Store.lock(sql, id)
        const found = yield* Store.find(sql, { id })
        if (Option.isNone(found)) return { _tag: "Reply", reply: { _tag: "Done", state: "missing" } } as const
        const row = found.value
        if (row.generation !== generation || Policy.finalStates.has(row.state)) {
          return { _tag: "Reply", reply: { _tag: "Done", state: row.state } } as const
        }
        const now = yield* Clock.currentTimeMillis
        if (row.state === "sending") {
          // the attempt in flight when its worker died (or whose reply was lost): it may have been delivered
          yield* Store.finishAttempt(sql, id, row.attempts, now, { outcome: "unknown", error: "WorkerLost" })
          yield* Metric.increment(Metric.tagged(attemptsCounter, "outcome", "unknown"))
          // its recipients may have been delivered, whatever the policy: `unknown` they stay (sent
          // again with "retry"), so that an expiry cannot report them as not sent
          yield* Store.moveRecipients(sql, id, ["pending"], "unknown")
          if (onUnknown === "hold") {
            yield* Store.setState(sql, id, "unknown", now)
            return { _tag: "Reply", reply: { _tag: "Done", state: "unknown" } } as const
          }
        }
        // expiry: the pending recipients become `expired`, the `unknown` ones stay unknown
        if (now >= row.expiresAt) return { _tag: "Reply", reply: yield* finish(id, now, true) } as const
        if (now < row.notBefore) return { _tag: "Reply", reply: { _tag: "Wait", until: row.notBefore } } as const
        const recipients = yield* Store.recipients(sql, id)
        // `unknown` recipients of a waiting message are to be sent again: with "retry", or after a
        // requeue (with "hold", a message with some is never left waiting otherwise)
        const unknown = new Set(recipients.filter((r) => r.state === "unknown").map((r) => r.address))
        const pending = recipients.filter((r) => r.state === "pending" || unknown.has(r.address)).map((r) => r.address)
        if (pending.length === 0) return { _tag: "Reply", reply: yield* finish(id, now, false) } as const
        const attempt = row.attempts + 1
        yield* Store.startAttempt(sql, id, attempt, runner, now)
        const payload = yield* Store.payload(sql, id)
        return { _tag: "Send", attempt, row, pending, unknown, payload } as const
      }))

    const send = (claimed: Extract<Claim, { _tag: "Send" }>) =>
      Effect.gen(function*() {
        const { attempt, payload, pending, row, unknown } = claimed
        const sendOptions = JSON.parse(payload.options) as SmtpConnection.SendmailOptions
        const either = yield* Effect.either(mailer.send({
          from: row.from,
          to: pending,
          message: payload.kind === "text" ? textDecoder.decode(payload.message) : payload.message,
          options: sendOptions
        }))
        const result = resultOf(either)
        const decided = Policy.decide(pending, result)
        yield* Metric.increment(Metric.tagged(attemptsCounter, "outcome", decided.outcome))
        // a recipient an earlier attempt may have delivered and this one deferred is still possibly
        // delivered: it stays `unknown` (and is tried again), never `pending`, which expiry would end as `expired`
        const recipients = decided.recipients.map((r) =>
          r.state === "pending" && unknown.has(r.address) ? { ...r, state: "unknown" as const } : r
        )
        const decision = { ...decided, recipients }
        return yield* sql.withTransaction(Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          // the row's lock first, as every writer of a message and its recipients: one lock order
          yield* Store.lock(sql, row.id)
          yield* Store.updateRecipients(sql, row.id, decision.recipients)
          const queueId = result._tag === "Sent" ? result.queueId : undefined
          yield* Store.finishAttempt(sql, row.id, attempt, now, {
            outcome: decision.outcome,
            error: result._tag === "Failed" ? result.error : undefined,
            reply: result.reply,
            queueId
          })
          // lost after the end of data, and the policy says send again: no reason to wait (the
          // recipients stay `unknown`: the next claim sends to them, an expiry leaves them unknown)
          if (decision.outcome === "unknown" && onUnknown === "retry") {
            yield* Store.setState(sql, row.id, "queued", now, { lastReply: result.reply })
            return { _tag: "Retry", expiresAt: row.expiresAt, soon: true } as const
          }
          // deferred recipients (those an earlier attempt may have delivered included, still
          // `unknown`) wait for the retry schedule; a lost reply under "hold" ends the message `unknown`
          if (
            decision.outcome !== "unknown" &&
            decision.recipients.some((r) => r.state === "pending" || (r.state === "unknown" && unknown.has(r.address)))
          ) {
            yield* Store.setState(sql, row.id, "queued", now, { lastReply: result.reply, queueId })
            return {
              _tag: "Retry",
              expiresAt: row.expiresAt,
              // deferred recipients wait for the retry schedule
              soon: false
            } as const
          }
          const state = yield* Store.settle(sql, row.id, now, { lastReply: result.reply, queueId })
          return { _tag: "Done", state } as const
        })).pipe(
          // the message went out (or not) and this is what happened: a database hiccup here would
          // otherwise leave it `sending`, read later as unknown
          Effect.retry(recordRetry)
        )
      })

    // run uninterruptibly but for the wait for a permit (`restore`): an interruption while waiting
    // (the worker shutting down) ends it before anything was claimed; `claiming` is told when the
    // permit is taken, before the claim
    const attemptOnce = (
      id: string,
      generation: number,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
      claiming: () => void
    ) =>
      Effect.zipRight(
        restore(permits.take(1)),
        Effect.ensuring(
          Effect.suspend(() => {
            claiming()
            return Effect.flatMap(claim(id, generation), (c) => c._tag === "Reply" ? Effect.succeed(c.reply) : send(c))
          }),
          permits.release(1)
        )
      )

    // the lookup, the registration and the start of the attempt in one uninterruptible region, when
    // the handler runs (the RPC server makes the Effect first and starts it later: two made before
    // either ran would both have found nothing, and both claimed; an interruption acted on between
    // the registration and the attempt would leave the key to hang every later call). Once claimed,
    // an attempt runs to its recorded end: an interruption in the middle would leave it `sending`
    // (read later as unknown); its registration is undone and its result given to those waiting for
    // it in the same region
    const attempt = (id: string, generation: number): Effect.Effect<AttemptReply> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.fiberIdWith((fiberId) => {
          const key = `${id}/${generation}`
          const running = inflight.get(key)
          if (running !== undefined) {
            return Effect.gen(function*() {
              const exit = yield* Effect.exit(restore(Deferred.await(running.deferred)))
              // the other one was interrupted while waiting for a permit, never claimed: make the
              // attempt here (unless this call itself was interrupted, the other one still running)
              if (
                Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) && !running.claimed &&
                (yield* Deferred.isDone(running.deferred))
              ) {
                return yield* restore(attempt(id, generation))
              }
              return yield* Effect.orDie(exit)
            })
          }
          const entry: Running = { deferred: Deferred.unsafeMake<AttemptReply, SqlError>(fiberId), claimed: false }
          inflight.set(key, entry)
          return Effect.flatMap(
            Effect.exit(attemptOnce(id, generation, restore, () => {
              entry.claimed = true
            })),
            (exit) => {
              inflight.delete(key)
              return Effect.zipRight(Deferred.done(entry.deferred, exit), Effect.orDie(exit))
            }
          )
        })
      )

    return Destination.of({
      Attempt: ({ payload }) => attempt(payload.id, payload.generation)
    })
  })

const durationUntil = (until: number) =>
  Effect.map(Clock.currentTimeMillis, (now) => Duration.millis(Math.max(0, until - now)))

const makeDeliveryLayer = (options: Options) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const client = yield* Destination.client
    const sql = yield* SqlClient.SqlClient
    const schedule = options.retry ?? defaultRetry
    return Delivery.toLayer(Effect.fnUntraced(function*(payload) {
      let retries = 0
      let waits = 0
      for (let n = 1;; n++) {
        const reply = yield* Activity.make({
          name: `attempt-${n}`,
          success: AttemptReply,
          execute: client(payload.destination).Attempt({ id: payload.id, generation: payload.generation }).pipe(
            // the destination's runner died or could not be reached: the next attempt finds out
            // from the database what became of this one
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause)
                ? Effect.failCause(cause as Cause.Cause<never>)
                : Effect.succeed<AttemptReply>({ _tag: "Retry", expiresAt: Number.MAX_SAFE_INTEGER, soon: true })
            )
          )
        })
        if (reply._tag === "Done") return reply.state
        if (reply._tag === "Wait") {
          yield* DurableClock.sleep({ name: `wait-${++waits}`, duration: yield* durationUntil(reply.until) })
          continue
        }
        let delay: number
        if (reply.soon) {
          delay = 1000
        } else {
          const next = yield* Policy.retryDelay(schedule, ++retries)
          if (Option.isNone(next)) {
            // the schedule is done: the deferred recipients are given up on
            return yield* Activity.make({
              name: `give-up-${n}`,
              success: Schema.String,
              // (only if the message is still this workflow's and waiting: a requeue or a cancel may
              // have come first; under the row's lock, taken first as by every other writer)
              execute: Effect.flatMap(
                Clock.currentTimeMillis,
                (now) => Store.giveUp(sql, payload.id, payload.generation, now)
              ).pipe(Effect.orDie)
            })
          }
          delay = Math.min(next.value, Math.max(0, reply.expiresAt - (yield* Clock.currentTimeMillis)))
        }
        yield* DurableClock.sleep({ name: `retry-${n}`, duration: Duration.millis(delay) })
      }
    }))
  }))

const makeDispatcher = (options: Options) =>
  Singleton.make(
    "effect-smtp/OutboxDispatcher",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const poll = Duration.decode(options.pollInterval ?? "200 millis")
      const sweepAfter = Duration.toMillis(Duration.decode(options.sweepAfter ?? "1 minute"))
      let lastSweep = 0
      // a message waiting with no live workflow: start a new one. 500 rows a sweep, each sweep
      // going on from where the last one stopped, in laps that end and start again from the oldest
      const nextStale = Store.staleSweep(500)
      const sweep = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (now - lastSweep < sweepAfter / 2) return
        lastSweep = now
        const rows = yield* nextStale(sql, now, sweepAfter)
        yield* Effect.forEach(rows, (r) =>
          Effect.gen(function*() {
            const executionId = yield* Delivery.executionId({
              id: r.id,
              generation: r.generation,
              destination: r.destination
            })
            const result = yield* Delivery.poll(executionId)
            if (result !== undefined && result._tag === "Complete") {
              yield* Store.redispatch(sql, r.id, r.generation, now)
            }
          }), { concurrency: 8, discard: true })
      })
      const maxInFlight = options.maxInFlight ?? 1000
      const step = Effect.gen(function*() {
        yield* sweep
        const room = maxInFlight - (yield* Store.inFlight(sql, yield* Clock.currentTimeMillis))
        const rows = room > 0 ? yield* Store.toDispatch(sql, Math.min(room, 500)) : []
        if (rows.length === 0) return yield* Effect.sleep(poll)
        yield* Effect.forEach(
          rows,
          (r) =>
            Delivery.execute({ id: r.id, generation: r.generation, destination: r.destination }, { discard: true }),
          { concurrency: 32, discard: true }
        )
        yield* Store.markDispatched(sql, rows)
      })
      return yield* step.pipe(
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Effect.logWarning("outbox dispatcher step failed; retrying", Cause.squash(cause)),
            Effect.sleep(poll)
          )
        ),
        Effect.forever,
        Effect.annotateLogs({ module: "OutboxWorker" })
      )
    })
  )

/**
 * The worker: the destination entities, the delivery workflow and the dispatcher, registered
 * with the cluster this process runs (`Sharding`, a `WorkflowEngine` such as
 * `ClusterWorkflowEngine.layer`) over the outbox's database (`SqlClient`); sends through the
 * `SmtpTransport` in context.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<never, SqlError, WorkflowEngine | Sharding | SqlClient.SqlClient | SmtpTransport> => {
  const migrate = options.migrate === false
    ? Layer.empty
    : Layer.effectDiscard(Effect.flatMap(SqlClient.SqlClient, Store.migrate))
  const entity = Destination.toLayer(makeDestinationHandlers(options), {
    concurrency: "unbounded",
    maxIdleTime: "5 minutes"
  })
  return Layer.mergeAll(entity, makeDeliveryLayer(options), makeDispatcher(options)).pipe(Layer.provide(migrate))
}
