import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Option, Schedule } from "effect"
import { Message } from "effect-smtp"
import { Outbox } from "effect-smtp/outbox"
import { TestSmtpServer } from "effect-smtp/testing/node"
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

/**
 * The outbox's behaviour on one database, in one process (a one-runner cluster): run on SQLite by
 * test/outbox/outbox.test.ts and on PostgreSQL by test/interop/outbox.test.ts.
 */
export const suite = (db: Db) =>
  describe(`outbox on ${db}`, { timeout: 60_000 }, () => {
    const run = <A, E>(
      server: TestSmtpServer.Options,
      body: (server: TestSmtpServer.Service) => Effect.Effect<A, E, Outbox.Outbox | SqlClient.SqlClient>,
      options: Parameters<typeof outboxLayer>[2] = {}
    ) =>
      Effect.gen(function*() {
        const smtp = yield* TestSmtpServer.make(server)
        const database = yield* freshDatabase(db)
        return yield* body(smtp).pipe(Effect.provide(outboxLayer(database, smtp, options)))
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
  })
