import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import {
  Context,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Option,
  Schedule,
  Scope
} from "effect"
import { Message } from "effect-smtp"
import { Outbox, OutboxWorker } from "effect-smtp/outbox"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as Store from "../../src/internal/outbox/store.js"
import { type Db, freshDatabase, outboxLayer } from "./harness.js"

const message = (n: number) => `From: app@example.com\r\nSubject: order ${n}\r\n\r\nbody ${n}\r\n`

/** Polls until the message reaches a final state (or the test's timeout). */
const settle = (id: string) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox.Outbox
    while (true) {
      const status = yield* outbox.status(id)
      if (Option.isSome(status) && !["queued", "sending"].includes(status.value.state)) return status.value
      yield* Effect.sleep("50 millis")
    }
  })

/** Polls until the message is in `state`. */
const reach = (id: string, state: string) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox.Outbox
    while (true) {
      const status = yield* outbox.status(id)
      if (Option.isSome(status) && status.value.state === state) return status.value
      yield* Effect.sleep("20 millis")
    }
  })

/** An OutboxError's reason and state (anything else as it is, to fail the comparison). */
const reasonAndState = (error: unknown) => Outbox.isOutboxError(error) ? [error.reason, error.state] : error

/** Enqueues a message for which no workflow is started (as if dispatched): nothing attempts it but the test. */
const enqueueUndispatched = (input: Outbox.EnqueueInput) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox.Outbox
    return yield* sql.withTransaction(Effect.gen(function*() {
      const id = yield* outbox.enqueue(input)
      yield* sql`UPDATE effect_smtp_outbox SET dispatch_pending = 0 WHERE id = ${id}`
      return id
    }))
  })

/**
 * The SqlClient with `hook` run right after the first statement whose text (its literal parts
 * joined with `?`) `matches`, in the same transaction: what another connection's committed write
 * between that read and the caller's next statement would look like to the caller.
 */
const afterFirst = (
  sql: SqlClient.SqlClient,
  matches: (text: string) => boolean,
  hook: Effect.Effect<unknown, unknown>
): SqlClient.SqlClient => {
  let armed = true
  return new Proxy(sql, {
    apply(target, thisArg, args: Array<any>) {
      const statement = Reflect.apply(target, thisArg, args)
      if (armed && Array.isArray(args[0]) && "raw" in args[0] && matches(args[0].join("?"))) {
        armed = false
        return Effect.tap(statement, () => Effect.orDie(hook))
      }
      return statement
    }
  })
}

/**
 * The outbox's behaviour on one database, in one process (a one-runner cluster): run on SQLite by
 * test/outbox/outbox.test.ts and on PostgreSQL by test/interop/outbox.test.ts.
 */
export const suite = (db: Db) =>
  describe(`outbox on ${db}`, { timeout: 60_000 }, () => {
    const run = <A, E>(
      server: TestSmtpServer.Options,
      body: (
        server: TestSmtpServer.Service
      ) => Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof outboxLayer>>>,
      options:
        | Parameters<typeof outboxLayer>[2]
        | ((server: TestSmtpServer.Service) => Parameters<typeof outboxLayer>[2]) = {}
    ) =>
      Effect.gen(function*() {
        const smtp = yield* TestSmtpServer.make(server)
        const database = yield* freshDatabase(db)
        return yield* body(smtp).pipe(
          Effect.provide(outboxLayer(database, smtp, typeof options === "function" ? options(smtp) : options))
        )
      }).pipe(Effect.scoped)

    it.live("a committed message is sent once; a rolled-back one never", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          yield* sql`CREATE TABLE orders (id TEXT)`
          const id = yield* sql.withTransaction(Effect.gen(function*() {
            yield* sql`INSERT INTO orders (id) VALUES ('o-1')`
            return yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          }))
          const rolledBack = yield* sql.withTransaction(Effect.gen(function*() {
            const id = yield* outbox.enqueue({ from: "app@example.com", to: "bob@example.org", message: message(2) })
            return yield* Effect.fail({ _tag: "Abort" as const, id })
          })).pipe(Effect.flip, Effect.filterOrDie((e) => e._tag === "Abort", () => "unexpected"))
          const status = yield* settle(id)
          assert.strictEqual(status.state, "sent")
          assert.deepStrictEqual(status.recipients.map((r) => [r.address, r.state]), [["ann@example.org", "accepted"]])
          assert.strictEqual(status.attempts.length, 1)
          assert.strictEqual(status.attempts[0].outcome, "sent")
          assert.isTrue(Option.isNone(yield* outbox.status((rolledBack as { id: string }).id)))
          yield* Effect.sleep("300 millis")
          const received = yield* server.messages
          assert.strictEqual(received.length, 1)
          assert.deepStrictEqual(received[0].envelope, { from: "app@example.com", to: ["ann@example.org"] })
          assert.strictEqual(new TextDecoder().decode(received[0].raw), message(1))
          assert.strictEqual(status.queueId, received[0].queueId)
          assert.strictEqual(status.attempts[0].queueId, received[0].queueId)
        })))

    it.live("an idempotency key makes a second enqueue a no-op", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const input = { from: "app@example.com", to: "ann@example.org", message: message(1), idempotencyKey: "k-1" }
          const first = yield* outbox.enqueue(input)
          const second = yield* outbox.enqueue({ ...input, message: message(2) })
          assert.strictEqual(second, first)
          yield* settle(first)
          const third = yield* outbox.enqueue(input)
          assert.strictEqual(third, first)
          yield* Effect.sleep("300 millis")
          assert.strictEqual((yield* server.messages).length, 1)
          assert.strictEqual(Option.getOrThrow(yield* outbox.statusByKey("k-1")).id, first)
        })))

    it.live("a recipient deferred with 4xx is retried alone; the others are not sent twice", () => {
      let deferrals = 2
      return run({
        refuse: (address) => address === "bob@example.org" && deferrals-- > 0 ? "451 4.3.0 Try again later" : undefined
      }, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({
            from: "app@example.com",
            to: ["ann@example.org", "bob@example.org"],
            message: message(1)
          })
          const status = yield* settle(id)
          assert.strictEqual(status.state, "sent")
          assert.deepStrictEqual(status.attempts.map((a) => a.outcome), ["partial", "deferred", "sent"])
          assert.deepStrictEqual(status.recipients.map((r) => r.state), ["accepted", "accepted"])
          const received = yield* server.messages
          assert.deepStrictEqual(received.map((r) => r.envelope.to), [["ann@example.org"], ["bob@example.org"]])
        }))
    })

    it.live("5xx is final: refused recipients are not retried, the others are sent", () =>
      run({ refuse: { "bob@example.org": "550 5.1.1 No such user" } }, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const partial = yield* outbox.enqueue({
            from: "app@example.com",
            to: ["ann@example.org", "bob@example.org"],
            message: message(1)
          })
          const failed = yield* outbox.enqueue({ from: "app@example.com", to: "bob@example.org", message: message(2) })
          const p = yield* settle(partial)
          const f = yield* settle(failed)
          assert.strictEqual(p.state, "partial")
          assert.deepStrictEqual(p.recipients.map((r) => [r.state, r.reply?.code]), [["accepted", 250], [
            "refused",
            550
          ]])
          assert.strictEqual(f.state, "failed")
          assert.deepStrictEqual(f.attempts.map((a) => [a.outcome, a.error]), [["refused", "SmtpRecipientsRefused"]])
          yield* Effect.sleep("400 millis")
          assert.strictEqual((yield* server.messages).length, 1)
        })))

    it.live("expiry ends the retries: still-deferred recipients are expired", () =>
      run({ refuse: () => "421 4.4.2 Busy" }, () =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({
            from: "app@example.com",
            to: "ann@example.org",
            message: message(1),
            expiresAt: new Date(Date.now() + 600)
          })
          const status = yield* settle(id)
          assert.strictEqual(status.state, "expired")
          assert.deepStrictEqual(status.recipients.map((r) => [r.state, r.reply?.code]), [["expired", 421]])
          assert.isAtLeast(status.attempts.length, 2)
          assert.isTrue(status.attempts.every((a) => a.outcome === "deferred"))
        })))

    it.live("the end of a retry schedule expires the deferred recipients", () =>
      run({ respond: (e) => e.stage === "mail" ? "451 4.3.2 Not now" : undefined }, () =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          const status = yield* settle(id)
          assert.strictEqual(status.state, "expired")
          assert.deepStrictEqual(status.attempts.map((a) => [a.outcome, a.error, a.reply?.code]), [
            ["deferred", "SmtpSenderRefused", 451],
            ["deferred", "SmtpSenderRefused", 451],
            ["deferred", "SmtpSenderRefused", 451]
          ])
        }), { retry: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(2))) }))

    it.live("a connection lost after the end of data is unknown and not retried; requeue sends it again", () => {
      let drop = true
      return run({ respond: (e) => e.stage === "message" && drop ? "disconnect" : undefined }, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          const status = yield* settle(id)
          assert.strictEqual(status.state, "unknown")
          assert.deepStrictEqual(
            status.recipients.map((r) =>
              r.state
            ),
            ["unknown"]
          )
          assert.deepStrictEqual(status.attempts.map((a) => [a.outcome, a.error]), [["unknown", "SmtpDeliveryUnknown"]])
          yield* Effect.sleep("500 millis")
          assert.strictEqual(Option.getOrThrow(yield* outbox.status(id)).attempts.length, 1)
          const error = yield* outbox.cancel(id).pipe(Effect.flip)
          assert.strictEqual(error._tag === "OutboxError" && error.reason, "InvalidState")
          drop = false
          yield* outbox.requeue(id)
          const again = yield* settle(id)
          assert.strictEqual(again.state, "sent")
          assert.deepStrictEqual(again.attempts.map((a) => a.outcome), ["unknown", "sent"])
          assert.strictEqual((yield* server.messages).length, 1)
        }))
    })

    it.live("onUnknown: retry sends again after a lost final reply", () => {
      let drop = 1
      return run({
        respond: (e) => e.stage === "message" && drop-- > 0 ? "disconnect" : undefined
      }, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          const status = yield* settle(id)
          assert.strictEqual(status.state, "sent")
          assert.deepStrictEqual(
            status.attempts.map((a) => a.outcome),
            ["unknown", "sent"]
          )
          assert.strictEqual((yield* server.messages).length, 1)
        }), { onUnknown: "retry" })
    })

    it.live("an attempt left in flight by a dead worker is unknown, not sent again", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          // what a worker killed mid-send leaves: the message `sending`, its attempt started, unfinished
          const id = yield* sql.withTransaction(Effect.gen(function*() {
            const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
            yield* sql`UPDATE effect_smtp_outbox SET state = 'sending', attempts = 1 WHERE id = ${id}`
            yield* sql`INSERT INTO effect_smtp_outbox_attempts (outbox_id, attempt, runner, started_at) VALUES (${id}, 1, 'dead:1', 0)`
            return id
          }))
          const status = yield* settle(id)
          assert.strictEqual(status.state, "unknown")
          assert.deepStrictEqual(status.attempts.map((a) => [a.runner, a.outcome, a.error]), [[
            "dead:1",
            "unknown",
            "WorkerLost"
          ]])
          yield* Effect.sleep("300 millis")
          assert.strictEqual((yield* server.messages).length, 0)
        })))

    it.live("a message whose workflow ended without finishing it is picked up by the sweeper", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          yield* settle(id)
          // what a workflow that died before its attempt (its engine's storage failed) leaves behind:
          // the message waiting, its workflow complete
          yield* sql`UPDATE effect_smtp_outbox SET state = 'queued', updated_at = 0 WHERE id = ${id}`
          yield* sql`UPDATE effect_smtp_outbox_recipients SET state = 'pending' WHERE outbox_id = ${id}`
          const status = yield* settle(id)
          assert.strictEqual(status.state, "sent")
          assert.deepStrictEqual(status.attempts.map((a) => a.outcome), ["sent", "sent"])
          assert.strictEqual((yield* server.messages).length, 2)
        }), { sweepAfter: "400 millis" }))

    it.live("maxInFlight bounds the messages in progress: with 1, attempts never overlap", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const ids = yield* Effect.forEach(
            Array.from({ length: 8 }, (_, i) => i),
            (i) => outbox.enqueue({ from: "app@example.com", to: `u${i}@example.org`, message: message(i) })
          )
          const attempts = (yield* Effect.forEach(ids, settle)).map((s) => s.attempts[0])
            .sort((a, b) => Number(DateTime.toEpochMillis(a.startedAt)) - Number(DateTime.toEpochMillis(b.startedAt)))
          for (let i = 1; i < attempts.length; i++) {
            assert.isAtLeast(
              DateTime.toEpochMillis(attempts[i].startedAt),
              DateTime.toEpochMillis(attempts[i - 1].finishedAt!)
            )
          }
          assert.strictEqual((yield* server.messages).length, 8)
        }), { maxInFlight: 1 }))

    it.live("notBefore delays the send; cancel stops a pending message", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const later = yield* outbox.enqueue({
            from: "app@example.com",
            to: "ann@example.org",
            message: message(1),
            notBefore: new Date(Date.now() + 800)
          })
          const never = yield* outbox.enqueue({
            from: "app@example.com",
            to: "bob@example.org",
            message: message(2),
            notBefore: new Date(Date.now() + 800)
          })
          yield* Effect.sleep("400 millis")
          assert.strictEqual((yield* server.messages).length, 0)
          yield* outbox.cancel(never)
          const status = yield* settle(later)
          assert.strictEqual(status.state, "sent")
          yield* Effect.sleep("800 millis")
          const cancelled = Option.getOrThrow(yield* outbox.status(never))
          assert.strictEqual(cancelled.state, "cancelled")
          assert.deepStrictEqual(
            cancelled.recipients.map((r) => r.state),
            ["cancelled"]
          )
          assert.deepStrictEqual((yield* server.messages).map((m) => m.envelope.to), [["ann@example.org"]])
          const error = yield* outbox.cancel(later).pipe(Effect.flip)
          assert.strictEqual(error._tag === "OutboxError" && error.state, "sent")
          const missing = yield* outbox.cancel("no-such-id").pipe(Effect.flip)
          assert.strictEqual(missing._tag === "OutboxError" && missing.reason, "NotFound")
        })))

    it.live("a composed Message: envelope from its headers, Bcc not transmitted", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const composed = yield* Message.make({
            from: "App <app@example.com>",
            to: "Ann <ann@example.org>",
            bcc: "audit@example.net",
            subject: "Your order",
            text: "Thanks."
          })
          const id = yield* outbox.enqueue({ message: composed })
          const status = yield* settle(id)
          assert.strictEqual(status.state, "sent")
          assert.strictEqual(status.destination, "example.org")
          const [received] = yield* server.messages
          assert.deepStrictEqual(received.envelope, {
            from: "app@example.com",
            to: ["ann@example.org", "audit@example.net"]
          })
          assert.notInclude(new TextDecoder().decode(received.raw), "audit@example.net")
        })))

    it.live("invalid input is a typed error and writes nothing; metrics count by state", () =>
      run({ refuse: { "bob@example.org": "550 5.1.1 No such user" } }, () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          const none = yield* outbox.enqueue({ from: "app@example.com", to: [], message: message(1) }).pipe(Effect.flip)
          assert.strictEqual(none._tag, "SmtpInvalidInput")
          const crlf = yield* outbox.enqueue({
            from: "a@b\r\nRCPT TO:<x@y>",
            to: "ann@example.org",
            message: message(1)
          })
            .pipe(Effect.flip)
          assert.strictEqual(crlf._tag, "SmtpInvalidInput")
          assert.notInclude(crlf.message, "x@y")
          const [{ n }] = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM effect_smtp_outbox`
          assert.strictEqual(Number(n), 0)
          const named = yield* outbox.enqueue({
            from: "app@example.com",
            to: "Ann <ann@Example.ORG>",
            message: message(0),
            notBefore: new Date(Date.now() + 60_000)
          })
          assert.strictEqual(Option.getOrThrow(yield* outbox.status(named)).destination, "example.org")
          yield* outbox.cancel(named)
          const a = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          const b = yield* outbox.enqueue({ from: "app@example.com", to: "bob@example.org", message: message(2) })
          const c = yield* outbox.enqueue({
            from: "app@example.com",
            to: "cy@example.org",
            message: message(3),
            notBefore: new Date(Date.now() + 60_000)
          })
          yield* settle(a)
          yield* settle(b)
          const metrics = yield* outbox.metrics
          assert.strictEqual(metrics.byState.sent, 1)
          assert.strictEqual(metrics.byState.failed, 1)
          assert.strictEqual(metrics.byState.queued, 1)
          assert.strictEqual(metrics.depth, 1)
          assert.isAbove(Duration.toMillis(metrics.oldestAge), 0)
          assert.strictEqual(metrics.attempts, 2)
          assert.deepStrictEqual(metrics.outcomes, { sent: 1, refused: 1 })
          yield* outbox.cancel(c)
          assert.strictEqual(yield* outbox.purge(new Date(Date.now() + 1000)), 4)
          assert.strictEqual((yield* outbox.metrics).depth, 0)
        })))

    it.live("cancel and requeue change only the state they checked: a claim committed in between is not overwritten", () =>
      run({}, () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          const later = new Date(Date.now() + 3_600_000)
          const id = yield* enqueueUndispatched({
            from: "app@example.com",
            to: "ann@example.org",
            message: message(1),
            notBefore: later
          })
          // a worker's claim lands right after cancel read the message `queued`
          const claim = sql`UPDATE effect_smtp_outbox SET state = 'sending', attempts = 1 WHERE id = ${id}`
          const isFind = (text: string) => text.startsWith("SELECT ?") && text.includes(" WHERE id = ")
          const racing = yield* Outbox.make({ migrate: false }).pipe(
            Effect.provideService(SqlClient.SqlClient, afterFirst(sql, isFind, claim))
          )
          const error = yield* racing.cancel(id).pipe(Effect.flip)
          assert.deepStrictEqual(reasonAndState(error), ["InvalidState", "sending"])
          // (the simulated claim was in cancel's transaction, rolled back with it)
          const status = Option.getOrThrow(yield* outbox.status(id))
          assert.strictEqual(status.state, "queued")
          assert.deepStrictEqual(status.recipients.map((r) => r.state), ["pending"])
          // a requeue that read `unknown` while another requeue's workflow claimed the message
          yield* sql`UPDATE effect_smtp_outbox SET state = 'unknown' WHERE id = ${id}`
          const generation =
            (yield* sql<{ generation: number }>`SELECT generation FROM effect_smtp_outbox WHERE id = ${id}`)[0]
              .generation
          const racingRequeue = yield* Outbox.make({ migrate: false }).pipe(
            Effect.provideService(SqlClient.SqlClient, afterFirst(sql, isFind, claim))
          )
          const requeueError = yield* racingRequeue.requeue(id).pipe(Effect.flip)
          assert.deepStrictEqual(reasonAndState(requeueError), ["InvalidState", "sending"])
          const [after] = yield* sql<
            { generation: number; state: string }
          >`SELECT generation, state FROM effect_smtp_outbox WHERE id = ${id}`
          assert.deepStrictEqual([Number(after.generation), after.state], [Number(generation), "unknown"])
        })))

    if (db === "pg") {
      // What a cancel racing a claim comes to on PostgreSQL: it fails with InvalidState, and writes
      // nothing. It does not show that cancel takes the row lock first (Store.lock): without it the
      // cancel's conditional UPDATE (state still `queued`) waits on the claim's row lock as well, and
      // once the claim commits updates nothing, with the same outcome.
      it.live("PostgreSQL: a cancel that waits on a claim's row lock fails with InvalidState once the claim commits", () =>
        run({}, () =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const outbox = yield* Outbox.Outbox
            const id = yield* enqueueUndispatched({
              from: "app@example.com",
              to: "ann@example.org",
              message: message(1),
              notBefore: new Date(Date.now() + 3_600_000)
            })
            const claimed = yield* Deferred.make<void>()
            const commit = yield* Deferred.make<void>()
            // a worker's claim, on its own connection, committed only when the test says
            const claim = yield* sql.withTransaction(Effect.gen(function*() {
              yield* sql`UPDATE effect_smtp_outbox SET updated_at = updated_at WHERE id = ${id}`
              yield* sql`UPDATE effect_smtp_outbox SET state = 'sending', attempts = 1 WHERE id = ${id}`
              yield* Deferred.succeed(claimed, undefined)
              yield* Deferred.await(commit)
            })).pipe(Effect.fork)
            yield* Deferred.await(claimed)
            const cancel = yield* outbox.cancel(id).pipe(Effect.either, Effect.fork)
            // until the cancel waits for the claim's lock on the message's row
            while (true) {
              const waiting =
                yield* sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE '%effect_smtp_outbox%'`
              if (waiting.length > 0) break
              yield* Effect.sleep("10 millis")
            }
            yield* Deferred.succeed(commit, undefined)
            yield* Fiber.join(claim)
            const result = yield* Fiber.join(cancel)
            assert.isTrue(Either.isLeft(result))
            assert.deepStrictEqual(reasonAndState(Option.getOrThrow(Either.getLeft(result))), [
              "InvalidState",
              "sending"
            ])
            const status = Option.getOrThrow(yield* outbox.status(id))
            assert.strictEqual(status.state, "sending")
            assert.deepStrictEqual(status.recipients.map((r) => r.state), ["pending"])
          })))
    }

    it.live("a cancel during a retry wait after one recipient was accepted leaves the message partial", () =>
      run({ refuse: { "bob@example.org": "451 4.3.0 Try again later" } }, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({
            from: "app@example.com",
            to: ["ann@example.org", "bob@example.org"],
            message: message(1)
          })
          // the first attempt recorded (ann accepted, bob deferred), the next one an hour away
          while (true) {
            const status = Option.getOrThrow(yield* outbox.status(id))
            if (status.state === "queued" && status.attempts.length === 1) break
            yield* Effect.sleep("20 millis")
          }
          yield* outbox.cancel(id)
          const status = Option.getOrThrow(yield* outbox.status(id))
          assert.strictEqual(status.state, "partial")
          assert.deepStrictEqual(status.recipients.map((r) => [r.address, r.state]), [
            ["ann@example.org", "accepted"],
            ["bob@example.org", "cancelled"]
          ])
          assert.deepStrictEqual((yield* server.messages).map((m) => m.envelope.to), [["ann@example.org"]])
        }), { retry: Schedule.spaced("1 hour") }))

    it.live("requeue after expiresAt sends again: an unknown message and an expired one get a fresh expiry", () => {
      let drop = true
      let defer = true
      return run({
        respond: (e) =>
          e.stage === "message" && drop && e.recipients?.includes("ann@example.org") ? "disconnect" : undefined,
        refuse: (address) => address === "bob@example.org" && defer ? "421 4.4.2 Busy" : undefined
      }, (server) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          // no expiry to race with the first attempt (however long the cluster takes to start): the
          // unknown message's is moved into the past once it is unknown
          const unknown = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          // deferred until its expiry, whenever (if ever) its first attempt comes
          const expired = yield* outbox.enqueue({
            from: "app@example.com",
            to: "bob@example.org",
            message: message(2),
            expiresAt: new Date(Date.now() + 1000)
          })
          assert.strictEqual((yield* settle(unknown)).state, "unknown")
          assert.strictEqual((yield* settle(expired)).state, "expired")
          const past = Date.now() - 1000
          yield* sql`UPDATE effect_smtp_outbox SET expires_at = ${past} WHERE id = ${unknown}`
          drop = false
          defer = false
          yield* outbox.requeue(unknown)
          yield* outbox.requeue(expired)
          const again = yield* settle(unknown)
          assert.strictEqual(again.state, "sent")
          assert.deepStrictEqual(again.attempts.map((a) => a.outcome), ["unknown", "sent"])
          assert.isAbove(DateTime.toEpochMillis(again.expiresAt), Date.now() + 3_600_000)
          const retried = yield* settle(expired)
          assert.strictEqual(retried.state, "sent")
          assert.strictEqual(retried.attempts.at(-1)?.outcome, "sent")
          assert.isAbove(DateTime.toEpochMillis(retried.expiresAt), Date.now() + 3_600_000)
          // the two requeued messages, in whichever order they went
          const received = (yield* server.messages).map((m) => m.envelope.to.join(",")).sort()
          assert.deepStrictEqual(received, ["ann@example.org", "bob@example.org"])
        }))
    })

    it.live("requeue of an unknown message: a resend deferred until the retries end leaves it unknown, not expired", () => {
      let drop = true
      return run({
        respond: (e) => e.stage === "message" && drop ? "disconnect" : undefined,
        // once requeued, every attempt is deferred
        refuse: () => drop ? undefined : "421 4.4.2 Busy"
      }, (server) =>
        Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          assert.strictEqual((yield* settle(id)).state, "unknown")
          drop = false
          yield* outbox.requeue(id)
          // still unknown while it is sent again
          const requeued = Option.getOrThrow(yield* outbox.status(id))
          assert.deepStrictEqual(requeued.recipients.map((r) => r.state), ["unknown"])
          const status = yield* settle(id)
          assert.strictEqual(status.state, "unknown")
          assert.deepStrictEqual(status.recipients.map((r) => r.state), ["unknown"])
          // the first attempt, then the requeued ones (the schedule's two retries): all deferred
          assert.deepStrictEqual(status.attempts.map((a) => a.outcome), ["unknown", "deferred", "deferred", "deferred"])
          assert.strictEqual((yield* server.messages).length, 0)
        }), { retry: Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(2))) })
    })

    it.live("onUnknown: retry: a message possibly delivered is unknown, not expired, when its expiry passes", () => {
      let drop = true
      return run({
        respond: (e) => {
          if (e.stage === "message" && drop) {
            drop = false
            return "disconnect"
          }
          return undefined
        },
        // every later attempt is deferred
        refuse: () => drop ? undefined : "421 4.4.2 Busy"
      }, () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          // once a retry was deferred, its expiry passes (no expiry to race with the first attempt)
          while (true) {
            const status = Option.getOrThrow(yield* outbox.status(id))
            if (status.attempts.some((a) => a.outcome === "deferred")) break
            yield* Effect.sleep("20 millis")
          }
          const now = Date.now()
          yield* sql`UPDATE effect_smtp_outbox SET expires_at = ${now} WHERE id = ${id}`
          const status = yield* settle(id)
          assert.strictEqual(status.state, "unknown")
          assert.deepStrictEqual(status.recipients.map((r) => r.state), ["unknown"])
          assert.strictEqual(status.attempts[0].outcome, "unknown")
          assert.isAtLeast(status.attempts.length, 2)
          assert.isTrue(status.attempts.slice(1).every((a) => a.outcome === "deferred"))
        }), { onUnknown: "retry" })
    })

    it.live("an attempt whose caller was interrupted runs to its end; the next call with its key gets its result", () =>
      run({ respond: (e) => e.stage === "message" ? "stall" : undefined }, () =>
        Effect.gen(function*() {
          const id = yield* enqueueUndispatched({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          const client = yield* OutboxWorker.Destination.client
          const first = yield* client("example.org").Attempt({ id, generation: 0 }).pipe(Effect.fork)
          yield* reach(id, "sending")
          yield* Fiber.interrupt(first)
          // the attempt is not cut short: it ends when the client gives up on the final reply
          const status = yield* settle(id)
          assert.strictEqual(status.state, "unknown")
          const second = yield* client("example.org").Attempt({ id, generation: 0 }).pipe(
            Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "the second attempt hung" })
          )
          assert.deepStrictEqual(second, { _tag: "Done", state: "unknown" })
        }), (server) => ({ mailer: () => ({ ...server.clientOptions, maxConnections: 2, timeout: "1 second" }) })))

    it.live("the sweeper is not starved by messages waiting for their notBefore or for a retry", () =>
      run({}, (server) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          const id = yield* outbox.enqueue({ from: "app@example.com", to: "ann@example.org", message: message(1) })
          yield* settle(id)
          const now = Date.now()
          // 600 messages waiting for a notBefore an hour away and 600 waiting for a retry (nothing
          // stranded about them: their workflows sleep), all untouched for longer than the stranded one
          const row = (i: number, future: boolean) => ({
            id: `waiting-${i}`,
            idempotency_key: `waiting-${i}`,
            destination: "example.org",
            mail_from: "app@example.com",
            message_kind: "text",
            message: new TextEncoder().encode(message(i)),
            options: "{}",
            state: "queued",
            generation: 0,
            dispatch_pending: 0,
            attempts: future ? 0 : 1,
            not_before: future ? now + 3_600_000 : 0,
            expires_at: now + 3_600_000,
            created_at: 1,
            updated_at: 1
          })
          const rows = Array.from({ length: 1200 }, (_, i) => row(i, i < 600))
          for (let i = 0; i < rows.length; i += 100) {
            yield* sql`INSERT INTO effect_smtp_outbox ${sql.insert(rows.slice(i, i + 100))}`
          }
          // the stranded message: waiting, its workflow complete
          yield* sql`UPDATE effect_smtp_outbox SET state = 'queued', updated_at = 2 WHERE id = ${id}`
          yield* sql`UPDATE effect_smtp_outbox_recipients SET state = 'pending' WHERE outbox_id = ${id}`
          const status = yield* settle(id).pipe(
            Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "the stranded message was never swept" })
          )
          assert.strictEqual(status.state, "sent")
          assert.strictEqual((yield* server.messages).length, 2)
        }), { sweepAfter: "400 millis" }))

    it.live("the sweeper's walk goes in laps: a row behind its cursor is found again however many rows move ahead", () =>
      run({}, () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const row = (id: string, updatedAt: number, notBefore: number) => ({
            id,
            idempotency_key: id,
            destination: "example.org",
            mail_from: "app@example.com",
            message_kind: "text",
            message: new TextEncoder().encode(message(1)),
            options: "{}",
            state: "queued",
            generation: 0,
            dispatch_pending: 0,
            attempts: 1,
            not_before: notBefore,
            expires_at: 9_000_000,
            created_at: 1,
            updated_at: updatedAt
          })
          // (times on a clock of the test's own, long past for the worker's sweeper: it finds no
          // workflow for these rows and leaves them alone)
          yield* sql`INSERT INTO effect_smtp_outbox ${
            sql.insert([
              row("a", 10, 0),
              row("b", 20, 0),
              row("c", 30, 0),
              row("d", 40, 0),
              // the oldest, not a candidate yet: its notBefore is to come
              row("x", 5, 9_000_000)
            ])
          }`
          const next = Store.staleSweep(2)
          const sweepAfter = 1000
          const seen: Array<Array<string>> = []
          for (let k = 0; k < 10; k++) {
            const now = 1_000_000 + 100 * k
            const ids = (yield* next(sql, now, sweepAfter)).map((r) => r.id)
            seen.push(ids)
            if (ids.includes("x")) break
            // x's notBefore passes: a candidate now, its updated_at unchanged, behind the cursor
            if (k === 0) yield* sql`UPDATE effect_smtp_outbox SET not_before = 0 WHERE id = 'x'`
            // the rows looked at are retried (touched), and untouched long enough to be candidates
            // again by the next call: always a full page ahead of the cursor
            const touched = now - sweepAfter + 50
            yield* sql`UPDATE effect_smtp_outbox SET updated_at = ${touched} WHERE ${sql.in("id", ids)}`
          }
          // the lap that began with the first call ends after a, b, then c, d (those touched since
          // are past its end); the next starts from the oldest again (a lap that ended only on a
          // short page of the current candidates chased the touched rows forever)
          assert.deepStrictEqual(seen, [["a", "b"], ["c", "d"], [], ["x", "a"]])
        })))

    it.live("the retry schedule's give-up writes nothing once the message is another generation's", () =>
      run({}, () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const outbox = yield* Outbox.Outbox
          const id = yield* enqueueUndispatched({
            from: "app@example.com",
            to: "ann@example.org",
            message: message(1),
            notBefore: new Date(Date.now() + 3_600_000)
          })
          // requeued since (a cancel and a requeue during the old workflow's last retry, or while
          // its worker was down): generation 1, waiting for its own workflow
          yield* sql`UPDATE effect_smtp_outbox SET generation = 1 WHERE id = ${id}`
          assert.strictEqual(yield* Store.giveUp(sql, id, 0, Date.now()), "queued")
          const status = Option.getOrThrow(yield* outbox.status(id))
          assert.strictEqual(status.state, "queued")
          assert.deepStrictEqual(status.recipients.map((r) => r.state), ["pending"])
          // its own workflow's give-up expires it
          assert.strictEqual(yield* Store.giveUp(sql, id, 1, Date.now()), "expired")
          assert.deepStrictEqual(
            Option.getOrThrow(yield* outbox.status(id)).recipients.map((r) => r.state),
            ["expired"]
          )
        })))

    if (db === "pg") {
      it.live("PostgreSQL: a give-up and a cancel of the same message take its row lock first: no deadlock", () =>
        run({}, () =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const outbox = yield* Outbox.Outbox
            const id = yield* enqueueUndispatched({
              from: "app@example.com",
              to: ["ann@example.org", "bob@example.org"],
              message: message(1),
              notBefore: new Date(Date.now() + 3_600_000)
            })
            const cancelLocked = yield* Deferred.make<void>()
            // the give-up, on its own connection, once the cancel holds the message's row lock
            const giveUp = yield* Deferred.await(cancelLocked).pipe(
              Effect.zipRight(Effect.suspend(() => Store.giveUp(sql, id, 0, Date.now()))),
              Effect.either,
              Effect.fork
            )
            // the cancel, held right after its first statement (the lock) until the give-up waits
            // on a lock (or ends): a give-up writing the recipients first would hold theirs by then,
            // which the cancel needs next, while waiting on the message's: a deadlock, one aborted
            const waitForGiveUp = Effect.gen(function*() {
              yield* Deferred.succeed(cancelLocked, undefined)
              while (Option.isNone(yield* Fiber.poll(giveUp))) {
                const waiting =
                  yield* sql`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`
                if (waiting.length > 0) return
                yield* Effect.sleep("10 millis")
              }
            })
            const isLock = (text: string) => text.includes("SET updated_at = updated_at")
            const racing = yield* Outbox.make({ migrate: false }).pipe(
              Effect.provideService(SqlClient.SqlClient, afterFirst(sql, isLock, waitForGiveUp))
            )
            const cancelled = yield* racing.cancel(id).pipe(Effect.either)
            const gaveUp = yield* Fiber.join(giveUp)
            assert.deepStrictEqual(cancelled, Either.right(undefined))
            // it found the message cancelled, and wrote nothing
            assert.deepStrictEqual(gaveUp, Either.right("cancelled"))
            const status = Option.getOrThrow(yield* outbox.status(id))
            assert.strictEqual(status.state, "cancelled")
            assert.deepStrictEqual(status.recipients.map((r) => r.state), ["cancelled", "cancelled"])
          })))
    }

    it.live("closing the worker does not wait for the attempts queued for a permit", () =>
      Effect.gen(function*() {
        // every attempt takes a second (no final reply: the client gives up), one at a time
        const server = yield* TestSmtpServer.make({ respond: (e) => e.stage === "message" ? "stall" : undefined })
        const database = yield* Layer.build(yield* freshDatabase(db))
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          outboxLayer(Layer.succeedContext(database), server, {
            mailer: () => ({ ...server.clientOptions, maxConnections: 1, timeout: "1 second" }),
            concurrency: 1
          }),
          scope
        )
        const outbox = Context.get(context, Outbox.Outbox)
        const sql = Context.get(context, SqlClient.SqlClient)
        const ids = yield* Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) => outbox.enqueue({ from: "app@example.com", to: `u${i}@example.org`, message: message(i) })
        )
        // every workflow started, the first attempt in flight, the others waiting for the permit
        while (true) {
          const [{ n }] = yield* sql<
            { n: number }
          >`SELECT COUNT(*) AS n FROM effect_smtp_outbox WHERE dispatch_pending = 1`
          const [{ sending }] = yield* sql<
            { sending: number }
          >`SELECT COUNT(*) AS sending FROM effect_smtp_outbox WHERE state = 'sending'`
          if (Number(n) === 0 && Number(sending) === 1) break
          yield* Effect.sleep("20 millis")
        }
        // and the others' calls given time to reach the entity and wait for the permit (nothing to
        // poll for: if some had not, the close would only have less to wait for)
        yield* Effect.sleep("500 millis")
        const started = Date.now()
        yield* Scope.close(scope, Exit.void)
        const took = Date.now() - started
        const [{ attempts }] = yield* sql<
          { attempts: number }
        >`SELECT COUNT(*) AS attempts FROM effect_smtp_outbox_attempts`
        // the attempt in flight ran to its end, and about one more: the cluster lets an entity's
        // requests run for its entityTerminationTimeout (1 s in the harness) before it interrupts
        // them; the others, waiting for the permit, were never claimed. Before: all 12 were, one
        // after the other, and the close took 12 s; the bounds leave room for a slow machine
        assert.isAtMost(Number(attempts), 4)
        assert.isBelow(took, 8000)
        const states = yield* Effect.forEach(
          ids,
          (id) => Effect.map(outbox.status(id), (s) => Option.getOrThrow(s).state)
        )
        assert.isAtLeast(states.filter((s) => s === "queued").length, 8)
      }).pipe(Effect.scoped))
  })
