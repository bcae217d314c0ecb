import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { Handoff } from "../../src/internal/handoff.js"

describe("internal/handoff: Mailer.sendAll's input queue", () => {
  it.effect("first in, first out; poll does not wait (none when empty)", () =>
    Effect.gen(function*() {
      const queue = new Handoff<number | undefined>(4)
      yield* queue.offer(1)
      yield* queue.offer(undefined)
      yield* queue.offer(3)
      assert.strictEqual(queue.size(), 3)
      assert.strictEqual(queue.poll(null), 1)
      assert.strictEqual(yield* queue.take, undefined)
      assert.strictEqual(queue.poll(null), 3)
      assert.strictEqual(queue.poll(null), null)
      assert.strictEqual(queue.size(), 0)
    }))

  it.effect("an offer to a full queue waits until it is at most half full", () =>
    Effect.gen(function*() {
      const queue = new Handoff<number>(4)
      const offered: Array<number> = []
      const offerer = yield* Effect.fork(
        Effect.forEach([1, 2, 3, 4, 5, 6], (n) => Effect.zipRight(queue.offer(n), Effect.sync(() => offered.push(n))))
      )
      yield* Effect.yieldNow()
      assert.deepStrictEqual(offered, [1, 2, 3, 4])
      assert.strictEqual(queue.poll(0), 1)
      yield* Effect.yieldNow()
      // 3 left: more than half: the offerer still waits
      assert.deepStrictEqual(offered, [1, 2, 3, 4])
      assert.strictEqual(queue.poll(0), 2)
      yield* Fiber.join(offerer)
      assert.deepStrictEqual(offered, [1, 2, 3, 4, 5, 6])
      assert.deepStrictEqual([queue.poll(0), queue.poll(0), queue.poll(0), queue.poll(0)], [3, 4, 5, 6])
    }))

  it.effect("what it holds stays bounded by its capacity, never by the items gone through", () =>
    Effect.gen(function*() {
      const queue = new Handoff<number>(16)
      // never empty: refilled before each poll, as the feeder refills it from half empty
      for (let i = 0; i < 16; i++) yield* queue.offer(i)
      for (let i = 16; i < 100_000; i++) {
        assert.strictEqual(queue.poll(-1), i - 16)
        yield* queue.offer(i)
      }
      assert.strictEqual(queue.size(), 16)
      assert.isAtMost((queue as unknown as { items: Array<number> }).items.length, 2 * 16 + 33)
    }))

  // the fiber may yield between an Effect's steps: a look taken a step before the wait's
  // registration missed what another fiber did meanwhile (found by a review)
  for (const ops of [15, 16]) {
    it.live(`a take that yields (maxOpsBeforeYield ${ops}) while the offerer fills the queue gets the first item`, () =>
      Effect.gen(function*() {
        const queue = new Handoff<number | undefined>(4)
        const taker = yield* Effect.fork(Effect.withMaxOpsBeforeYield(queue.take, ops))
        const offerer = yield* Effect.fork(Effect.forEach([1, 2, 3, 4, 5, undefined], (n) => queue.offer(n)))
        const got = yield* Fiber.join(taker).pipe(Effect.timeout("1 second"), Effect.option)
        yield* Fiber.interrupt(offerer)
        assert.deepStrictEqual(got, Option.some(1))
      }))

    it.live(`an offer that yields (maxOpsBeforeYield ${ops}) on a full queue while a taker drains it goes in`, () =>
      Effect.gen(function*() {
        const queue = new Handoff<number>(4)
        for (const n of [1, 2, 3, 4]) yield* queue.offer(n)
        const offerer = yield* Effect.fork(Effect.withMaxOpsBeforeYield(queue.offer(5), ops))
        const taken = yield* Effect.forEach([1, 2, 3, 4, 5], () => queue.take).pipe(
          Effect.timeout("1 second"),
          Effect.option
        )
        const offered = yield* Fiber.join(offerer).pipe(Effect.timeout("1 second"), Effect.option)
        assert.deepStrictEqual(taken, Option.some([1, 2, 3, 4, 5]))
        assert.isTrue(Option.isSome(offered))
      }))
  }

  it.effect("a take waits for the next offer, which goes to the first taker waiting", () =>
    Effect.gen(function*() {
      const queue = new Handoff<string>(1)
      const first = yield* Effect.fork(queue.take)
      const second = yield* Effect.fork(queue.take)
      yield* Effect.yieldNow()
      yield* queue.offer("a")
      yield* queue.offer("b")
      assert.strictEqual(yield* Fiber.join(first), "a")
      assert.strictEqual(yield* Fiber.join(second), "b")
      assert.strictEqual(queue.size(), 0)
    }))

  it.effect("an interrupted take is no longer a taker: the next offer is kept for the next take", () =>
    Effect.gen(function*() {
      const queue = new Handoff<string>(1)
      const taker = yield* Effect.fork(queue.take)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(taker)
      yield* queue.offer("kept")
      assert.strictEqual(queue.size(), 1)
      assert.strictEqual(yield* queue.take, "kept")
    }))

  it.effect("an interrupted offer leaves nothing behind", () =>
    Effect.gen(function*() {
      const queue = new Handoff<number>(1)
      yield* queue.offer(1)
      const offer = yield* Effect.fork(queue.offer(2))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(offer)
      assert.strictEqual(queue.poll(0), 1)
      assert.strictEqual(queue.poll(0), 0)
    }))
})
