/**
 * `Effect.async` for per-message waits, keeping nothing of the caller alive. Pure.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

/** A class, not a literal: V8 pretenures a literal's site whose objects survive, and an old box
 * pointing at a young registration would keep it alive again. */
class Box<A, E> {
  constructor(public register: ((resume: (effect: Effect.Effect<A, E>) => void) => void) | undefined) {}
}

/**
 * `Effect.async(register)`, where what `register` closes over is let go as soon as it has run.
 *
 * V8 keeps what an `Effect.async` registration function closes over past the young generation: in
 * a loop of async steps the function stays reachable, through Effect's async objects of the steps
 * already dead, until a full collection (`bench/async-survival.ts`: a registration that closes
 * over 3.2 KB makes ~3.9 KB a step outlive the young generation, one that closes over an emptied
 * box ~0.7 KB, as one that closes over nothing). A registration that closes over a transaction's
 * state makes every message's objects survive each scavenge and be copied to the old generation.
 * The registration here closes over a box that it empties when it runs.
 *
 * The Effect registers once: it is made for one run (inside `Effect.suspend`,
 * `Effect.withFiberRuntime` or a getter that makes it when it is about to run); a second run dies.
 */
export const once = <A, E>(
  register: (resume: (effect: Effect.Effect<A, E>) => void) => void
): Effect.Effect<A, E> => {
  const box = new Box<A, E>(register)
  return Effect.async<A, E>((resume) => {
    const f = box.register
    box.register = undefined
    if (f === undefined) throw new Error("effect-smtp: a one-shot wait was run twice")
    f(resume)
  })
}
