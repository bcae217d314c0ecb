/**
 * The outbox entry (`effect-smtp/outbox`): a durable outbox on `@effect/sql`, `@effect/cluster`
 * and `@effect/workflow` (optional peer dependencies: nothing of it is loaded by the root entry).
 *
 * ```ts
 * import { Outbox, OutboxWorker } from "effect-smtp/outbox"
 * ```
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 */
export * as Outbox from "../Outbox.js"

/**
 * @since 0.2.0
 */
export * as OutboxWorker from "../OutboxWorker.js"
