/**
 * An outbox worker process: a cluster runner (runners find each other through the database) with
 * the outbox's worker, sending to the SMTP relay at OUTBOX_SMTP (host:port).
 *
 *   OUTBOX_DB=pg:postgres://… OUTBOX_RUNNER_PORT=34431 OUTBOX_SMTP=127.0.0.1:2525 tsx examples/outbox/worker.ts
 *
 * Optional: OUTBOX_RETRY_MS (the spacing of retries, default exponential from 1 minute),
 * OUTBOX_ON_UNKNOWN (hold | retry), OUTBOX_SWEEP_MS (see `sweepAfter`).
 */
import { ClusterWorkflowEngine, RunnerAddress } from "@effect/cluster"
import { NodeClusterSocket, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel, Option, Schedule } from "effect"
import { NodeSmtpTransport } from "effect-smtp/node"
import { OutboxWorker } from "effect-smtp/outbox"
import { database } from "./config.js"

const port = Number(process.env.OUTBOX_RUNNER_PORT ?? 34431)
const [smtpHost, smtpPort] = (process.env.OUTBOX_SMTP ?? "127.0.0.1:2525").split(":")
const retryMs = process.env.OUTBOX_RETRY_MS

const Worker = OutboxWorker.layer({
  mailer: () => ({ host: smtpHost, port: Number(smtpPort), security: "none", maxConnections: 4 }),
  ...(retryMs ? { retry: Schedule.spaced(Number(retryMs)) } : {}),
  onUnknown: process.env.OUTBOX_ON_UNKNOWN === "retry" ? "retry" : "hold",
  ...(process.env.OUTBOX_SWEEP_MS ? { sweepAfter: Number(process.env.OUTBOX_SWEEP_MS) } : {})
}).pipe(
  Layer.provide(ClusterWorkflowEngine.layer),
  Layer.provideMerge(NodeClusterSocket.layer({
    storage: "sql",
    shardingConfig: {
      runnerAddress: Option.some(RunnerAddress.make("127.0.0.1", port)),
      entityMessagePollInterval: 200,
      refreshAssignmentsInterval: 1000,
      runnerHealthCheckInterval: 1000,
      shardsPerGroup: 60,
      // a finished workflow's entity leaves memory after this (the default, 1 minute, keeps ~1 minute of traffic)
      entityMaxIdleTime: Number(process.env.OUTBOX_ENTITY_IDLE_MS ?? 10_000)
    }
  })),
  Layer.provide(NodeSmtpTransport.layer),
  Layer.provide(database())
)

Effect.gen(function*() {
  // the CPU this process used once started, printed as it stops (the scenario sums it per message)
  const started = process.cpuUsage()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      const { system, user } = process.cpuUsage(started)
      const rss = Math.round(process.resourceUsage().maxRSS / 1024)
      process.stdout.write(`outbox worker cpu ${Math.round((user + system) / 1000)} ms peak rss ${rss} MB\n`)
    })
  )
  yield* Effect.log(`outbox worker on 127.0.0.1:${port}`)
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Worker),
  Effect.provide(Logger.minimumLogLevel(process.env.OUTBOX_LOG === "debug" ? LogLevel.Debug : LogLevel.Info)),
  NodeRuntime.runMain
)
