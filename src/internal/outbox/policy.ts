/**
 * The outbox's decisions, pure: what an attempt's result means for each recipient and for the
 * message, and how long to wait before the next attempt.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"

/** @internal */
export type MessageState =
  | "queued"
  | "sending"
  | "sent"
  | "partial"
  | "failed"
  | "unknown"
  | "expired"
  | "cancelled"

/** @internal */
export const messageStates: ReadonlyArray<MessageState> = [
  "queued",
  "sending",
  "sent",
  "partial",
  "failed",
  "unknown",
  "expired",
  "cancelled"
]

/** Every state but `queued` and `sending`. @internal */
export const finalStates: ReadonlySet<MessageState> = new Set(messageStates.slice(2))

/** @internal */
export type RecipientState = "pending" | "accepted" | "refused" | "unknown" | "expired" | "cancelled"

/** @internal */
export interface Reply {
  readonly code: number
  readonly text: string
}

/**
 * What one attempt came to, as the worker saw it (decoupled from the Mailer's types so that the
 * decisions are testable alone).
 *
 * @internal
 */
export type AttemptResult =
  | {
    readonly _tag: "Sent"
    /** The recipients refused at RCPT (every other one was accepted). */
    readonly refused: Readonly<Record<string, Reply>>
    readonly reply: Reply
    readonly queueId: string | undefined
  }
  | {
    readonly _tag: "Failed"
    readonly disposition: "transient" | "permanent" | "unknown"
    /** The error's tag (`SmtpRecipientsRefused`, `SmtpServerDisconnected`, …). */
    readonly error: string
    readonly reply: Reply | undefined
    /** Per-recipient replies, when the error carries them (`SmtpRecipientsRefused`). */
    readonly recipients: Readonly<Record<string, Reply>> | undefined
  }

/** @internal */
export interface RecipientUpdate {
  readonly address: string
  readonly state: RecipientState
  readonly reply: Reply | undefined
}

/** @internal */
export type AttemptOutcome = "sent" | "partial" | "deferred" | "refused" | "unknown"

/** @internal */
export interface Decision {
  readonly recipients: ReadonlyArray<RecipientUpdate>
  /** How the attempt is recorded in the history. */
  readonly outcome: AttemptOutcome
}

const byCode = (reply: Reply | undefined): RecipientState =>
  reply !== undefined && reply.code >= 500 ? "refused" : "pending"

const lookup = (replies: Readonly<Record<string, Reply>>, address: string): Reply | undefined => {
  if (Object.prototype.hasOwnProperty.call(replies, address)) return replies[address]
  const lower = address.toLowerCase()
  for (const key of Object.keys(replies)) if (key.toLowerCase() === lower) return replies[key]
  return undefined
}

/**
 * Each pending recipient's new state after an attempt: accepted; refused (a 5xx, or a permanent
 * failure of the whole message); still pending (a 4xx or a transient failure: tried again); or
 * unknown (the end of the data was written and no final reply came).
 *
 * @internal
 */
export const decide = (pending: ReadonlyArray<string>, result: AttemptResult): Decision => {
  if (result._tag === "Sent") {
    const recipients = pending.map((address): RecipientUpdate => {
      const refused = lookup(result.refused, address)
      return refused === undefined
        ? { address, state: "accepted", reply: result.reply }
        : { address, state: byCode(refused), reply: refused }
    })
    const accepted = recipients.filter((r) => r.state === "accepted").length
    const deferred = recipients.some((r) => r.state === "pending")
    return {
      recipients,
      outcome: accepted === recipients.length ? "sent" : accepted > 0 ? "partial" : deferred ? "deferred" : "refused"
    }
  }
  switch (result.disposition) {
    case "unknown":
      return {
        recipients: pending.map((address) => ({ address, state: "unknown", reply: result.reply })),
        outcome: "unknown"
      }
    case "transient":
      return {
        recipients: pending.map((address) => ({
          address,
          state: "pending",
          reply: (result.recipients && lookup(result.recipients, address)) ?? result.reply
        })),
        outcome: "deferred"
      }
    case "permanent": {
      const replies = result.recipients
      const recipients = pending.map((address): RecipientUpdate => {
        if (replies !== undefined) {
          const reply = lookup(replies, address)
          return { address, state: byCode(reply), reply }
        }
        return { address, state: "refused", reply: result.reply }
      })
      return {
        recipients,
        outcome: recipients.some((r) => r.state === "pending") ? "deferred" : "refused"
      }
    }
  }
}

/**
 * A message's state once no recipient is pending: unknown if one is; sent if every recipient
 * was accepted; partial if some were; expired if retries ended for some; failed otherwise.
 *
 * @internal
 */
export const finalState = (recipients: ReadonlyArray<RecipientState>): MessageState => {
  if (recipients.includes("unknown")) return "unknown"
  const accepted = recipients.filter((s) => s === "accepted").length
  if (accepted === recipients.length) return "sent"
  if (accepted > 0) return "partial"
  if (recipients.includes("expired")) return "expired"
  if (recipients.includes("cancelled")) return "cancelled"
  return "failed"
}

/**
 * The delay before retry number `retry` (1 for the first retry) by a Schedule's decisions, as
 * `Effect.retry` would wait; None once the schedule is done. Stepping the schedule from its
 * initial state each time keeps the workflow's replay deterministic up to the schedule's own
 * randomness (jitter), which the durable clock records.
 *
 * @internal
 */
export const retryDelay = <Out>(
  schedule: Schedule.Schedule<Out, unknown>,
  retry: number
): Effect.Effect<Option.Option<number>> =>
  Effect.gen(function*() {
    let state = schedule.initial
    let now = 0
    let delay = 0
    for (let i = 0; i < retry; i++) {
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) return Option.none()
      const start = ScheduleIntervals.start(decision.intervals)
      delay = Math.max(0, start - now)
      now = Math.max(now, start)
      state = next
    }
    return Option.some(delay)
  })
