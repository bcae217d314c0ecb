// The README's outbox snippets, as they compile: a producer that enqueues in its own transaction,
// and a worker layer.
import { ClusterWorkflowEngine } from "@effect/cluster"
import { NodeClusterSocket } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schedule } from "effect"
import { NodeSmtpTransport } from "effect-smtp/node"
import { Outbox, OutboxWorker } from "effect-smtp/outbox"

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5433/outbox"
const confirmation = (orderId: string) => `From: shop@example.com\r\nSubject: Order ${orderId}\r\n\r\nThank you.\r\n`

export const placeOrder = (orderId: string, customer: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox.Outbox
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO orders ${sql.insert({ id: orderId, customer })}`
      // rolled back with the order if anything after this fails
      return yield* outbox.enqueue({
        from: "shop@example.com",
        to: customer,
        message: confirmation(orderId), // a string, bytes, or a composed Message
        idempotencyKey: `order-${orderId}` // enqueueing again is a no-op
      })
    }))
  })

export const ProducerLive = Outbox.layer().pipe(
  Layer.provideMerge(PgClient.layer({ url: Redacted.make(DATABASE_URL) }))
)

const auth = { user: "shop", password: Redacted.make(process.env.SMTP_PASSWORD ?? "") }

export const WorkerLive = OutboxWorker.layer({
  // per destination: the relay, credentials, maxConnections, rateLimit (held cluster-wide)
  mailer: () => ({ host: "smtp.example.com", port: 587, security: "starttls", auth }),
  retry: Schedule.exponential("1 minute").pipe(Schedule.union(Schedule.spaced("1 hour"))),
  onUnknown: "hold"
}).pipe(
  Layer.provide(ClusterWorkflowEngine.layer),
  // entityMaxIdleTime: a finished workflow leaves memory after 10 s instead of a minute
  Layer.provideMerge(NodeClusterSocket.layer({ storage: "sql", shardingConfig: { entityMaxIdleTime: "10 seconds" } })),
  Layer.provide(NodeSmtpTransport.layer),
  Layer.provide(PgClient.layer({ url: Redacted.make(DATABASE_URL) }))
)

/** What happened to an order's mail. */
export const mailStatus = (orderId: string) =>
  Effect.flatMap(Outbox.Outbox, (outbox) => outbox.statusByKey(`order-${orderId}`))
