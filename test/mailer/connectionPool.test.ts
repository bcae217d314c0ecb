import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope, TestClock } from "effect"
import * as ConnectionPool from "../../src/internal/connectionPool.js"

/** A fake connection: an id, and a log of opens and closes. */
const makeResource = () => {
  const log: Array<string> = []
  let next = 0
  const acquire = Effect.acquireRelease(
    Effect.sync(() => {
      const id = ++next
      log.push(`open ${id}`)
      return { id }
    }),
    (c) => Effect.sync(() => log.push(`close ${c.id}`))
  )
  return { acquire, log }
}

const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("ConnectionPool", () => {
  it.scoped("opens on demand up to max, reuses the most recently released, never more than max", () =>
    Effect.gen(function*() {
      const { acquire, log } = makeResource()
      const pool = yield* ConnectionPool.make({ acquire, max: 2, idleTimeout: "1 minute" })
      const a = yield* pool.get
      const b = yield* pool.get
      assert.deepStrictEqual([a.value.id, b.value.id], [1, 2])
      const third = yield* Effect.fork(pool.get)
      yield* settle
      assert.strictEqual(pool.stats().waiting, 1)
      yield* pool.release(b, true)
      const c = yield* Fiber.join(third)
      assert.strictEqual(c.value.id, 2, "handed over directly")
      yield* pool.release(a, true)
      yield* pool.release(c, true)
      const d = yield* pool.get
      assert.strictEqual(d.value.id, 2, "most recently released first")
      assert.deepStrictEqual(log, ["open 1", "open 2"])
      assert.deepStrictEqual(pool.stats(), { idle: 1, inUse: 1, opening: 0, closing: 0, waiting: 0 })
      yield* pool.release(d, true)
    }))

  it.scoped("a connection released as not reusable is closed and its place goes to a waiter at once", () =>
    Effect.gen(function*() {
      const { acquire, log } = makeResource()
      const pool = yield* ConnectionPool.make({ acquire, max: 1, idleTimeout: "1 minute" })
      const a = yield* pool.get
      const waiting = yield* Effect.fork(pool.get)
      yield* settle
      yield* pool.release(a, false)
      const b = yield* Fiber.join(waiting)
      assert.strictEqual(b.value.id, 2)
      yield* settle
      assert.sameMembers(log, ["open 1", "open 2", "close 1"])
      // the old connection's place was freed: replacing again does not wait for anything
      yield* pool.release(b, false)
      const c = yield* pool.get
      assert.strictEqual(c.value.id, 3)
      assert.strictEqual(pool.stats().inUse, 1)
      yield* pool.release(c, true)
    }))

  it.scoped("an interrupted waiter gives its turn to the next one", () =>
    Effect.gen(function*() {
      const { acquire } = makeResource()
      const pool = yield* ConnectionPool.make({ acquire, max: 1, idleTimeout: "1 minute" })
      const a = yield* pool.get
      const first = yield* Effect.fork(pool.get)
      const second = yield* Effect.fork(pool.get)
      yield* settle
      yield* Fiber.interrupt(first)
      assert.strictEqual(pool.stats().waiting, 1)
      yield* pool.release(a, true)
      const b = yield* Fiber.join(second)
      assert.strictEqual(b.value.id, 1)
      assert.deepStrictEqual(pool.stats(), { idle: 0, inUse: 1, opening: 0, closing: 0, waiting: 0 })
      yield* pool.release(b, true)
    }))

  it.scoped("a caller interrupted while its connection is being opened leaves the connection to the pool", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const log: Array<string> = []
      const pool = yield* ConnectionPool.make({
        acquire: Effect.as(Deferred.await(gate), { id: 1 }).pipe(
          Effect.tap(() => Effect.addFinalizer(() => Effect.sync(() => log.push("close"))))
        ),
        max: 1,
        idleTimeout: "1 minute"
      })
      const caller = yield* Effect.fork(pool.get)
      yield* settle
      assert.strictEqual(pool.stats().opening, 1)
      yield* Fiber.interrupt(caller)
      yield* Deferred.succeed(gate, undefined)
      yield* settle
      assert.deepStrictEqual(pool.stats(), { idle: 1, inUse: 0, opening: 0, closing: 0, waiting: 0 })
      const entry = yield* pool.get
      assert.strictEqual(entry.value.id, 1)
      assert.deepStrictEqual(log, [])
      yield* pool.release(entry, true)
    }))

  it.scoped("a failed open frees its place and fails the caller", () =>
    Effect.gen(function*() {
      let attempts = 0
      const pool = yield* ConnectionPool.make({
        acquire: Effect.suspend(() => ++attempts === 1 ? Effect.fail("refused" as const) : Effect.succeed(attempts)),
        max: 1,
        idleTimeout: "1 minute"
      })
      const error = yield* Effect.flip(pool.get)
      assert.strictEqual(error, "refused")
      const entry = yield* pool.get
      assert.strictEqual(entry.value, 2)
      yield* pool.release(entry, true)
    }))

  it.effect("closes connections unused for idleTimeout, not before", () =>
    Effect.gen(function*() {
      const { acquire, log } = makeResource()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(ConnectionPool.make({ acquire, max: 2, idleTimeout: "10 seconds" }), scope)
      const a = yield* pool.get
      const b = yield* pool.get
      yield* pool.release(a, true)
      yield* TestClock.adjust("5 seconds")
      yield* pool.release(b, true)
      yield* TestClock.adjust("4 seconds")
      yield* settle
      assert.deepStrictEqual(log, ["open 1", "open 2"])
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assert.deepStrictEqual(log, ["open 1", "open 2", "close 1"])
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.deepStrictEqual(log, ["open 1", "open 2", "close 1", "close 2"])
      assert.deepStrictEqual(pool.stats(), { idle: 0, inUse: 0, opening: 0, closing: 0, waiting: 0 })
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("closing the Scope closes idle connections at once and in-use ones when released", () =>
    Effect.gen(function*() {
      const { acquire, log } = makeResource()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(ConnectionPool.make({ acquire, max: 2, idleTimeout: "1 minute" }), scope)
      const a = yield* pool.get
      const b = yield* pool.get
      yield* pool.release(b, true)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* settle
      assert.deepStrictEqual(log, ["open 1", "open 2", "close 2"])
      assert.isNull(closing.unsafePoll(), "waits for the connection in use")
      yield* pool.release(a, true)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(log, ["open 1", "open 2", "close 2", "close 1"])
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(pool.get)), "no connection after the close")
    }))

  it.effect("closing the Scope interrupts the callers waiting for a connection", () =>
    Effect.gen(function*() {
      const { acquire, log } = makeResource()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(ConnectionPool.make({ acquire, max: 1, idleTimeout: "1 minute" }), scope)
      const a = yield* pool.get
      const waiter = yield* Effect.fork(pool.get)
      yield* settle
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(waiter)))
      yield* pool.release(a, true)
      yield* Fiber.join(closing)
      assert.deepStrictEqual(log, ["open 1", "close 1"])
    }))
})
