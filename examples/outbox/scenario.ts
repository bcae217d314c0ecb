/**
 * The outbox under faults, with real processes: a counting SMTP sink (in this process), worker
 * processes sharing one database, producer processes enqueueing in transactions (some rolled
 * back), one worker killed with SIGKILL mid-run and restarted. Reports what the sink received
 * against what was committed. `test/outbox/processes.test.ts` runs it and checks the report; run
 * it alone for the figures in the README (the database must be empty):
 *
 *   npx tsx examples/outbox/scenario.ts    # SQLite in a temporary directory, 1 worker
 *   OUTBOX_DB=pg:postgres://postgres@127.0.0.1:5433/outbox WORKERS=3 npx tsx examples/outbox/scenario.ts
 *
 * Knobs (environment): WORKERS, PRODUCERS, COUNT (per producer), KILL_AT (accepted messages, or
 * "none"), RESTART_AFTER_MS, DEFER_FOR_MS, OUTBOX_NODE_ARGS (node flags for the processes).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Exit, Scope } from "effect"
import { Outbox } from "effect-smtp/outbox"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { database } from "./config.js"

export interface Options {
  /** `pg:<url>` or `sqlite:<file>`; an empty database. */
  readonly db: string
  readonly workers: number
  readonly producers: number
  /** Messages per producer. */
  readonly count: number
  /** SIGKILL one worker once the sink has accepted this many messages (none when undefined). */
  readonly killAt?: number | undefined
  /** Restart the killed worker this long after the kill. */
  readonly restartAfterMs?: number | undefined
  /** For this long from the first recipient it sees, the sink answers 451 to 10% of recipients. */
  readonly deferForMs?: number | undefined
  readonly onUnknown?: "hold" | "retry" | undefined
  /** Give up waiting for the outbox to drain after this long. */
  readonly timeoutMs?: number | undefined
}

export interface Report {
  readonly committed: number
  readonly rolledBack: number
  /** Committed messages to existing recipients the sink never accepted (must be 0). */
  readonly missing: ReadonlyArray<string>
  /** Rolled-back messages the sink received (must be 0). */
  readonly leaked: ReadonlyArray<string>
  /** Messages the sink accepted more than once. */
  readonly duplicates: number
  /** Duplicates whose history holds no `unknown` attempt (must be 0). */
  readonly unexplainedDuplicates: ReadonlyArray<string>
  /** Messages with an `unknown` attempt in their history (a worker died with them in flight). */
  readonly unknown: number
  /** Messages to non-existent recipients: all `failed`, none accepted (checked: must equal bounced). */
  readonly bounces: number
  readonly bouncedFailed: number
  /** Messages deferred (4xx) at least once and then sent. */
  readonly deferredThenSent: number
  /** Final states of the committed messages. */
  readonly states: Readonly<Record<string, number>>
  /** Committed messages per second, from the producers' start until the outbox drained. */
  readonly throughput: number
  readonly elapsedMs: number
  /** From the kill until every destination the killed worker was sending for had a message accepted again. */
  readonly recoveryMs: number | undefined
  readonly killedRunner: string | undefined
  /** CPU (user + system) of the worker processes that stopped cleanly, per committed message. */
  readonly workerCpuMsPerMessage: number
  /** The largest peak RSS of the worker processes that stopped cleanly. */
  readonly workerPeakRssMb: number
}

const here = Path.dirname(new URL(import.meta.url).pathname)
const root = Path.resolve(here, "../..")

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const spawnTsx = (script: string, env: Record<string, string>) =>
  ChildProcess.spawn(process.execPath, [
    // e.g. OUTBOX_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the processes
    ...(process.env.OUTBOX_NODE_ARGS?.split(" ").filter((a) => a.length > 0) ?? []),
    "--import",
    "tsx",
    Path.join(here, script)
  ], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

const waitForLine = (child: ChildProcess.ChildProcess, pattern: RegExp, timeoutMs = 60_000) =>
  new Promise<void>((resolve, reject) => {
    let seen = ""
    const timer = setTimeout(() => reject(new Error(`no "${pattern}" within ${timeoutMs} ms:\n${seen}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      if (pattern.test(seen)) {
        clearTimeout(timer)
        child.stdout!.off("data", onData)
        resolve()
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", (chunk: Buffer) => (seen += chunk.toString()))
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before "${pattern}":\n${seen}`))
    })
  })

const collect = (child: ChildProcess.ChildProcess) =>
  new Promise<string>((resolve, reject) => {
    let out = ""
    let err = ""
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()))
    child.once("exit", (code) => code === 0 ? resolve(out) : reject(new Error(`producer exited with ${code}:\n${err}`)))
  })

const hash = (s: string) => {
  let h = 0
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0
  return Math.abs(h)
}

export const run = async (options: Options): Promise<Report> => {
  const scope = Effect.runSync(Scope.make())
  const children = new Set<ChildProcess.ChildProcess>()
  try {
    const start = Date.now()
    const accepted = new Map<string, Array<number>>()
    const acceptedAt: Array<{ readonly at: number; readonly destination: string }> = []
    let total = 0
    let firstRcpt: number | undefined
    const server = await Effect.runPromise(Scope.extend(
      TestSmtpServer.make({
        refuse: (address) => {
          if (address.startsWith("bounce-")) return "550 5.1.1 No such user"
          firstRcpt ??= Date.now()
          if (
            options.deferForMs !== undefined && Date.now() - firstRcpt < options.deferForMs && hash(address) % 10 === 0
          ) {
            return "451 4.3.0 Try again later"
          }
          return undefined
        },
        respond: (event) => {
          if (event.stage !== "message") return undefined
          const text = new TextDecoder().decode(event.message!.subarray(0, 400))
          const key = /Message-ID: <([^@]+)@/.exec(text)?.[1] ?? "?"
          const list = accepted.get(key)
          if (list) list.push(Date.now())
          else accepted.set(key, [Date.now()])
          acceptedAt.push({ at: Date.now(), destination: event.recipients![0].split("@")[1] })
          total++
          return undefined
        }
      }),
      scope
    ))
    const db = database(options.db)
    const withDb = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
      Effect.runPromise(Effect.provide(effect, db))
    // the tables first (workers and producers would otherwise race to create them)
    await withDb(Effect.gen(function*() {
      yield* Outbox.make()
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE IF NOT EXISTS orders (key TEXT PRIMARY KEY, producer TEXT NOT NULL)`
    }))

    const ports = await Promise.all(Array.from({ length: options.workers }, freePort))
    const workerEnv = (port: number) => ({
      OUTBOX_DB: options.db,
      OUTBOX_RUNNER_PORT: String(port),
      OUTBOX_SMTP: `${server.host}:${server.port}`,
      OUTBOX_RETRY_MS: "1000",
      OUTBOX_SWEEP_MS: "4000",
      OUTBOX_ON_UNKNOWN: options.onUnknown ?? "retry"
    })
    let workerCpuMs = 0
    let workerPeakRssMb = 0
    const startWorker = async (port: number) => {
      const child = spawnTsx("worker.ts", workerEnv(port))
      children.add(child)
      child.stdout!.on("data", (chunk: Buffer) => {
        const cpu = /outbox worker cpu (\d+) ms peak rss (\d+) MB/.exec(chunk.toString())
        if (cpu) {
          workerCpuMs += Number(cpu[1])
          workerPeakRssMb = Math.max(workerPeakRssMb, Number(cpu[2]))
        }
      })
      child.once("exit", () => children.delete(child))
      await waitForLine(child, /outbox worker on/)
      return child
    }
    // the first worker alone: on a fresh database it creates the cluster's tables, and
    // @effect/cluster's CREATE TABLE is not guarded against several first starts at once
    // (PostgreSQL: duplicate key in pg_type_typname_nsp_index)
    const workers = [await startWorker(ports[0])]
    workers.push(...await Promise.all(ports.slice(1).map(startWorker)))

    const producers = Array.from({ length: options.producers }, (_, i) => {
      const child = spawnTsx("producer.ts", {
        OUTBOX_DB: options.db,
        PRODUCER: `p${i + 1}`,
        COUNT: String(options.count)
      })
      children.add(child)
      return collect(child)
    })

    let killedAt: number | undefined
    let killedRunner: string | undefined
    let restarted: Promise<unknown> = Promise.resolve()
    if (options.killAt !== undefined) {
      const victim = options.workers > 1 ? 1 : 0
      while (total < options.killAt) await new Promise((r) => setTimeout(r, 20))
      workers[victim].kill("SIGKILL")
      killedAt = Date.now()
      killedRunner = `127.0.0.1:${ports[victim]}`
      restarted = new Promise((r) => setTimeout(r, options.restartAfterMs ?? 3000)).then(() =>
        startWorker(ports[victim])
      )
    }

    const produced = (await Promise.all(producers)).map((out) =>
      JSON.parse(out.trim().split("\n").pop()!) as { committed: Array<string>; rolledBack: Array<string> }
    )
    await restarted
    const committed = produced.flatMap((p) => p.committed)
    const rolledBack = produced.flatMap((p) => p.rolledBack)

    // wait until no committed message is queued or sending
    const deadline = Date.now() + (options.timeoutMs ?? 300_000)
    let drainedAt = Date.now()
    while (true) {
      const metrics = await withDb(Effect.flatMap(Outbox.make({ migrate: false }), (o) => o.metrics))
      if (metrics.depth === 0 && metrics.byState.queued + metrics.byState.sending === 0) {
        drainedAt = Date.now()
        break
      }
      if (Date.now() > deadline) throw new Error(`the outbox did not drain: ${JSON.stringify(metrics.byState)}`)
      await new Promise((r) => setTimeout(r, 200))
    }

    const rows = await withDb(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const messages = yield* sql<{ idempotency_key: string; state: string; id: string }>`
        SELECT idempotency_key, state, id FROM effect_smtp_outbox`
      const attempts = yield* sql<{ outbox_id: string; outcome: string | null; runner: string; started_at: unknown }>`
        SELECT outbox_id, outcome, runner, started_at FROM effect_smtp_outbox_attempts`
      const orders = yield* sql<{ key: string }>`SELECT key FROM orders`
      return { messages, attempts, orders }
    }))
    const byId = new Map<string, Array<{ outcome: string | null; runner: string; startedAt: number }>>()
    for (const a of rows.attempts) {
      const list = byId.get(a.outbox_id) ?? []
      list.push({ outcome: a.outcome, runner: a.runner, startedAt: Number(a.started_at) })
      byId.set(a.outbox_id, list)
    }
    const byKey = new Map(rows.messages.map((m) => [m.idempotency_key, m]))
    const orderKeys = new Set(rows.orders.map((o) => o.key))
    if (orderKeys.size !== committed.length || !committed.every((k) => orderKeys.has(k))) {
      throw new Error("the orders table does not match what the producers report committed")
    }
    const states: Record<string, number> = {}
    const missing: Array<string> = []
    const unexplainedDuplicates: Array<string> = []
    let duplicates = 0
    let unknown = 0
    let bounces = 0
    let bouncedFailed = 0
    let deferredThenSent = 0
    for (const key of committed) {
      const row = byKey.get(key)
      if (row === undefined) {
        missing.push(key)
        continue
      }
      states[row.state] = (states[row.state] ?? 0) + 1
      const history = byId.get(row.id) ?? []
      const hadUnknown = history.some((a) => a.outcome === "unknown")
      if (hadUnknown) unknown++
      if (history.some((a) => a.outcome === "deferred") && row.state === "sent") deferredThenSent++
      const times = accepted.get(key)?.length ?? 0
      const i = Number(key.slice(key.lastIndexOf("-") + 1))
      if (i % 97 === 5) {
        bounces++
        if (row.state === "failed" && times === 0) bouncedFailed++
        continue
      }
      if (times === 0 && row.state !== "unknown") missing.push(key)
      if (times > 1) {
        duplicates++
        if (!hadUnknown) unexplainedDuplicates.push(key)
      }
    }
    const leaked = rolledBack.filter((k) => accepted.has(k) || byKey.has(k))

    let recoveryMs: number | undefined
    if (killedAt !== undefined) {
      // the destinations the killed runner was sending for just before the kill
      const destinations = new Set<string>()
      for (const m of rows.messages) {
        for (const a of byId.get(m.id) ?? []) {
          if (a.runner === killedRunner && a.startedAt >= killedAt - 2000 && a.startedAt <= killedAt) {
            destinations.add(`d${Number(m.idempotency_key.slice(m.idempotency_key.lastIndexOf("-") + 1)) % 7}.example`)
          }
        }
      }
      recoveryMs = 0
      for (const destination of destinations) {
        const next = acceptedAt.find((a) => a.at > killedAt! && a.destination === destination)
        if (next !== undefined) recoveryMs = Math.max(recoveryMs, next.at - killedAt)
      }
    }
    const elapsedMs = drainedAt - start
    await stopAll(children)
    return {
      committed: committed.length,
      rolledBack: rolledBack.length,
      missing,
      leaked,
      duplicates,
      unexplainedDuplicates,
      unknown,
      bounces,
      bouncedFailed,
      deferredThenSent,
      states,
      throughput: Math.round(committed.length / (elapsedMs / 1000)),
      elapsedMs,
      recoveryMs,
      killedRunner,
      workerCpuMsPerMessage: Math.round(workerCpuMs / committed.length * 100) / 100,
      workerPeakRssMb
    }
  } finally {
    await stopAll(children)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** SIGTERM (the workers shut down: QUIT, shard locks released), SIGKILL after 10 s. */
const stopAll = (children: ReadonlySet<ChildProcess.ChildProcess>) =>
  Promise.all([...children].map((child) =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve()
      })
      child.kill("SIGTERM")
    })
  ))

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env
  // default: SQLite in a fresh temporary directory, its one worker
  const db = env.OUTBOX_DB ?? `sqlite:${Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "outbox-")), "outbox.db")}`
  run({
    db,
    workers: Number(env.WORKERS ?? (db.startsWith("pg:") ? 3 : 1)),
    producers: Number(env.PRODUCERS ?? 2),
    count: Number(env.COUNT ?? 5000),
    killAt: env.KILL_AT === "none" ? undefined : Number(env.KILL_AT ?? 3000),
    restartAfterMs: Number(env.RESTART_AFTER_MS ?? 3000),
    deferForMs: Number(env.DEFER_FOR_MS ?? 5000)
  }).then(
    (report) => console.log(JSON.stringify({ ...report, missing: report.missing.length }, null, 2)),
    (error) => {
      console.error(error)
      process.exitCode = 1
    }
  )
}
