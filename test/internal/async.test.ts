import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import * as Async from "../../src/internal/async.js"

describe("internal/async: once", () => {
  it.effect("resumes with what the registration gives, at once or later", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Async.once<number, never>((resume) => resume(Effect.succeed(1))), 1)
      const later = yield* Effect.fork(
        Async.once<number, string>((resume) => setTimeout(() => resume(Effect.fail("refused")), 1))
      )
      const exit = yield* Fiber.await(later)
      assert.deepStrictEqual(exit, Exit.fail("refused"))
    }))

  it.effect("lets go of the registration once it has run: a second run dies, saying so", () =>
    Effect.gen(function*() {
      let registrations = 0
      const wait = Async.once<void, never>((resume) => {
        registrations++
        resume(Effect.void)
      })
      yield* wait
      const second = yield* Effect.exit(wait)
      assert.strictEqual(registrations, 1)
      assert.isTrue(Exit.isFailure(second) && Cause.isDie(second.cause))
      if (Exit.isFailure(second)) {
        assert.include(String(Cause.squash(second.cause)), "a one-shot wait was run twice")
      }
    }))

  it.effect("an interrupted wait ends: a resume after it does nothing", () =>
    Effect.gen(function*() {
      let resumeLater: ((effect: Effect.Effect<number>) => void) | undefined
      const fiber = yield* Effect.fork(Async.once<number, never>((resume) => {
        resumeLater = resume
      }))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      resumeLater!(Effect.succeed(1))
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
    }))
})
