/**
 * Seeded randomized tests: a small deterministic generator and a runner over a range of seeds
 * (`SEED` and `RUNS` in the environment move the range; a failure names its seed to replay).
 */
import { Effect } from "effect"

/** mulberry32: a deterministic generator of numbers in [0, 1) from a 32-bit seed. */
export const mulberry32 = (a: number) => () => {
  a |= 0
  a = (a + 0x6D2B79F5) | 0
  let t = Math.imul(a ^ (a >>> 15), 1 | a)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** One element of `xs`, drawn with `rnd`. */
export const pick = <A>(rnd: () => number, xs: ReadonlyArray<A>): A => xs[Math.floor(rnd() * xs.length)]

/**
 * Runs `runOne` for `runs` seeds from `SEED` (default 1) and returns what failed, one line per seed
 * (at most `maxFailures`): an empty array when every invariant held.
 */
export const failingSeeds = <E, R>(
  runOne: (seed: number) => Effect.Effect<{ readonly config: unknown; readonly problems: ReadonlyArray<string> }, E, R>,
  options: { readonly runs: number; readonly maxFailures: number; readonly problemsShown: number }
): Effect.Effect<Array<string>, E, R> =>
  Effect.gen(function*() {
    const start = Number(process.env.SEED ?? 1)
    const runs = Number(process.env.RUNS ?? options.runs)
    const failures: Array<string> = []
    for (let seed = start; seed < start + runs && failures.length < options.maxFailures; seed++) {
      const r = yield* runOne(seed)
      if (r.problems.length > 0) {
        failures.push(
          `seed ${seed} ${JSON.stringify(r.config)}: ${r.problems.slice(0, options.problemsShown).join("; ")}`
        )
      }
    }
    return failures
  })
