/**
 * Timeouts without fibers. Under Effect's own clock a timeout can be a host timer armed and
 * cancelled from callbacks; `Effect.timeout` and `raceFirst(sleep, ...)` fork two fibers and
 * run a race for each. Under another clock (a `TestClock`, a clock a caller provides) the callers
 * keep Effect's operators, which that clock drives.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

/** Effect's default clock (one instance per process): its `sleep` is a host timer. */
export const defaultClock: Clock.Clock = Effect.runSync(Effect.clock)

/** As in Effect's clock: a delay longer than a host timer holds is never reached. */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

const noop = () => {}

/**
 * Runs `task` after `millis` (at once when not positive; never when longer than a host timer
 * holds, as Effect's clock treats such a delay). Returns the canceller.
 */
export const schedule = (task: () => void, millis: number): () => void => {
  if (!(millis <= MAX_TIMER_MILLIS)) return noop
  const handle = setTimeout(task, Math.max(0, millis))
  return () => clearTimeout(handle)
}
