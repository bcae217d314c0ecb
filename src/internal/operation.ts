/**
 * What every public operation of a session pays: a span and a lock, made cheap.
 *
 * - The span is created when a tracer is installed (`Effect.withTracer`, an OpenTelemetry layer):
 *   with Effect's default tracer, whose spans nobody exports, creating one costs more than a whole
 *   reply decode (about 35 fiber operations) and is skipped.
 * - The lock is a mutex with a fast path: taking a free lock is one synchronous step.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"

/** The tracer Effect runs with when none is installed. */
export const defaultTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** `Effect.withSpan`, unless the current tracer is Effect's default one. */
export const withSpan = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  Effect.tracerWith((tracer) => tracer === defaultTracer ? effect : Effect.withSpan(effect, name, options))

export interface Lock<X> {
  /**
   * Runs the effect `effect()` makes, holding the lock (made once the lock is held, so that it
   * sees the state the previous holder left); waiting for it is interruptible, holding it is
   * released on exit. Fails with the lock's `reentered` error, at once, when asked for by the fiber that the
   * Scope's hold (`scoped`) waits for (it would wait for itself forever): the fiber that took it,
   * or the one named since by `heldFor`.
   */
  readonly withLock: <A, E, R>(effect: () => Effect.Effect<A, E, R>) => Effect.Effect<A, E | X, R>
  /**
   * Takes the lock for `scope` (released when it closes). Fails with `reentered`, at once, as
   * `withLock` does, when asked for by the fiber the lock's Scope hold waits for.
   */
  readonly scoped: (scope: Scope.Scope) => Effect.Effect<void, X>
  /**
   * While the lock is held for a Scope: the current fiber is now the one whose progress the hold
   * waits for (a Stream's consumer, which may not be the fiber that took it).
   */
  readonly heldFor: Effect.Effect<void>
}

/**
 * One wait for the lock: whether it holds the lock now (set when the lock is taken or handed to
 * it). Its release handler is installed before the wait, so an interruption at any point after a
 * hand-over (even before the waiter's fiber resumes past the wait) passes the lock on.
 */
interface Hold {
  holds: boolean
}

interface Waiter {
  readonly hold: Hold
  readonly resume: (effect: Effect.Effect<void>) => void
}

/** `reentered`: the error for a fiber that asks for the lock it holds for a Scope. */
export const makeLock = <X>(reentered: () => X): Lock<X> => {
  let busy = false
  /** While the lock is held for a Scope (`scoped`): the fiber the hold waits for. */
  let scopedBy: Fiber.RuntimeFiber<unknown, unknown> | undefined
  const waiters: Array<Waiter> = []
  const unsafeRelease = () => {
    scopedBy = undefined
    const next = waiters.shift()
    if (next === undefined) busy = false
    else {
      // handed over: the lock stays taken, now by the waiter (released by its handler)
      next.hold.holds = true
      next.resume(Effect.void)
    }
  }
  /** Releases the lock if `hold` has it (once). */
  const releaseHold = (hold: Hold) => {
    if (hold.holds) {
      hold.holds = false
      unsafeRelease()
    }
  }
  const release = Effect.sync(unsafeRelease)
  /** Waits for the lock (interruptibly); the caller has installed `releaseHold(hold)` first. */
  const acquire = (hold: Hold) =>
    Effect.async<void>((resume) => {
      if (!busy) {
        busy = true
        hold.holds = true
        return resume(Effect.void)
      }
      const waiter: Waiter = { hold, resume }
      waiters.push(waiter)
      return Effect.sync(() => {
        const i = waiters.indexOf(waiter)
        if (i !== -1) waiters.splice(i, 1)
        // handed over as it was interrupted: `hold` has it, and the caller's handler passes it on
      })
    })
  /** Handlers that run `release` in the same step as the effect ends, however it ends. */
  const releasingWith = (release: () => void) => ({
    onFailure: (cause: Cause.Cause<unknown>): Effect.Effect<never, unknown> => {
      release()
      return Effect.failCause(cause)
    },
    onSuccess: (value: unknown): Effect.Effect<unknown> => {
      release()
      return Effect.succeed(value)
    }
  })
  /** For a holder that took the free lock: one pair per lock, not per use. */
  const releasing = releasingWith(unsafeRelease)
  const holding = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.matchCauseEffect(effect, releasing) as Effect.Effect<A, E, R>
  /** `effect` after a wait for the lock, released whatever happens once `hold` has it. */
  const waitingThen = <A, E, R>(hold: Hold, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.matchCauseEffect(effect, releasingWith(() => releaseHold(hold))) as Effect.Effect<A, E, R>
  /** The fiber that took the lock for a Scope is the one its hold waits for. */
  const heldByThisFiber = Effect.withFiberRuntime<void>((fiber) => {
    scopedBy = fiber
    return Effect.void
  })
  return {
    // the free lock (the common case) is taken in the mask's own step: no fiber lookup, no
    // further step (a send pays these per message)
    withLock: <A, E, R>(effect: () => Effect.Effect<A, E, R>): Effect.Effect<A, E | X, R> =>
      Effect.uninterruptibleMask((restore) => {
        if (!busy) {
          const made = effect()
          busy = true
          return holding(restore(made))
        }
        return Effect.withFiberRuntime<A, E | X, R>((fiber) => {
          if (scopedBy === fiber) return Effect.fail(reentered())
          const hold: Hold = { holds: false }
          return waitingThen(hold, Effect.zipRight(restore(acquire(hold)), restore(Effect.suspend(effect))))
        })
      }),
    heldFor: Effect.withFiberRuntime((fiber) => {
      if (scopedBy !== undefined) scopedBy = fiber
      return Effect.void
    }),
    // waiting for the lock stays interruptible (acquireRelease would make it uninterruptible); the
    // finalizer is added before the wait, so a hand-over that an interruption cuts short is passed on.
    // (Added to the Scope as it is: `Effect.addFinalizer` would also diff the fiber's FiberRefs twice
    // and patch them twice around a release that reads none, about a tenth of a ms a batch.)
    scoped: (scope) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.withFiberRuntime<void, X>((fiber) => {
          if (!busy) {
            busy = true
            return Effect.zipRight(Scope.addFinalizer(scope, release), heldByThisFiber)
          }
          if (scopedBy === fiber) return Effect.fail(reentered())
          const hold: Hold = { holds: false }
          return Effect.zipRight(
            Scope.addFinalizer(scope, Effect.sync(() => releaseHold(hold))),
            Effect.zipRight(restore(acquire(hold)), heldByThisFiber)
          )
        })
      )
  }
}
