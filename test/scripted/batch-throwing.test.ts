/**
 * sendBatch with a Stream whose chunk holds an item whose getter throws (a JavaScript caller):
 * the outcomes before it, then the defect; nothing after it is taken or sent, and no outcome
 * borrows its index.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Stream } from "effect"
import { SmtpClient } from "effect-smtp"
import { guard, makeServerWith } from "../session/support.js"
import { bdatSteps, CHUNKING, connectOptions, dataSteps, item, PIPELINING, throwingItem } from "./batchSupport.js"

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dataSteps], ["BDAT", CHUNKING, bdatSteps]] as const) {
  describe(`${mode}: a Stream whose chunk holds an item whose getter throws`, () => {
    it.effect("the outcomes before it, then the defect; nothing after it is sent", () =>
      guard(
        Effect.gen(function*() {
          const server = yield* makeServerWith({ syncWrite: true }, {
            strict: false,
            steps: [
              { expect: "EHLO client.test", reply: ehlo },
              ...steps(1),
              ...steps(2),
              { expect: "QUIT", reply: "221 bye" }
            ]
          })
          // (an item that is not a BatchItem is that item's NotSent outcome: batch-all.test.ts)
          const bad = throwingItem()
          const seen: Array<string> = []
          const exit = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect(connectOptions)
            return yield* Effect.exit(
              Stream.runForEach(
                smtp.sendBatch(Stream.make(item(1), item(2), bad, item(4))),
                (o) => Effect.sync(() => seen.push(`${o.index} ${o._tag}`))
              )
            )
          })).pipe(Effect.provide(server.layer))
          assert.notInclude(
            server.written(),
            "r4@x.test",
            `the item after the bad one was sent; outcomes ${JSON.stringify(seen)}`
          )
          assert.deepStrictEqual(seen, ["0 Sent", "1 Sent"])
          assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        }),
        "throwing item in a Stream"
      ))
  })
}
