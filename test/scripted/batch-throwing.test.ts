/**
 * sendBatch with a Stream whose chunk holds an item that is not a BatchItem (a JavaScript caller):
 * the outcomes before it, then the defect; nothing after it is taken or sent, and no outcome
 * borrows its index.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { guard, makeServerWith } from "../session/support.js"

const connectOptions = { host: "mx.test", security: "none", timeout: "10 seconds" } as const
const PIPELINING = "250-mx.test\r\n250 PIPELINING"
const CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"
const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })
const dmsg = (i: number) => [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: `${body(i)}.\r\n`, reply: `250 queued ${i}` }
]
const bmsg = (i: number) => [
  ...(i === 1 ? [] : [{ expect: "RSET", reply: "250 reset" }]),
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: `BDAT ${body(i).length} LAST\r\n${body(i)}`, reply: `250 queued ${i}` }
]

for (const [mode, ehlo, steps] of [["DATA", PIPELINING, dmsg], ["BDAT", CHUNKING, bmsg]] as const) {
  describe(`${mode}: a Stream whose chunk holds an item that is not a BatchItem`, () => {
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
          const bad = { from: "a@x.test", to: undefined, message: "x" } as unknown as SmtpConnection.BatchItem
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
