import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schedule } from "effect"
import * as Policy from "../../src/internal/outbox/policy.js"

const ok = { code: 250, text: "2.0.0 Ok: queued as ABC" }

describe("outbox policy", () => {
  it("a sent message: accepted, 4xx kept pending, 5xx refused", () => {
    const d = Policy.decide(["a@x", "B@x", "c@x"], {
      _tag: "Sent",
      refused: { "b@x": { code: 451, text: "later" }, "c@x": { code: 550, text: "no" } },
      reply: ok,
      queueId: "ABC"
    })
    assert.deepStrictEqual(d.recipients.map((r) => [r.address, r.state, r.reply?.code]), [
      ["a@x", "accepted", 250],
      ["B@x", "pending", 451],
      ["c@x", "refused", 550]
    ])
    assert.strictEqual(d.outcome, "partial")
  })

  it("outcomes of failures by disposition", () => {
    const failed = (disposition: "transient" | "permanent" | "unknown", recipients?: Record<string, Policy.Reply>) =>
      Policy.decide(["a@x", "b@x"], {
        _tag: "Failed",
        disposition,
        error: "E",
        reply: { code: disposition === "transient" ? 421 : 554, text: "t" },
        recipients
      })
    assert.deepStrictEqual(failed("transient").recipients.map((r) => r.state), ["pending", "pending"])
    assert.strictEqual(failed("transient").outcome, "deferred")
    assert.deepStrictEqual(failed("permanent").recipients.map((r) => r.state), ["refused", "refused"])
    assert.strictEqual(failed("permanent").outcome, "refused")
    assert.deepStrictEqual(failed("unknown").recipients.map((r) => r.state), ["unknown", "unknown"])
    assert.strictEqual(failed("unknown").outcome, "unknown")
    // every recipient refused, some with 4xx: those stay pending
    const mixed = failed("permanent", { "a@x": { code: 450, text: "busy" }, "b@x": { code: 550, text: "no" } })
    assert.deepStrictEqual(mixed.recipients.map((r) => r.state), ["pending", "refused"])
    assert.strictEqual(mixed.outcome, "deferred")
  })

  it("the final state of a message", () => {
    assert.strictEqual(Policy.finalState(["accepted", "accepted"]), "sent")
    assert.strictEqual(Policy.finalState(["accepted", "refused"]), "partial")
    assert.strictEqual(Policy.finalState(["accepted", "expired"]), "partial")
    assert.strictEqual(Policy.finalState(["refused", "expired"]), "expired")
    assert.strictEqual(Policy.finalState(["refused"]), "failed")
    assert.strictEqual(Policy.finalState(["accepted", "unknown"]), "unknown")
    assert.strictEqual(Policy.finalState(["cancelled"]), "cancelled")
  })

  it.effect("retry delays follow the schedule and end with it", () =>
    Effect.gen(function*() {
      const schedule = Schedule.exponential("1 second").pipe(Schedule.intersect(Schedule.recurs(3)))
      const delays = yield* Effect.forEach([1, 2, 3, 4], (n) => Policy.retryDelay(schedule, n))
      assert.deepStrictEqual(delays, [Option.some(1000), Option.some(2000), Option.some(4000), Option.none()])
      const capped = Schedule.exponential("1 minute").pipe(Schedule.union(Schedule.spaced("1 hour")))
      assert.deepStrictEqual(yield* Policy.retryDelay(capped, 10), Option.some(3_600_000))
    }))
})
