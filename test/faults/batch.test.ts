/**
 * sendBatch gives every message one honest outcome when the connection fails in the middle of a
 * batch: a counting server over real sockets (the model server of `model.ts` on node:net, so the
 * batch runs on the Node transport's synchronous write, from the reply callbacks) faults once, on
 * message `k` of the batch, at a stage (MAIL, RCPT, DATA, the end of data), in a way
 * (close, reset, stall, 421, 451). Then, for every message:
 *
 * - `Sent`: the server received it exactly once;
 * - `Refused` and `NotSent`: the server never received it;
 * - `Unknown`: received at most once (the end of data went out; the server may have taken it);
 * - nothing is received twice, the outcomes are in input order, one per message;
 * - the messages before `k` are `Sent` (their replies came before the fault; with BDAT a reset may
 *   discard replies the client had not read yet: then they are `Unknown`, never `NotSent`);
 * - the fault happened.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "../../src/index.js"
import { NodeSmtpTransport } from "../../src/node.js"
import { type Fault, messageId } from "./model.js"
import * as NetServer from "./netServer.js"

const N = 8
const TIMEOUT_MS = 500

const id = (i: number) => `b${i}@x.test`
const item = (i: number): SmtpConnection.BatchItem => ({
  from: "sender@x.test",
  to: "rcpt@x.test",
  message: `From: sender@x.test\r\nTo: rcpt@x.test\r\nSubject: ${i}\r\nMessage-ID: <${id(i)}>\r\n\r\nbody ${i}\r\n`
})

const faults: Record<"DATA" | "BDAT", ReadonlyArray<Fault>> = {
  DATA: [
    { stage: "mail", kind: "close" },
    { stage: "mail", kind: "451" },
    { stage: "rcpt", kind: "421" },
    { stage: "data", kind: "451" },
    { stage: "data", kind: "close" },
    { stage: "end", kind: "close" },
    { stage: "end", kind: "reset" },
    { stage: "end", kind: "stall" },
    { stage: "end", kind: "451" },
    { stage: "end", kind: "garbage" },
    { stage: "end", kind: "421-cut" }
  ],
  BDAT: [
    { stage: "mail", kind: "close" },
    { stage: "mail", kind: "451" },
    { stage: "rcpt", kind: "421" },
    { stage: "end", kind: "close" },
    { stage: "end", kind: "reset" },
    { stage: "end", kind: "stall" },
    { stage: "end", kind: "451" },
    { stage: "end", kind: "garbage" }
  ]
}

describe("sendBatch against a counting server with a fault in the middle (real sockets)", () => {
  for (const mode of ["DATA", "BDAT"] as const) {
    for (const fault of faults[mode]) {
      for (const k of [0, 3]) {
        it.live(
          `${mode}: ${fault.kind} at ${fault.stage} on message ${k}: one honest outcome each`,
          () =>
            Effect.gen(function*() {
              const received = new Map<string, number>()
              let fired = false
              const server = yield* NetServer.make((connection) => ({
                pipelining: true,
                chunking: mode === "BDAT",
                lmtp: false,
                fault: connection === 0 ? fault : undefined,
                faultFrom: k,
                onFault: () => {
                  fired = true
                },
                onDelivered: (bytes) => {
                  const key = messageId(bytes) ?? "<no Message-ID>"
                  received.set(key, (received.get(key) ?? 0) + 1)
                }
              }))
              const outcomes = yield* Effect.scoped(Effect.gen(function*() {
                const smtp = yield* SmtpClient.connect({
                  host: "127.0.0.1",
                  port: server.port,
                  security: "none",
                  localHostname: "client.test",
                  timeout: `${TIMEOUT_MS} millis`,
                  closeTimeout: `${TIMEOUT_MS} millis`
                })
                const items = Array.from({ length: N }, (_, i) => item(i))
                return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
              })).pipe(Effect.provide(NodeSmtpTransport.layer))

              const problems: Array<string> = []
              if (!fired) problems.push("the fault never happened")
              if (outcomes.length !== N || outcomes.some((o, i) => o.index !== i)) {
                problems.push(`outcomes out of order: ${outcomes.map((o) => o.index).join(",")}`)
              }
              for (const [key, count] of received) if (count > 1) problems.push(`${key} received ${count} times`)
              for (const outcome of outcomes) {
                const count = received.get(id(outcome.index)) ?? 0
                const what = `message ${outcome.index}: ${outcome._tag}`
                switch (outcome._tag) {
                  case "Sent":
                    if (count !== 1) problems.push(`${what} but received ${count} times`)
                    break
                  case "Refused":
                  case "NotSent":
                    if (count !== 0) problems.push(`${what} (${outcome.error._tag}) but received ${count} times`)
                    break
                  case "Unknown":
                    if (outcome.error._tag !== "SmtpDeliveryUnknown") problems.push(`${what} as ${outcome.error._tag}`)
                    break
                }
                if (outcome.index < k && outcome._tag !== "Sent") {
                  const discarded = mode === "BDAT" && fault.kind === "reset" && outcome._tag === "Unknown"
                  if (!discarded) problems.push(`${what}, before the fault`)
                }
              }
              assert.deepStrictEqual(problems, [], outcomes.map((o) => `${o.index}:${o._tag}`).join(" "))
              // the message the fault hit is never a success unless the fault left the session going
              const hit = outcomes[k]
              if (fault.kind !== "451") assert.notStrictEqual(hit._tag, "Sent")
            }).pipe(Effect.scoped),
          10_000
        )
      }
    }
  }
})
