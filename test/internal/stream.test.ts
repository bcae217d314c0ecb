import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Ref, Scope, Stream } from "effect"
import * as Streams from "../../src/internal/stream.js"

describe("internal/stream: the sequential combinators of the send path", () => {
  it.effect("fromIterable reads a generator only as far as the stream is pulled", () =>
    Effect.gen(function*() {
      let produced = 0
      function* numbers() {
        for (let i = 0; i < 1000; i++) {
          produced++
          yield i
        }
      }
      const firstThree = yield* Stream.runCollect(Stream.take(Streams.fromIterable(numbers()), 3))
      assert.deepStrictEqual(Chunk.toReadonlyArray(firstThree), [0, 1, 2])
      assert.isAtMost(produced, 64)
      const all = yield* Stream.runCollect(Streams.fromIterable(numbers()))
      assert.strictEqual(all.length, 1000)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(Streams.fromIterable([]))), [])
    }))

  it.effect("concat runs the second stream after the first, lazily", () =>
    Effect.gen(function*() {
      let tail = 0
      const stream = Streams.concat(Stream.make(1, 2), Stream.suspend(() => Stream.succeed(tail)))
      tail = 3
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(stream)), [1, 2, 3])
      const failing = Streams.concat(Stream.fail("first"), Stream.make(9))
      assert.deepStrictEqual(yield* Effect.exit(Stream.runCollect(failing)), Exit.fail("first"))
    }))

  it.effect("unwrapScoped closes its scope when the stream ends, unwrap runs its effect once per run", () =>
    Effect.gen(function*() {
      const closed = yield* Ref.make(0)
      const stream = Streams.unwrapScoped(Effect.gen(function*() {
        const scope = yield* Effect.scope
        yield* Scope.addFinalizer(scope, Ref.update(closed, (n) => n + 1))
        return Stream.make("a", "b")
      }))
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(stream)), ["a", "b"])
      assert.strictEqual(yield* Ref.get(closed), 1)
      yield* Stream.runCollect(Stream.take(stream, 1))
      assert.strictEqual(yield* Ref.get(closed), 2)
      let runs = 0
      const unwrapped = Streams.unwrap(Effect.sync(() => (runs++, Stream.make(runs))))
      yield* Stream.runDrain(unwrapped)
      yield* Stream.runDrain(unwrapped)
      assert.strictEqual(runs, 2)
    }))
})
