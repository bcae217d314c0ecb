/**
 * The session's mutex: one holder at a time, first come first served, released however the holder
 * ends, and an interrupted waiter never keeps it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, type Scheduler, Scope } from "effect"
import * as Operation from "../../src/internal/operation.js"

describe("the session lock", () => {
  it.effect("holders take turns in order; a failure or an interruption releases it", () =>
    Effect.gen(function*() {
      const lock = Operation.makeLock(() => "reentered" as const)
      const order: Array<string> = []
      const gate = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        lock.withLock(() => Effect.zipRight(Deferred.await(gate), Effect.sync(() => order.push("a"))))
      )
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(lock.withLock(() => Effect.sync(() => order.push("b"))))
      const third = yield* Effect.fork(
        lock.withLock(() => Effect.zipRight(Effect.sync(() => order.push("c")), Effect.fail("boom")))
      )
      yield* Effect.yieldNow()
      assert.deepStrictEqual(order, [])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      assert.isTrue(Exit.isFailure(yield* Fiber.await(third)))
      assert.deepStrictEqual(order, ["a", "b", "c"])
      // free again after a failure
      assert.strictEqual(yield* lock.withLock(() => Effect.succeed(1)), 1)
      // an interrupted holder releases it
      const holder = yield* Effect.fork(lock.withLock(() => Effect.never))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* lock.withLock(() => Effect.succeed(2)), 2)
    }))

  it.effect("the holder's effect is made once the lock is held: it sees what the previous holder left", () =>
    Effect.gen(function*() {
      const lock = Operation.makeLock(() => "reentered" as const)
      let state = "before"
      const gate = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        lock.withLock(() => Effect.zipRight(Deferred.await(gate), Effect.sync(() => (state = "after"))))
      )
      yield* Effect.yieldNow()
      let made = 0
      const second = yield* Effect.fork(lock.withLock(() => {
        made++
        return Effect.succeed(state)
      }))
      yield* Effect.yieldNow()
      assert.strictEqual(made, 0)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      assert.strictEqual(yield* Fiber.join(second), "after")
      assert.strictEqual(made, 1)
      // a free lock makes it at once, in the same step, and runs it interruptibly
      const interruptible = yield* lock.withLock(() =>
        Effect.checkInterruptible((isInterruptible) => Effect.succeed(isInterruptible))
      )
      assert.isTrue(interruptible)
    }))

  it.effect("an interrupted waiter does not keep the lock, even when it was just handed over", () =>
    Effect.gen(function*() {
      const lock = Operation.makeLock(() => "reentered" as const)
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock(() => Deferred.await(gate)))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(lock.withLock(() => Effect.void))
      yield* Effect.yieldNow()
      // release and interrupt the waiter in the same step: the lock is handed to it, then passed on
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.interrupt(waiter)
      yield* Fiber.join(holder)
      assert.strictEqual(yield* lock.withLock(() => Effect.succeed("free")), "free")
    }))

  it.effect("the fiber holding it for a Scope is refused at once; other fibers wait their turn", () =>
    Effect.gen(function*() {
      const lock = Operation.makeLock(() => "reentered" as const)
      const scope = yield* Scope.make()
      yield* lock.scoped(scope)
      // the holder itself: it would wait for its own Scope to close
      assert.strictEqual(yield* Effect.flip(lock.withLock(() => Effect.succeed(1))), "reentered")
      // another fiber waits, and gets it once the Scope closes
      const other = yield* Effect.fork(lock.withLock(() => Effect.succeed(2)))
      yield* Effect.yieldNow()
      assert.isNull(other.unsafePoll())
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Fiber.join(other), 2)
      // released: the former holder takes it like anyone
      assert.strictEqual(yield* lock.withLock(() => Effect.succeed(3)), 3)
      // a Scope hold handed over to a waiter is that waiter's
      const first = yield* Scope.make()
      yield* lock.scoped(first)
      const second = yield* Scope.make()
      const waiter = yield* Effect.fork(
        Effect.zipRight(lock.scoped(second), Effect.flip(lock.withLock(() => Effect.succeed(4))))
      )
      yield* Effect.yieldNow()
      yield* Scope.close(first, Exit.void)
      assert.strictEqual(yield* Fiber.join(waiter), "reentered")
      assert.isNull((yield* Effect.fork(lock.withLock(() => Effect.void))).unsafePoll())
      yield* Scope.close(second, Exit.void)
    }))

  it.effect("heldFor: the fiber a Scope's hold waits for moves to the one that names itself", () =>
    Effect.gen(function*() {
      const lock = Operation.makeLock(() => "reentered" as const)
      // not held for a Scope: naming oneself changes nothing
      yield* lock.heldFor
      assert.strictEqual(yield* lock.withLock(() => Effect.succeed(0)), 0)
      const scope = yield* Scope.make()
      yield* lock.scoped(scope)
      // another fiber (a Stream's consumer) names itself: it is refused, the taker now waits
      const consumer = yield* Effect.fork(Effect.zipRight(lock.heldFor, Effect.flip(lock.withLock(() => Effect.void))))
      assert.strictEqual(yield* Fiber.join(consumer), "reentered")
      // the fiber that took it now waits like any other, until the Scope closes
      const closer = yield* Effect.fork(Effect.zipRight(Effect.yieldNow(), Scope.close(scope, Exit.void)))
      assert.strictEqual(yield* lock.withLock(() => Effect.succeed(1)), 1)
      yield* Fiber.join(closer)
    }))
})

/**
 * A scheduler that holds back the `step`-th yield of one fiber (its task is kept, not run), so that
 * the fiber can be interrupted at exactly that point, between any two of its operations.
 */
const holdingScheduler = () => {
  let target: Fiber.RuntimeFiber<unknown, unknown> | undefined
  let step = 0
  let calls = 0
  let holdNext = false
  let held: (() => void) | undefined
  const scheduler: Scheduler.Scheduler = {
    shouldYield(fiber) {
      if (target !== undefined && fiber === target && ++calls === step) {
        holdNext = true
        return 0
      }
      return false
    },
    scheduleTask(task) {
      if (holdNext) {
        holdNext = false
        held = task
        return
      }
      setTimeout(task, 0)
    }
  }
  return {
    scheduler,
    /** Holds back `fiber`'s `n`-th yield from now on. */
    watch: (fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined, n: number) => {
      target = fiber
      step = n
      calls = 0
    },
    /** Runs the held task, if one was held; whether there was. */
    runHeld: () => {
      const task = held
      held = undefined
      target = undefined
      task?.()
      return task !== undefined
    }
  }
}

/**
 * For each of the first 40 steps of the waiter's fiber: a holder keeps the lock, `take` waits for
 * it, the holder ends (the lock is handed to the waiter), the waiter's resumption is held back at
 * that step and the waiter interrupted there; then the lock must be free. `what` names the waiter
 * in the failure. Returns at how many steps a yield was held back.
 */
const interruptedAfterHandOver = (
  take: (lock: Operation.Lock<"reentered">) => Effect.Effect<void, unknown, Scope.Scope>,
  what: string
) => {
  const control = holdingScheduler()
  return Effect.gen(function*() {
    let heldSomewhere = 0
    for (let step = 1; step <= 40; step++) {
      const lock = Operation.makeLock(() => "reentered" as const)
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock(() => Deferred.await(gate)))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Effect.scoped(take(lock)))
      yield* Effect.yieldNow()
      control.watch(waiter, step)
      // the holder ends: the lock is handed to the waiter, whose resumption is held at `step`
      yield* Deferred.succeed(gate, undefined)
      yield* Effect.sleep(5)
      control.watch(undefined, 0)
      yield* Fiber.interruptFork(waiter)
      yield* Effect.sleep(1)
      if (control.runHeld()) heldSomewhere++
      yield* Fiber.await(waiter)
      yield* Fiber.join(holder)
      const free = yield* Effect.timeoutTo(lock.withLock(() => Effect.succeed(true)), {
        duration: "200 millis",
        onTimeout: () => false,
        onSuccess: (value) => value
      })
      assert.isTrue(free, `the lock stayed taken when ${what} was interrupted at its step ${step}`)
    }
    return heldSomewhere
  }).pipe(Effect.withScheduler(control.scheduler))
}

describe("the session lock, interrupted between any two steps", () => {
  it.live("a waiter interrupted at any step after the lock was handed to it passes the lock on", () =>
    Effect.gen(function*() {
      const heldSomewhere = yield* interruptedAfterHandOver((lock) => lock.withLock(() => Effect.void), "the waiter")
      // the trial did reach the steps after the hand-over
      assert.isAbove(heldSomewhere, 5)
    }))

  it.live("a Scope's hold interrupted at any step after the lock was handed to it passes the lock on", () =>
    Effect.asVoid(interruptedAfterHandOver((lock) => Effect.flatMap(Effect.scope, lock.scoped), "the Scope's hold")))
})
