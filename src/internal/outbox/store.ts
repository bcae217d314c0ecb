/**
 * The outbox's tables and every statement on them, for SQLite and PostgreSQL through
 * `@effect/sql` (the dialect differences are the byte column type and the migration lock).
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { MessageState, RecipientState, RecipientUpdate, Reply } from "./policy.js"
import * as Policy from "./policy.js"

/** @internal */
export const tables = {
  messages: "effect_smtp_outbox",
  recipients: "effect_smtp_outbox_recipients",
  attempts: "effect_smtp_outbox_attempts"
} as const

/**
 * Creates the tables when missing. On PostgreSQL under an advisory lock (several workers may start
 * at once); SQLite serialises writers itself.
 *
 * @internal
 */
export const migrate = (sql: SqlClient.SqlClient): Effect.Effect<void, SqlError> => {
  const bytes = sql.onDialectOrElse({ pg: () => "BYTEA", orElse: () => "BLOB" })
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${tables.messages} (
      id TEXT PRIMARY KEY,
      idempotency_key TEXT NOT NULL UNIQUE,
      destination TEXT NOT NULL,
      mail_from TEXT NOT NULL,
      message_kind TEXT NOT NULL,
      message ${bytes} NOT NULL,
      options TEXT NOT NULL,
      state TEXT NOT NULL,
      generation INTEGER NOT NULL,
      dispatch_pending INTEGER NOT NULL,
      attempts INTEGER NOT NULL,
      not_before BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      queue_id TEXT,
      last_reply TEXT
    )`,
    `CREATE INDEX IF NOT EXISTS ${tables.messages}_dispatch ON ${tables.messages} (created_at) WHERE dispatch_pending = 1`,
    `CREATE INDEX IF NOT EXISTS ${tables.messages}_state ON ${tables.messages} (state, created_at)`,
    `CREATE TABLE IF NOT EXISTS ${tables.recipients} (
      outbox_id TEXT NOT NULL,
      position INTEGER NOT NULL,
      address TEXT NOT NULL,
      state TEXT NOT NULL,
      reply TEXT,
      PRIMARY KEY (outbox_id, position)
    )`,
    `CREATE TABLE IF NOT EXISTS ${tables.attempts} (
      outbox_id TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      runner TEXT NOT NULL,
      started_at BIGINT NOT NULL,
      finished_at BIGINT,
      outcome TEXT,
      error TEXT,
      reply TEXT,
      queue_id TEXT,
      PRIMARY KEY (outbox_id, attempt)
    )`
  ]
  const lock = sql.onDialectOrElse({
    pg: () => sql`SELECT pg_advisory_xact_lock(7263541)`.pipe(Effect.asVoid),
    orElse: () => Effect.void
  })
  return sql.withTransaction(
    Effect.zipRight(lock, Effect.forEach(statements, (s) => sql.unsafe(s), { discard: true }))
  )
}

/** @internal */
export interface NewMessage {
  readonly id: string
  readonly idempotencyKey: string
  readonly destination: string
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly kind: "text" | "bytes"
  readonly message: Uint8Array
  readonly options: string
  readonly notBefore: number
  readonly expiresAt: number
  readonly now: number
}

/**
 * Inserts a message and its recipients, or finds the one already enqueued under the same
 * idempotency key. Returns the id and whether it was new.
 *
 * @internal
 */
export const insert = (
  sql: SqlClient.SqlClient,
  m: NewMessage
): Effect.Effect<{ readonly id: string; readonly created: boolean }, SqlError> =>
  Effect.gen(function*() {
    const rows = yield* sql<{ id: string }>`INSERT INTO ${sql(tables.messages)} ${
      sql.insert({
        id: m.id,
        idempotency_key: m.idempotencyKey,
        destination: m.destination,
        mail_from: m.from,
        message_kind: m.kind,
        message: m.message,
        options: m.options,
        state: "queued",
        generation: 0,
        dispatch_pending: 1,
        attempts: 0,
        not_before: m.notBefore,
        expires_at: m.expiresAt,
        created_at: m.now,
        updated_at: m.now
      })
    } ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`
    if (rows.length === 0) {
      const existing = yield* sql<{ id: string }>`SELECT id FROM ${
        sql(tables.messages)
      } WHERE idempotency_key = ${m.idempotencyKey}`
      return { id: existing[0].id, created: false }
    }
    yield* sql`INSERT INTO ${sql(tables.recipients)} ${
      sql.insert(m.to.map((address, position) => ({ outbox_id: m.id, position, address, state: "pending" })))
    }`
    return { id: m.id, created: true }
  })

/** @internal */
export interface MessageRow {
  readonly id: string
  readonly idempotencyKey: string
  readonly destination: string
  readonly from: string
  readonly state: MessageState
  readonly generation: number
  readonly attempts: number
  readonly notBefore: number
  readonly expiresAt: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly queueId: string | undefined
  readonly lastReply: Reply | undefined
}

/** @internal */
export interface RecipientRow {
  readonly address: string
  readonly state: RecipientState
  readonly reply: Reply | undefined
}

/** @internal */
export interface AttemptRow {
  readonly attempt: number
  readonly runner: string
  readonly startedAt: number
  readonly finishedAt: number | undefined
  readonly outcome: string | undefined
  readonly error: string | undefined
  readonly reply: Reply | undefined
  readonly queueId: string | undefined
}

const num = (u: unknown): number => typeof u === "number" ? u : Number(u)
const opt = (u: unknown): string | undefined => u === null || u === undefined ? undefined : String(u)
/** @internal */
export const encodeReply = (reply: Reply | undefined): string | null =>
  reply === undefined ? null : `${reply.code} ${reply.text}`
const decodeReply = (u: unknown): Reply | undefined => {
  if (typeof u !== "string") return undefined
  const space = u.indexOf(" ")
  return space < 0 ? { code: num(u), text: "" } : { code: num(u.slice(0, space)), text: u.slice(space + 1) }
}

const messageRow = (r: any): MessageRow => ({
  id: r.id,
  idempotencyKey: r.idempotency_key,
  destination: r.destination,
  from: r.mail_from,
  state: r.state,
  generation: num(r.generation),
  attempts: num(r.attempts),
  notBefore: num(r.not_before),
  expiresAt: num(r.expires_at),
  createdAt: num(r.created_at),
  updatedAt: num(r.updated_at),
  queueId: opt(r.queue_id),
  lastReply: decodeReply(r.last_reply)
})

const columns =
  "id, idempotency_key, destination, mail_from, state, generation, attempts, not_before, expires_at, created_at, updated_at, queue_id, last_reply"

/** @internal */
export const find = (
  sql: SqlClient.SqlClient,
  by: { readonly id: string } | { readonly idempotencyKey: string }
): Effect.Effect<Option.Option<MessageRow>, SqlError> =>
  Effect.map(
    "id" in by
      ? sql`SELECT ${sql.literal(columns)} FROM ${sql(tables.messages)} WHERE id = ${by.id}`
      : sql`SELECT ${sql.literal(columns)} FROM ${sql(tables.messages)} WHERE idempotency_key = ${by.idempotencyKey}`,
    (rows) => rows.length === 0 ? Option.none() : Option.some(messageRow(rows[0]))
  )

/** @internal */
export const recipients = (sql: SqlClient.SqlClient, id: string): Effect.Effect<Array<RecipientRow>, SqlError> =>
  Effect.map(
    sql<any>`SELECT address, state, reply FROM ${sql(tables.recipients)} WHERE outbox_id = ${id} ORDER BY position`,
    (rows) => rows.map((r) => ({ address: r.address, state: r.state, reply: decodeReply(r.reply) }))
  )

/** @internal */
export const attempts = (sql: SqlClient.SqlClient, id: string): Effect.Effect<Array<AttemptRow>, SqlError> =>
  Effect.map(
    sql<any>`SELECT attempt, runner, started_at, finished_at, outcome, error, reply, queue_id FROM ${
      sql(tables.attempts)
    } WHERE outbox_id = ${id} ORDER BY attempt`,
    (rows) =>
      rows.map((r) => ({
        attempt: num(r.attempt),
        runner: r.runner,
        startedAt: num(r.started_at),
        finishedAt: r.finished_at === null ? undefined : num(r.finished_at),
        outcome: opt(r.outcome),
        error: opt(r.error),
        reply: decodeReply(r.reply),
        queueId: opt(r.queue_id)
      }))
  )

/** @internal */
export interface Payload {
  readonly kind: "text" | "bytes"
  readonly message: Uint8Array
  readonly options: string
}

/** @internal */
export const payload = (sql: SqlClient.SqlClient, id: string): Effect.Effect<Payload, SqlError> =>
  Effect.map(
    sql<any>`SELECT message_kind, message, options FROM ${sql(tables.messages)} WHERE id = ${id}`,
    (rows) => {
      const m = rows[0].message
      return {
        kind: rows[0].message_kind,
        // drivers return Buffer (a Uint8Array); copy nothing, only the view type
        message: m instanceof Uint8Array ? m : new Uint8Array(m),
        options: rows[0].options
      }
    }
  )

/** Messages waiting for the dispatcher to start their workflow. @internal */
export const toDispatch = (
  sql: SqlClient.SqlClient,
  limit: number
): Effect.Effect<Array<{ readonly id: string; readonly generation: number; readonly destination: string }>, SqlError> =>
  Effect.map(
    sql<any>`SELECT id, generation, destination FROM ${
      sql(tables.messages)
    } WHERE dispatch_pending = 1 ORDER BY created_at LIMIT ${limit}`,
    (rows) => rows.map((r) => ({ id: r.id, generation: num(r.generation), destination: r.destination }))
  )

/** Where the sweeper stopped: the last row it looked at. @internal */
export interface StaleCursor {
  readonly updatedAt: number
  readonly id: string
}

/**
 * Messages still waiting (`queued` / `sending`) whose workflow was started and which nothing has
 * touched for a while: candidates for the sweeper (a workflow that died leaves one behind). Not
 * those waiting for a `notBefore` still to come (their workflow sleeps until then, and they could be
 * any number); the others page by (updated_at, id) after `after`, so that however many wait
 * legitimately (for a retry), every one is looked at in turn.
 *
 * @internal
 */
export const stale = (
  sql: SqlClient.SqlClient,
  before: number,
  now: number,
  after: StaleCursor | undefined,
  limit: number
): Effect.Effect<
  Array<{ readonly id: string; readonly generation: number; readonly destination: string; readonly updatedAt: number }>,
  SqlError
> =>
  Effect.map(
    sql<any>`SELECT id, generation, destination, updated_at FROM ${sql(tables.messages)} WHERE ${
      sql.in("state", ["queued", "sending"])
    } AND dispatch_pending = 0 AND updated_at < ${before} AND not_before <= ${now}${
      after === undefined
        ? sql.literal("")
        : sql` AND (updated_at > ${after.updatedAt} OR (updated_at = ${after.updatedAt} AND id > ${after.id}))`
    } ORDER BY updated_at, id LIMIT ${limit}`,
    (rows) =>
      rows.map((r) => ({
        id: r.id,
        generation: num(r.generation),
        destination: r.destination,
        updatedAt: num(r.updated_at)
      }))
  )

/**
 * The sweeper's walk through {@link stale}: `limit` rows a call, each call going on from where the
 * last one stopped, in laps. A lap covers the rows untouched since its first call (its `before` is
 * fixed then), so it ends, with a short page, after a bounded number of calls however many rows are
 * touched meanwhile (a large backlog of retries keeps moving rows ahead of the cursor); the next lap
 * starts from the oldest again, where a row behind the cursor may have become a candidate without
 * its `updated_at` changing (its `notBefore` passed, or it was dispatched).
 *
 * @internal
 */
export const staleSweep = (limit: number) => {
  let lap: { readonly before: number; readonly after: StaleCursor | undefined } | undefined
  return (sql: SqlClient.SqlClient, now: number, sweepAfter: number) =>
    Effect.suspend(() => {
      const current = lap ?? { before: now - sweepAfter, after: undefined }
      return Effect.map(stale(sql, current.before, now, current.after, limit), (rows) => {
        const last = rows.at(-1)
        lap = rows.length < limit || last === undefined
          ? undefined
          : { before: current.before, after: { updatedAt: last.updatedAt, id: last.id } }
        return rows
      })
    })
}

/** A message whose workflow ended without finishing it gets a new one (same recipients). @internal */
export const redispatch = (
  sql: SqlClient.SqlClient,
  id: string,
  generation: number,
  now: number
): Effect.Effect<void, SqlError> =>
  sql`UPDATE ${
    sql(tables.messages)
  } SET generation = generation + 1, dispatch_pending = 1, updated_at = ${now} WHERE id = ${id} AND generation = ${generation} AND ${
    sql.in("state", ["queued", "sending"])
  }`.pipe(Effect.asVoid)

/** Takes the row's write lock first (PostgreSQL: the row; SQLite: the database, waiting if busy). @internal */
export const lock = (sql: SqlClient.SqlClient, id: string): Effect.Effect<void, SqlError> =>
  sql`UPDATE ${sql(tables.messages)} SET updated_at = updated_at WHERE id = ${id}`.pipe(Effect.asVoid)

/**
 * Messages whose workflow is running and holds memory in a worker: dispatched and not yet
 * attempted (and due), or being attempted. What the dispatcher bounds.
 *
 * @internal
 */
export const inFlight = (sql: SqlClient.SqlClient, now: number): Effect.Effect<number, SqlError> =>
  Effect.map(
    sql<any>`SELECT COUNT(*) AS n FROM ${
      sql(tables.messages)
    } WHERE state = 'sending' OR (state = 'queued' AND dispatch_pending = 0 AND attempts = 0 AND not_before <= ${now})`,
    (rows) => num(rows[0].n)
  )

/** @internal */
export const markDispatched = (
  sql: SqlClient.SqlClient,
  items: ReadonlyArray<{ readonly id: string; readonly generation: number }>
): Effect.Effect<void, SqlError> => {
  const byGeneration = new Map<number, Array<string>>()
  for (const { generation, id } of items) {
    const ids = byGeneration.get(generation)
    if (ids) ids.push(id)
    else byGeneration.set(generation, [id])
  }
  return Effect.forEach(
    byGeneration,
    ([generation, ids]) =>
      sql`UPDATE ${sql(tables.messages)} SET dispatch_pending = 0 WHERE ${
        sql.in("id", ids)
      } AND generation = ${generation}`,
    { discard: true }
  )
}

/** @internal */
export const setState = (
  sql: SqlClient.SqlClient,
  id: string,
  state: MessageState,
  now: number,
  extra?: { readonly queueId?: string | undefined; readonly lastReply?: Reply | undefined }
): Effect.Effect<void, SqlError> =>
  sql`UPDATE ${sql(tables.messages)} SET ${
    sql.update({
      state,
      updated_at: now,
      ...(extra?.queueId !== undefined ? { queue_id: extra.queueId } : {}),
      ...(extra?.lastReply !== undefined ? { last_reply: encodeReply(extra.lastReply) } : {})
    })
  } WHERE id = ${id}`.pipe(Effect.asVoid)

/**
 * Moves the message to state `to` only if it is still in one of `from` (what the caller read and
 * checked); returns whether it was.
 *
 * @internal
 */
export const transition = (
  sql: SqlClient.SqlClient,
  id: string,
  from: ReadonlyArray<MessageState>,
  to: MessageState,
  now: number
): Effect.Effect<boolean, SqlError> =>
  Effect.map(
    sql<{ id: string }>`UPDATE ${sql(tables.messages)} SET state = ${to}, updated_at = ${now} WHERE id = ${id} AND ${
      sql.in("state", from)
    } RETURNING id`,
    (rows) => rows.length > 0
  )

/** Claims the message for an attempt: state `sending`, the attempt counted and recorded. @internal */
export const startAttempt = (
  sql: SqlClient.SqlClient,
  id: string,
  attempt: number,
  runner: string,
  now: number
): Effect.Effect<void, SqlError> =>
  Effect.zipRight(
    sql`UPDATE ${
      sql(tables.messages)
    } SET state = 'sending', attempts = ${attempt}, updated_at = ${now} WHERE id = ${id}`,
    sql`INSERT INTO ${sql(tables.attempts)} ${
      sql.insert({ outbox_id: id, attempt, runner, started_at: now })
    } ON CONFLICT (outbox_id, attempt) DO NOTHING`
  ).pipe(Effect.asVoid)

/** @internal */
export const finishAttempt = (
  sql: SqlClient.SqlClient,
  id: string,
  attempt: number,
  now: number,
  result: {
    readonly outcome: string
    readonly error?: string | undefined
    readonly reply?: Reply | undefined
    readonly queueId?: string | undefined
  }
): Effect.Effect<void, SqlError> =>
  sql`UPDATE ${sql(tables.attempts)} SET ${
    sql.update({
      finished_at: now,
      outcome: result.outcome,
      error: result.error ?? null,
      reply: encodeReply(result.reply),
      queue_id: result.queueId ?? null
    })
  } WHERE outbox_id = ${id} AND attempt = ${attempt}`.pipe(Effect.asVoid)

/** @internal */
export const updateRecipients = (
  sql: SqlClient.SqlClient,
  id: string,
  updates: ReadonlyArray<RecipientUpdate>
): Effect.Effect<void, SqlError> =>
  Effect.forEach(
    updates,
    (u) =>
      sql`UPDATE ${sql(tables.recipients)} SET state = ${u.state}, reply = ${
        encodeReply(u.reply)
      } WHERE outbox_id = ${id} AND address = ${u.address}`,
    { discard: true }
  )

/** Every recipient in one of `from` moves to `to`. @internal */
export const moveRecipients = (
  sql: SqlClient.SqlClient,
  id: string,
  from: ReadonlyArray<RecipientState>,
  to: RecipientState
): Effect.Effect<void, SqlError> =>
  sql`UPDATE ${sql(tables.recipients)} SET state = ${to} WHERE outbox_id = ${id} AND ${sql.in("state", from)}`.pipe(
    Effect.asVoid
  )

/**
 * A message goes back to the queue under a new generation (a new workflow), due now and expiring
 * at `expiresAt`, only if it is still in state `from`; returns whether it was.
 *
 * @internal
 */
export const requeue = (
  sql: SqlClient.SqlClient,
  id: string,
  from: MessageState,
  now: number,
  expiresAt: number
): Effect.Effect<boolean, SqlError> =>
  Effect.map(
    sql<{ id: string }>`UPDATE ${
      sql(tables.messages)
    } SET state = 'queued', generation = generation + 1, dispatch_pending = 1, not_before = ${now}, expires_at = ${expiresAt}, updated_at = ${now} WHERE id = ${id} AND state = ${from} RETURNING id`,
    (rows) => rows.length > 0
  )

/**
 * Ends a message with no recipient left to try (those still pending first become `expired` when
 * `expire`; `unknown` ones stay unknown): its state follows from its recipients'. The caller holds
 * the message's row lock ({@link lock}) and has checked its state.
 *
 * @internal
 */
export const settle = (
  sql: SqlClient.SqlClient,
  id: string,
  now: number,
  options: {
    readonly expire?: boolean
    readonly lastReply?: Reply | undefined
    readonly queueId?: string | undefined
  } = {}
): Effect.Effect<MessageState, SqlError> =>
  Effect.gen(function*() {
    if (options.expire) yield* moveRecipients(sql, id, ["pending"], "expired")
    const state = Policy.finalState((yield* recipients(sql, id)).map((r) => r.state))
    yield* setState(sql, id, state, now, { lastReply: options.lastReply, queueId: options.queueId })
    return state
  })

/**
 * The retry schedule of a message's workflow ended: its deferred recipients are given up on
 * (`expired`), if the message is still that workflow's (`generation`) and waiting for a retry
 * (`queued`); otherwise nothing is written (a requeue or a cancel came first). Returns the message's
 * state. The row's lock first, as every writer of a message and its recipients takes it (claim,
 * attempt record, cancel, requeue): on PostgreSQL, a writer taking the recipients' rows first could
 * deadlock with them.
 *
 * @internal
 */
export const giveUp = (
  sql: SqlClient.SqlClient,
  id: string,
  generation: number,
  now: number
): Effect.Effect<string, SqlError> =>
  sql.withTransaction(Effect.gen(function*() {
    yield* lock(sql, id)
    const found = yield* find(sql, { id })
    if (Option.isNone(found)) return "missing"
    const row = found.value
    if (row.generation !== generation || row.state !== "queued") return row.state
    return yield* settle(sql, id, now, { expire: true })
  }))

/** @internal */
export interface Counts {
  readonly states: ReadonlyArray<{ readonly state: string; readonly count: number }>
  readonly oldestWaiting: number | undefined
  readonly attempts: number
  readonly outcomes: ReadonlyArray<{ readonly outcome: string; readonly count: number }>
}

/** @internal */
export const counts = (sql: SqlClient.SqlClient): Effect.Effect<Counts, SqlError> =>
  Effect.gen(function*() {
    const states = yield* sql<any>`SELECT state, COUNT(*) AS n FROM ${sql(tables.messages)} GROUP BY state`
    const oldest = yield* sql<any>`SELECT MIN(created_at) AS t FROM ${
      sql(tables.messages)
    } WHERE state IN ('queued', 'sending')`
    const outcomes = yield* sql<any>`SELECT outcome, COUNT(*) AS n FROM ${
      sql(tables.attempts)
    } WHERE outcome IS NOT NULL GROUP BY outcome`
    const started = yield* sql<any>`SELECT COUNT(*) AS n FROM ${sql(tables.attempts)}`
    return {
      states: states.map((r) => ({ state: r.state, count: num(r.n) })),
      oldestWaiting: oldest[0]?.t === null || oldest[0]?.t === undefined ? undefined : num(oldest[0].t),
      attempts: num(started[0].n),
      outcomes: outcomes.map((r) => ({ outcome: r.outcome, count: num(r.n) }))
    }
  })

/** Deletes messages in a final state last updated before `before`, with their history. @internal */
export const purge = (
  sql: SqlClient.SqlClient,
  before: number,
  states: ReadonlyArray<MessageState>
): Effect.Effect<number, SqlError> =>
  sql.withTransaction(Effect.gen(function*() {
    const rows = yield* sql<{ id: string }>`SELECT id FROM ${sql(tables.messages)} WHERE ${
      sql.in("state", states)
    } AND updated_at < ${before}`
    if (rows.length === 0) return 0
    for (let i = 0; i < rows.length; i += 500) {
      const ids = rows.slice(i, i + 500).map((r) => r.id)
      yield* sql`DELETE FROM ${sql(tables.recipients)} WHERE ${sql.in("outbox_id", ids)}`
      yield* sql`DELETE FROM ${sql(tables.attempts)} WHERE ${sql.in("outbox_id", ids)}`
      yield* sql`DELETE FROM ${sql(tables.messages)} WHERE ${sql.in("id", ids)}`
    }
    return rows.length
  }))
