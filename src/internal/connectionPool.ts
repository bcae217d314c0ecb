/**
 * The connection pool behind `Mailer`: at most `max` connections, reused most recently released
 * first, replaced when found dead, closed after `idleTimeout` unused, all closed (QUIT) when the
 * pool's Scope closes.
 *
 * Why not `effect/Pool` (3.22): its "usage" time-to-live strategy offers every acquired item to an
 * unbounded queue that is drained only while the pool is above its target size, and
 * `Pool.invalidate` does not remove the item from it, so under steady load every replaced
 * connection stays reachable (internal/pool.ts, `strategyUsageTTL`); and a `Pool.get` after a
 * `Pool.invalidate` in the same Scope waits for a permit that the invalidated item still holds,
 * which deadlocks once every permit is held that way.
 *
 * Connections are opened and closed in fibers of their own, started from the runtime captured when
 * the pool was made, never in the fiber that asked for one. A Scope finalizer added with
 * `Effect.addFinalizer` runs with the FiberRefs of the fiber that added it patched into the fiber
 * that closes the Scope (internal/fiberRuntime.ts, `addFinalizer`), and a fiber forked from there
 * inherits them: opening a connection in a sender's fiber and closing it in another's would chain
 * every connection's fiber context to the previous one's, holding all of them (the stacks of
 * `FiberRefs` grew by two entries per connection).
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"

/** A pooled connection and the Scope it lives in. */
export interface Entry<A> {
  readonly value: A
  readonly scope: Scope.CloseableScope
  /** When it was last released (clock millis). */
  idleSince: number
}

export interface Stats {
  /** Connections open and unused. */
  readonly idle: number
  /** Connections handed out. */
  readonly inUse: number
  /** Connections being opened. */
  readonly opening: number
  /** Connections being closed. */
  readonly closing: number
  /** Callers waiting for a connection. */
  readonly waiting: number
}

export interface ConnectionPool<A, E> {
  /** A connection, opened when none is idle and fewer than `max` exist; waits otherwise. */
  readonly get: Effect.Effect<Entry<A>, E>
  /** Gives a connection back; `reusable: false` closes it and frees its place at once. */
  readonly release: (entry: Entry<A>, reusable: boolean) => Effect.Effect<void>
  readonly stats: () => Stats
}

interface Waiter<A> {
  readonly deferred: Deferred.Deferred<void>
  /** Set when served: a connection, or `undefined` for the right to open one (`opening` counted). */
  result: { readonly entry: Entry<A> | undefined } | undefined
}

export const make = <A, E, R>(options: {
  readonly acquire: Effect.Effect<A, E, R | Scope.Scope>
  readonly max: number
  readonly idleTimeout: Duration.DurationInput
}): Effect.Effect<ConnectionPool<A, E>, never, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<Exclude<R, Scope.Scope>>()
    const runFork = Runtime.runFork(runtime)
    const clock = yield* Effect.clock
    const idleMillis = Math.max(1, Duration.toMillis(Duration.decode(options.idleTimeout)))
    const max = Math.max(1, options.max)

    /** Idle connections, least recently released first. */
    const idle: Array<Entry<A>> = []
    const waiters: Array<Waiter<A>> = []
    const opening = new Set<Fiber.RuntimeFiber<Entry<A>, E>>()
    const closing = new Set<Fiber.RuntimeFiber<void>>()
    let inUse = 0
    /** Places taken by connections being opened (their fiber may not be in `opening` yet). */
    let reserved = 0
    let shuttingDown = false
    const idleLatch = yield* Effect.makeLatch(false)
    const drained = yield* Deferred.make<void>()

    const size = () => idle.length + inUse + reserved
    const checkDrained = () => {
      if (shuttingDown && inUse === 0 && reserved === 0) Deferred.unsafeDone(drained, Exit.void)
    }

    /** Closes a connection in a fiber of its own (QUIT unless the session is already closed). */
    const close = (entry: Entry<A>): Fiber.RuntimeFiber<void> => {
      const fiber = runFork(Scope.close(entry.scope, Exit.void))
      closing.add(fiber)
      fiber.addObserver(() => closing.delete(fiber))
      return fiber
    }

    /** A place became free: the first waiter gets the right to open a connection. */
    const placeFreed = (): void => {
      if (shuttingDown) return checkDrained()
      const waiter = waiters.shift()
      if (waiter === undefined) return
      reserved++
      waiter.result = { entry: undefined }
      Deferred.unsafeDone(waiter.deferred, Exit.void)
    }

    /** A connection is free: to the first waiter, else idle (closed when shutting down). */
    const put = (entry: Entry<A>): void => {
      if (shuttingDown) {
        close(entry)
        return checkDrained()
      }
      const waiter = waiters.shift()
      if (waiter !== undefined) {
        inUse++
        waiter.result = { entry }
        Deferred.unsafeDone(waiter.deferred, Exit.void)
        return
      }
      entry.idleSince = clock.unsafeCurrentTimeMillis()
      idle.push(entry)
      idleLatch.unsafeOpen()
    }

    const release = (entry: Entry<A>, reusable: boolean): void => {
      inUse--
      if (reusable) return put(entry)
      close(entry)
      placeFreed()
    }

    /** Opens a connection in its own fiber (a place is reserved); the caller waits for it. */
    const open = (restore: <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>) =>
      Effect.suspend(() => {
        const fiber = runFork(
          Effect.uninterruptibleMask((restoreOpen) =>
            Effect.flatMap(Scope.make(), (scope) =>
              restoreOpen(Scope.extend(options.acquire, scope)).pipe(
                Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)),
                Effect.map((value): Entry<A> => ({ value, scope, idleSince: 0 }))
              ))
          )
        )
        opening.add(fiber)
        fiber.addObserver(() => opening.delete(fiber))
        return restore(Fiber.await(fiber)).pipe(
          // the caller stopped waiting: the connection, once open, is the pool's
          Effect.onInterrupt(() =>
            Effect.sync(() =>
              fiber.addObserver((exit) => {
                reserved--
                if (Exit.isSuccess(exit)) put(exit.value)
                else placeFreed()
              })
            )
          ),
          Effect.flatMap((exit) => {
            reserved--
            if (Exit.isSuccess(exit)) {
              inUse++
              return Effect.succeed(exit.value)
            }
            placeFreed()
            return Exit.failCause(exit.cause)
          })
        )
      })

    const get: Effect.Effect<Entry<A>, E> = Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (shuttingDown) return Effect.interrupt
        const entry = idle.pop()
        if (entry !== undefined) {
          inUse++
          return Effect.succeed(entry)
        }
        if (size() < max) {
          reserved++
          return open(restore)
        }
        const waiter: Waiter<A> = { deferred: Deferred.unsafeMake(FiberId.none), result: undefined }
        waiters.push(waiter)
        return restore(Deferred.await(waiter.deferred)).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              const result = waiter.result
              if (result === undefined) {
                const i = waiters.indexOf(waiter)
                if (i >= 0) waiters.splice(i, 1)
              } else if (result.entry !== undefined) {
                release(result.entry, true)
              } else {
                reserved--
                placeFreed()
              }
            })
          ),
          Effect.flatMap(() => {
            const result = waiter.result!
            return result.entry !== undefined ? Effect.succeed(result.entry) : open(restore)
          })
        )
      })
    )

    /** Closes connections idle for `idleTimeout`; sleeps while there are none. */
    const reaper = Effect.gen(function*() {
      for (;;) {
        if (idle.length === 0) {
          idleLatch.unsafeClose()
          yield* idleLatch.await
          continue
        }
        const now = yield* Clock.currentTimeMillis
        const due = idle[0].idleSince + idleMillis - now
        if (due > 0) {
          yield* Effect.sleep(Duration.millis(due))
          continue
        }
        const expired: Array<Entry<A>> = []
        while (idle.length > 0 && idle[0].idleSince + idleMillis <= now) {
          expired.push(idle.shift()!)
          placeFreed()
        }
        yield* Fiber.awaitAll(expired.map(close))
      }
    })

    const shutdown = Effect.suspend(() => {
      shuttingDown = true
      for (const waiter of waiters.splice(0)) Deferred.unsafeDone(waiter.deferred, Exit.interrupt(FiberId.none))
      const closed = idle.splice(0).map(close)
      checkDrained()
      return Effect.all([
        Fiber.interruptAll(Array.from(opening)),
        Fiber.awaitAll(closed),
        Deferred.await(drained)
      ], { discard: true }).pipe(
        Effect.zipRight(Effect.suspend(() => Fiber.awaitAll(Array.from(closing)))),
        Effect.asVoid
      )
    })

    yield* Effect.addFinalizer(() => shutdown)
    yield* Effect.forkScoped(reaper)

    return {
      get,
      release: (entry, reusable) => Effect.sync(() => release(entry, reusable)),
      stats: () => ({
        idle: idle.length,
        inUse,
        opening: reserved,
        closing: closing.size,
        waiting: waiters.length
      })
    }
  })
