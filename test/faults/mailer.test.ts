/**
 * Mailer never delivers a message twice: a counting server over real sockets (the model server of
 * `model.ts` on node:net, with PIPELINING, and CHUNKING for the BDAT run) records every message it
 * accepted (the final dot / BDAT LAST with its bytes) by Message-ID, and every attempt (MAIL) by
 * envelope sender, one sender per message. Connection `i` faults once, on the first transaction
 * that reaches the stage, from a schedule: after the end of data (close, reset, stall without the
 * final reply) and before it (close at MAIL, close during the upload, 421 at RCPT, 451 at DATA or,
 * with BDAT, to BDAT LAST); later connections are healthy.
 *
 * N distinct messages go through one Mailer (3 connections, 6 sends at a time, a retry schedule
 * with no delay and more retries than there are faults, a 500 ms timeout); half are strings (BDAT:
 * one flight), half Streams with a pause after their first 300 KiB (DATA: written in slices; BDAT:
 * one full chunk, then the rest), so that a fault during the upload reaches the client before the
 * end of data. Then:
 *
 * - no Message-ID was received twice;
 * - every message either succeeded or failed with SmtpDeliveryUnknown (classified "unknown");
 * - a success was received exactly once;
 * - an unknown outcome was not retried: no attempt of that message after its last fault;
 * - a fault after the end of data (close, reset, stall) gave SmtpDeliveryUnknown, the message was
 *   received once (the server took it) and never sent again;
 * - a fault before the end of data (a transient failure: the end was not yet written) was retried
 *   and the message delivered once;
 * - every fault of the schedule happened.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schedule, Stream } from "effect"
import { Mailer, SmtpError } from "../../src/index.js"
import { NodeSmtpTransport } from "../../src/node.js"
import { type Fault, messageId } from "./model.js"
import * as NetServer from "./netServer.js"
import { filler } from "./table.js"

const N = 24
const TIMEOUT_MS = 500
const encoder = new TextEncoder()

const sender = (i: number) => `m${i}@x.test`
const id = (i: number) => `m${i}@x.test`
const headers = (i: number) =>
  `From: ${sender(i)}\r\nTo: rcpt@x.test\r\nSubject: message ${i}\r\nMessage-ID: <${id(i)}>\r\n\r\n`

/** Even: a string; odd: a Stream that pauses after its first 300 KiB (run again on each attempt). */
const isStream = (i: number) => i % 2 === 1
const message = (i: number): string | Stream.Stream<Uint8Array> =>
  isStream(i) ?
    Stream.make(encoder.encode(headers(i)), filler(300 * 1024)).pipe(
      Stream.concat(Stream.drain(Stream.fromEffect(Effect.sleep("150 millis")))),
      Stream.concat(Stream.make(encoder.encode(`the end of message ${i}\r\n`)))
    ) :
    `${headers(i)}body of message ${i}\r\n`

interface Run {
  readonly name: string
  readonly chunking: boolean
  readonly schedule: ReadonlyArray<Fault>
}

const runs: ReadonlyArray<Run> = [
  {
    name: "DATA",
    chunking: false,
    schedule: [
      { stage: "body", kind: "close" },
      { stage: "end", kind: "close" },
      { stage: "mail", kind: "close" },
      { stage: "end", kind: "reset" },
      { stage: "rcpt", kind: "421" },
      { stage: "end", kind: "stall" },
      { stage: "data", kind: "451" }
    ]
  },
  {
    name: "BDAT (one-flight for strings, chunks for Streams)",
    chunking: true,
    schedule: [
      { stage: "body", kind: "close" },
      { stage: "end", kind: "close" },
      { stage: "mail", kind: "close" },
      { stage: "end", kind: "reset" },
      { stage: "rcpt", kind: "421" },
      { stage: "end", kind: "stall" },
      { stage: "end", kind: "451" }
    ]
  }
]

/** One thing the server saw: an attempt (MAIL) or a fault, in order. */
type Event =
  | { readonly _tag: "mail"; readonly connection: number; readonly sender: string }
  | { readonly _tag: "fault"; readonly connection: number; readonly sender: string | undefined; readonly fault: Fault }

/** Whether a fault, on that message, leaves the outcome unknown (the end of data may have been accepted). */
const leavesUnknown = (fault: Fault, oneFlight: boolean) =>
  (fault.stage === "end" && fault.kind !== "451" && fault.kind !== "421") ||
  (oneFlight && (fault.stage === "mail" || fault.stage === "rcpt") && fault.kind !== "421")

describe("Mailer against a counting server with a fault per connection (real sockets)", () => {
  for (const run of runs) {
    it.live(
      `${run.name}: ${N} messages, ${run.schedule.length} faults: never delivered twice, unknown never retried`,
      () =>
        Effect.gen(function*() {
          const received = new Map<string, number>()
          const events: Array<Event> = []
          const lastSender = new Map<number, string>()
          const server = yield* NetServer.make((connection) => ({
            pipelining: true,
            chunking: run.chunking,
            lmtp: false,
            fault: run.schedule[connection],
            onMail: (s) => {
              lastSender.set(connection, s)
              events.push({ _tag: "mail", connection, sender: s })
            },
            onFault: (fault) => events.push({ _tag: "fault", connection, sender: lastSender.get(connection), fault }),
            onDelivered: (bytes) => {
              const key = messageId(bytes) ?? "<no Message-ID>"
              received.set(key, (received.get(key) ?? 0) + 1)
            }
          }))
          const outcomes = yield* Effect.scoped(Effect.gen(function*() {
            const mailer = yield* Mailer.make({
              host: "127.0.0.1",
              port: server.port,
              security: "none",
              localHostname: "client.test",
              timeout: `${TIMEOUT_MS} millis`,
              closeTimeout: `${TIMEOUT_MS} millis`,
              maxConnections: 3,
              // no delay, and more retries than there are faults: a transient failure always ends delivered
              retry: Schedule.recurs(run.schedule.length + 3)
            })
            return yield* Effect.forEach(
              Array.from({ length: N }, (_, i) => i),
              (i) => Effect.either(mailer.sendmail(sender(i), "rcpt@x.test", message(i))),
              { concurrency: 6 }
            )
          })).pipe(Effect.provide(NodeSmtpTransport.layer))

          const problems: Array<string> = []
          // 1. never twice
          for (const [key, count] of received) if (count > 1) problems.push(`${key} received ${count} times`)
          for (let i = 0; i < N; i++) {
            const outcome = outcomes[i]
            const count = received.get(id(i)) ?? 0
            const mine = events.filter((e) => e.sender === sender(i))
            const faults = mine.flatMap((e) => (e._tag === "fault" ? [e] : []))
            const oneFlight = run.chunking && !isStream(i)
            const what = `message ${i} (${isStream(i) ? "Stream" : "string"}; attempts ${
              mine.filter((e) => e._tag === "mail").length
            }; faults ${faults.map((f) => `${f.fault.kind}@${f.fault.stage}`).join(", ") || "none"})`
            if (Either.isRight(outcome)) {
              // 2. a success was received exactly once
              if (count !== 1) problems.push(`${what}: succeeded but received ${count} times`)
            } else {
              const error = outcome.left
              if (error._tag !== "SmtpDeliveryUnknown" || SmtpError.classify(error) !== "unknown") {
                problems.push(`${what}: failed with ${error._tag} (${SmtpError.classify(error)}): ${error.message}`)
              } else {
                // 3. not retried: nothing of this message after its last fault
                const lastFault = mine.map((e) => e._tag).lastIndexOf("fault")
                if (lastFault === -1) problems.push(`${what}: unknown outcome without any fault`)
                else if (mine.slice(lastFault + 1).some((e) => e._tag === "mail")) {
                  problems.push(`${what}: retried after an unknown outcome`)
                }
              }
            }
            // 4. every fault on this message gave the outcome its stage means
            faults.forEach((f, n) => {
              const last = n === faults.length - 1
              const retried = mine.slice(mine.indexOf(f) + 1).some((e) => e._tag === "mail")
              if (leavesUnknown(f.fault, oneFlight)) {
                if (!last) problems.push(`${what}: sent again after ${f.fault.kind} at ${f.fault.stage}`)
                else if (Either.isRight(outcome) || outcome.left._tag !== "SmtpDeliveryUnknown") {
                  problems.push(`${what}: ${f.fault.kind} at ${f.fault.stage} did not surface as SmtpDeliveryUnknown`)
                }
                if (f.fault.stage === "end" && count !== 1) {
                  problems.push(`${what}: the server took it before the fault, yet received ${count} times`)
                }
              } else if (!(f.fault.stage === "body" && !isStream(i))) {
                // a transient failure before the end of data: retried, and delivered once unless a
                // later attempt met a fault of its own
                if (!retried) problems.push(`${what}: ${f.fault.kind} at ${f.fault.stage} was not retried`)
                else if (last && (Either.isLeft(outcome) || count !== 1)) {
                  problems.push(`${what}: retried after ${f.fault.kind} at ${f.fault.stage}, not delivered once`)
                }
              }
            })
          }
          // 5. the schedule was exercised
          const fired = events.flatMap((e) => (e._tag === "fault" ? [`${e.fault.kind}@${e.fault.stage}`] : []))
          for (const f of run.schedule) {
            if (!fired.includes(`${f.kind}@${f.stage}`)) problems.push(`the fault ${f.kind}@${f.stage} never happened`)
          }
          assert.deepStrictEqual(problems, [])
          // and the run means something: some retries, some unknown outcomes
          assert.isAtLeast(outcomes.filter(Either.isLeft).length, 3, "the three faults after the end of data")
          assert.isAtLeast(server.connections().length, run.schedule.length + 1)
        }).pipe(Effect.scoped),
      20_000
    )
  }
})
