/**
 * Randomized: Mailer.sendAll against the in-memory test server with random refusals and
 * disconnects on every connection. Invariants: one outcome per item; Sent: received exactly once;
 * Failed permanent/transient: never received; unknown: at most once; nothing received twice.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Schedule, Stream } from "effect"
import { Mailer } from "effect-smtp"
import { TestTransport } from "../../src/testing/index.js"
import type * as TestServer from "../../src/testing/TestServer.js"
import { withinRealTime } from "../session/support.js"
import { failingSeeds, mulberry32, pick } from "../support/random.js"

export const runMailer = (seed: number) =>
  Effect.gen(function*() {
    const rnd = mulberry32(seed)
    const n = 1 + Math.floor(rnd() * 40)
    const chunking = rnd() < 0.5
    const pipelining = rnd() < 0.85
    const faultRate = pick(rnd, [0, 0.05, 0.2])
    const disconnectRate = pick(rnd, [0, 0.02, 0.05])
    const connectFaults = process.env.CONNECT_FAULTS === "1" ? pick(rnd, [0, 0.1, 0.3]) : 0
    const concurrency = 1 + Math.floor(rnd() * 3)
    const asStream = rnd() < 0.5
    const fault = (): TestServer.Response | undefined =>
      rnd() < disconnectRate
        ? "disconnect"
        : rnd() < faultRate
        ? pick(rnd, ["550 5.1.1 no", "451 4.3.0 later"])
        : undefined
    const endSeen = new Map<string, number>()
    const made = yield* TestTransport.make({
      disable: [...(chunking ? [] : ["CHUNKING" as const]), ...(pipelining ? [] : ["PIPELINING" as const])],
      respond: (event) => {
        if (event.stage === "connect" || event.stage === "ehlo") {
          return rnd() < connectFaults ? pick(rnd, ["421 4.3.2 busy", "disconnect"] as const) : undefined
        }
        if (event.stage === "message") endSeen.set(event.from!, (endSeen.get(event.from!) ?? 0) + 1)
        return event.stage === "auth" ? undefined : fault()
      }
    })
    const from = (i: number) => `m${i}@x.test`
    const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
    const items: Array<Mailer.BulkItem> = Array.from({ length: n }, (_, i) => ({
      from: from(i),
      to: `r${i}@x.test`,
      message: body(i)
    }))
    const config = { n, chunking, pipelining, faultRate, disconnectRate, connectFaults, concurrency, asStream }
    const result = yield* withinRealTime(
      Effect.scoped(Effect.gen(function*() {
        const mailer = yield* Mailer.make({
          host: "mx.test",
          security: "none",
          timeout: "1 second",
          maxConnections: concurrency,
          retry: Schedule.recurs(2)
        })
        return Chunk.toReadonlyArray(
          yield* Stream.runCollect(mailer.sendAll(asStream ? Stream.fromIterable(items) : items, { concurrency }))
        )
      })).pipe(Effect.provide(made.layer), Effect.exit),
      20000
    )
    const problems: Array<string> = []
    if (result._tag === "None") return { config, problems: ["hung"] }
    if (Exit.isFailure(result.value)) {
      return { config, problems: [`failed: ${Cause.pretty(result.value.cause).slice(0, 300)}`] }
    }
    const outcomes = result.value.value
    const received = yield* made.received
    const count = (i: number) => received.filter((r) => r.envelope.from === from(i)).length
    const byIndex = new Map<number, Mailer.BulkOutcome<unknown>>()
    for (const o of outcomes) {
      if (byIndex.has(o.index)) problems.push(`#${o.index}: two outcomes`)
      byIndex.set(o.index, o)
    }
    for (let i = 0; i < n; i++) {
      const o = byIndex.get(i)
      const c = count(i)
      if (c > 1) problems.push(`#${i}: received ${c} times (${o?._tag} ${o?._tag === "Failed" ? o.disposition : ""})`)
      if (o === undefined) {
        problems.push(`#${i}: no outcome`)
        continue
      }
      if (o._tag === "Sent" && c !== 1) problems.push(`#${i}: Sent, received ${c} times`)
      if (o._tag === "Failed" && o.disposition !== "unknown" && c !== 0) {
        problems.push(`#${i}: Failed ${o.disposition} (${(o.error as any)._tag}), received ${c} times`)
      }
    }
    return { config, problems }
  })

describe("Mailer.sendAll randomized", () => {
  it.live("invariants", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* failingSeeds(runMailer, { runs: 200, maxFailures: 8, problemsShown: 4 }), [])
    }), 900_000)
})
