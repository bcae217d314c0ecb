/**
 * The outbox's in-process harness: a one-runner cluster (`SingleRunner`) over SQLite (a temporary
 * file) or PostgreSQL (a fresh database on the peer started by scripts/peers/postgres.sh), the
 * worker, and a `TestSmtpServer` to send to.
 */
import { ClusterWorkflowEngine, SingleRunner } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Effect, Layer, Logger, LogLevel, Redacted, Schedule } from "effect"
import { NodeSmtpTransport } from "effect-smtp/node"
import { Outbox, OutboxWorker } from "effect-smtp/outbox"
import type { TestSmtpServer } from "effect-smtp/testing/node"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { interopRequired, peersDir } from "../interop/peers.js"

export type Db = "sqlite" | "pg"

/** The PostgreSQL peer's URL (`$SMTP_PEERS_DIR/postgres/peer.json`), if it runs. */
export const pgUrl: string | undefined = (() => {
  if (peersDir === undefined) return undefined
  const file = Path.join(peersDir, "postgres", "peer.json")
  if (!Fs.existsSync(file)) return undefined
  return JSON.parse(Fs.readFileSync(file, "utf8")).url as string
})()

/** Whether PostgreSQL must be there (CI: SMTP_INTEROP_REQUIRED=1): then a missing peer fails instead of skipping. */
export const pgRequired = interopRequired || process.env.SMTP_POSTGRES_REQUIRED === "1"

let databases = 0

/** The URL of a new, empty PostgreSQL database on the peer. */
export const freshPgUrl: Effect.Effect<string> = Effect.suspend(() => {
  const url = new URL(pgUrl!)
  const name = `outbox_t${process.pid}_${Date.now()}_${databases++}`
  const target = new URL(pgUrl!)
  target.pathname = `/${name}`
  return Effect.scoped(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE DATABASE ${name}`)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 1 })))
  ).pipe(
    Effect.orDie,
    Effect.as(target.toString())
  )
})

/** A fresh, empty database: a SQLite file in a temporary directory, or a new PostgreSQL database. */
export const freshDatabase = (db: Db): Effect.Effect<Layer.Layer<SqlClient.SqlClient>> =>
  Effect.gen(function*() {
    if (db === "sqlite") {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "outbox-"))
      return SqliteClient.layer({ filename: Path.join(dir, "outbox.db") }).pipe(Layer.orDie)
    }
    const url = yield* freshPgUrl
    return PgClient.layer({ url: Redacted.make(url), maxConnections: 10 }).pipe(Layer.orDie)
  })

export const shardingConfig = {
  entityMessagePollInterval: 50,
  entityReplyPollInterval: 50,
  sendRetryInterval: 50,
  refreshAssignmentsInterval: 200,
  shardsPerGroup: 16,
  entityTerminationTimeout: 1000
} as const

/** Everything a test needs: the outbox, a one-runner cluster with the worker, sending to `server`. */
export const outboxLayer = (
  database: Layer.Layer<SqlClient.SqlClient>,
  server: TestSmtpServer.Service,
  options: Partial<OutboxWorker.Options> = {}
) => {
  const worker = OutboxWorker.layer({
    mailer: () => ({ ...server.clientOptions, maxConnections: 2 }),
    retry: Schedule.spaced("100 millis"),
    pollInterval: "50 millis",
    ...options
  }).pipe(
    Layer.provide(ClusterWorkflowEngine.layer),
    Layer.provideMerge(SingleRunner.layer({ shardingConfig, runnerStorage: "memory" })),
    Layer.provide(NodeSmtpTransport.layer),
    Layer.orDie,
    // the cluster warns while a test's runner shuts down
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  )
  return Layer.mergeAll(worker, Outbox.layer().pipe(Layer.orDie)).pipe(Layer.provideMerge(database))
}
