/**
 * The SMTP client benchmark, runnable from this repository alone (the method of the team harness,
 * shared/bench/run.sh): sinks, a 2 ms latency proxy and every contestant in its own process,
 * interleaved rep by rep with the order rotated, medians over REPS, and the issue's targets.
 *
 *   npm run bench                                   # every workload, every contestant, REPS=5
 *   npm run bench -- --only W1,W5 --contestants effect-single,nm-conn
 *   npm run bench -- --smoke                        # tiny N, 1 rep, server-side counts checked
 *   npm run bench -- --tsx                          # effect-smtp from the sources through tsx
 *
 * Environment: REPS (5), PIN (same | split | none; default same), PIN_CPU (1), DELAY_US (2000),
 * SERVER (smtp-sink | sink: the sink for DATA; default smtp-sink when installed), EFFECT_LEAN (path
 * of the team's effect-lean.mjs; default ../shared/bench/contestants/effect-lean.mjs), PYTHON.
 *
 * Each run is a child process that prints `RESULT sent=<n> ms=<float> cpu_ms=<float> rss_kb=<int>`:
 * ms from just before connecting to the last reply after the data, cpu_ms the client's own CPU over
 * that span, rss_kb its peak RSS (contestants/lib/preload.mjs for Node, py_smtplib.py itself).
 * Results go to bench/results/<time>/ (runs.csv, summary.md) and to stdout.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const BENCH = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.dirname(BENCH)
const DIST = path.join(BENCH, "dist")

// ---------------------------------------------------------------------------------------------- options

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const option = (name: string) => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`))
  if (i === -1) return undefined
  return argv[i].includes("=") ? argv[i].slice(name.length + 1) : argv[i + 1]
}
const SMOKE = flag("--smoke")
const TSX = flag("--tsx")
const REPS = SMOKE ? 1 : Number(process.env.REPS ?? 5)
const DELAY_US = Number(process.env.DELAY_US ?? 2000)
const PIN = process.env.PIN ?? "same"
const PIN_CPU = process.env.PIN_CPU ?? "1"
const RUN_TIMEOUT_MS = SMOKE ? 30_000 : 180_000

// ---------------------------------------------------------------------------------------------- workloads

type Via = "sink" | "proxy"
interface Workload {
  readonly name: string
  readonly n: number
  readonly rcpts: number
  readonly size: number
  readonly conns: number
  readonly via: Via
  readonly what: string
}
const workload = (
  name: string,
  n: number,
  rcpts: number,
  size: number,
  conns: number,
  via: Via,
  what: (n: number, size: number) => string,
  smoke: { n?: number; size?: number }
): Workload => {
  const actualN = SMOKE ? smoke.n ?? n : n
  const actualSize = SMOKE ? smoke.size ?? size : size
  return { name, n: actualN, rcpts, size: actualSize, conns, via, what: what(actualN, actualSize) }
}
const mb = (size: number) => `${size / 1e6} MB`
// the team harness's workloads (run.sh workload_env); --smoke: tiny N, and messages just above
// the 1 MiB from which the contestants stream (so the Stream paths run)
const WORKLOADS: ReadonlyArray<Workload> = [
  workload("W1", 2000, 1, 1000, 1, "sink", (n) => `${n} × 1 KB, 1 recipient`, { n: 5 }),
  workload("W2", 2000, 10, 1000, 1, "sink", (n) => `${n} × 1 KB, 10 recipients`, { n: 3 }),
  workload("W3", 1, 1, 20_000_000, 1, "sink", (_, size) => `one ${mb(size)} message, streamed`, { size: 1_500_000 }),
  workload("W3L", 1, 1, 200_000_000, 1, "sink", (_, size) => `one ${mb(size)} message, streamed`, {
    size: 2_500_000
  }),
  workload("W4", 2000, 1, 1000, 4, "sink", (n) => `${n} × 1 KB over 4 connections`, { n: 8 }),
  workload("W5", 200, 1, 1000, 1, "proxy", (n) => `${n} × 1 KB through the 2 ms proxy`, { n: 5 })
]

// ---------------------------------------------------------------------------------------------- contestants

type ServerKind = "plain" | "chunking"
interface Contestant {
  readonly name: string
  /** plain: smtp-sink (or bench/sink.ts), PIPELINING; chunking: bench/sink.ts --chunking */
  readonly server: ServerKind
  readonly workloads: ReadonlyArray<string>
  readonly command: () => { readonly file: string; readonly args: ReadonlyArray<string> }
  readonly env?: Readonly<Record<string, string>>
  readonly what: string
}

const PRELOAD = path.join(BENCH, "contestants/lib/preload.mjs")
const nodeScript = (script: string) => () => ({
  file: process.execPath,
  args: ["--import", PRELOAD, path.join(BENCH, "contestants", script)]
})
const effectScript = () => ({
  file: process.execPath,
  args: TSX ?
    ["--import", "tsx", "--import", PRELOAD, path.join(BENCH, "contestants/effect.ts")] :
    ["--import", PRELOAD, path.join(DIST, "bench/contestants/effect.js")]
})
const findExecutable = (name: string, extra: ReadonlyArray<string> = []) => {
  for (const dir of [...(process.env.PATH ?? "").split(":"), ...extra]) {
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {
      // not here
    }
  }
  return undefined
}
// the system's CPython first (the team harness's smtplib figures are /usr/bin/python3's)
const PYTHON = process.env.PYTHON ??
  (fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : findExecutable("python3"))
const LEAN_SOURCE = process.env.EFFECT_LEAN ?? path.join(ROOT, "../shared/bench/contestants/effect-lean.mjs")
const LEAN = fs.existsSync(LEAN_SOURCE) ? LEAN_SOURCE : undefined
// run from inside this repository, so that its `import "effect"` resolves to our node_modules
const LEAN_COPY = path.join(DIST, "effect-lean.mjs")

const ALL_CONTESTANTS: ReadonlyArray<Contestant> = [
  {
    name: "effect-single",
    server: "plain",
    workloads: ["W1", "W2", "W3", "W3L", "W4", "W5"],
    command: effectScript,
    env: { MODE: "single", CHUNKING: "0" },
    what: "effect-smtp `sendmail` loop, pipelined DATA (a Stream for W3/W3L)"
  },
  {
    name: "effect-single-bdat",
    server: "chunking",
    workloads: ["W1", "W2", "W3", "W3L", "W5"],
    command: effectScript,
    env: { MODE: "single", CHUNKING: "1" },
    what: "effect-smtp `sendmail` loop, BDAT (CHUNKING sink)"
  },
  {
    name: "effect-batch",
    server: "plain",
    workloads: ["W1", "W2", "W4", "W5"],
    command: effectScript,
    env: { MODE: "batch", CHUNKING: "0" },
    what: "effect-smtp `sendBatch` per connection, DATA (next envelope behind the end of data)"
  },
  {
    name: "effect-batch-bdat",
    server: "chunking",
    workloads: ["W1", "W2", "W5"],
    command: effectScript,
    env: { MODE: "batch", CHUNKING: "1" },
    what: "effect-smtp `sendBatch`, BDAT (CHUNKING sink)"
  },
  {
    name: "effect-batchall",
    server: "plain",
    workloads: ["W1", "W5"],
    command: effectScript,
    env: { MODE: "batch-all", CHUNKING: "0" },
    what: "effect-smtp `sendBatchAll` (the batch as one Effect, no Stream), DATA"
  },
  {
    name: "effect-batchall-bdat",
    server: "chunking",
    workloads: ["W1", "W5"],
    command: effectScript,
    env: { MODE: "batch-all", CHUNKING: "1" },
    what: "effect-smtp `sendBatchAll`, BDAT (CHUNKING sink)"
  },
  {
    name: "effect-mailer",
    server: "plain",
    workloads: ["W4"],
    command: effectScript,
    env: { MODE: "mailer", CHUNKING: "0" },
    what: "effect-smtp `Mailer` (maxConnections = CONNS), N `sendmail` run CONNS at a time"
  },
  {
    name: "effect-sendall",
    server: "plain",
    workloads: ["W4", "W5"],
    command: effectScript,
    env: { MODE: "sendall", CHUNKING: "0" },
    what: "effect-smtp `Mailer.sendAll` (maxConnections = concurrency = CONNS) over a generator"
  },
  {
    name: "effect-lean",
    server: "plain",
    workloads: ["W1", "W2", "W4", "W5"],
    command: () => ({ file: process.execPath, args: ["--import", PRELOAD, LEAN_COPY] }),
    what: "the team's lean Effect 3 client (shared/bench/contestants/effect-lean.mjs), when present"
  },
  {
    name: "nm-conn",
    server: "plain",
    workloads: ["W1", "W2", "W3", "W3L", "W4", "W5"],
    command: nodeScript("nm-conn.mjs"),
    what: "nodemailer `SMTPConnection.send` loop (a Readable for W3/W3L)"
  },
  {
    name: "nm-conn-ch",
    server: "chunking",
    workloads: ["W1"],
    command: nodeScript("nm-conn.mjs"),
    what: "nm-conn against the CHUNKING sink (nodemailer does not use BDAT): the base for effect-batch-bdat"
  },
  {
    name: "nm-pool4",
    server: "plain",
    workloads: ["W4"],
    command: nodeScript("nm-pool.mjs"),
    env: { MAXCONN: "4" },
    what: "nodemailer pooled transport, maxConnections 4, N `sendMail` queued at once"
  },
  {
    name: "raw-354",
    server: "plain",
    workloads: ["W1", "W2", "W3", "W4", "W5"],
    command: nodeScript("raw-floor.mjs"),
    env: { MODE: "sync354" },
    what: "node:net floor, RFC 2920: waits for 354 only (1 round trip per message)"
  },
  {
    name: "raw-bdat",
    server: "chunking",
    workloads: ["W1", "W2", "W5"],
    command: nodeScript("raw-floor.mjs"),
    env: { MODE: "bdat" },
    what: "node:net floor, BDAT: every message written without waiting"
  },
  {
    name: "smtplib",
    server: "plain",
    workloads: ["W1", "W2", "W3", "W5"],
    command: () => ({ file: PYTHON!, args: [path.join(BENCH, "contestants/py_smtplib.py")] }),
    what: "CPython smtplib `sendmail` loop (no pipelining)"
  }
]

// ---------------------------------------------------------------------------------------------- processes

const children = new Set<ChildProcess>()
const cleanup = () => {
  for (const child of children) child.kill("SIGTERM")
}
process.on("exit", cleanup)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanup()
    process.exit(130)
  })
}

const TASKSET = findExecutable("taskset")
const pinned = (role: "server" | "client") => {
  if (TASKSET === undefined || PIN === "none") return []
  if (PIN === "split") return [TASKSET, "-c", role === "server" ? "0" : "1"]
  return [TASKSET, "-c", PIN_CPU]
}
const spawnPinned = (
  role: "server" | "client",
  file: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
) => {
  const prefix = pinned(role)
  const [cmd, ...rest] = [...prefix, file, ...args]
  const child = spawn(cmd, rest, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } })
  children.add(child)
  child.on("exit", () => children.delete(child))
  return child
}

/** Waits for a line matching `pattern` on the child's stdout. */
const waitForLine = (child: ChildProcess, pattern: RegExp, timeoutMs = 15_000) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    let buffered = ""
    const timer = setTimeout(() => {
      child.stdout!.off("data", onData)
      reject(new Error(`no ${pattern} within ${timeoutMs} ms`))
    }, timeoutMs)
    const onData = (d: Buffer) => {
      buffered += d.toString()
      const m = pattern.exec(buffered)
      if (m !== null) {
        clearTimeout(timer)
        child.stdout!.off("data", onData)
        resolve(m)
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`exited (${code}) before ${pattern}`)))
  })

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------- servers

interface Server {
  readonly kind: ServerKind
  readonly name: string
  readonly port: number
  /** Messages accepted so far (server-side count), when the server can tell. */
  readonly count: () => Promise<number | undefined>
}

const SMTP_SINK = process.env.SERVER === "sink"
  ? undefined
  : findExecutable("smtp-sink", ["/usr/sbin", "/usr/local/sbin"])
const sinkCommand = (chunking: boolean) => ({
  file: process.execPath,
  args: [
    ...(TSX ? ["--import", "tsx", path.join(BENCH, "sink.ts")] : [path.join(DIST, "bench/sink.js")]),
    ...(chunking ? ["--chunking"] : [])
  ]
})

const startProjectSink = async (kind: ServerKind): Promise<Server> => {
  const { args, file } = sinkCommand(kind === "chunking")
  const child = spawnPinned("server", file, args)
  child.stderr!.pipe(process.stderr)
  const port = Number((await waitForLine(child, /LISTENING (\d+)/))[1])
  let lines = ""
  child.stdout!.on("data", (d: Buffer) => (lines += d.toString()))
  const count = async () => {
    const before = lines.length
    child.kill("SIGUSR2")
    for (let i = 0; i < 100; i++) {
      const m = /MESSAGES (\d+)/.exec(lines.slice(before))
      if (m !== null) return Number(m[1])
      await sleep(10)
    }
    return undefined
  }
  return { kind, name: `bench/sink.ts${kind === "chunking" ? " --chunking" : ""}`, port, count }
}

const startSmtpSink = async (file: string): Promise<Server> => {
  const port = await freePort()
  // Postfix's smtp-sink: PIPELINING, 8BITMIME, DSN, ENHANCEDSTATUSCODES; no SIZE, no CHUNKING.
  // -c prints a running count of messages (only for --smoke: it costs the sink a write per message)
  const args = [
    ...(SMOKE ? ["-c"] : []),
    ...(process.getuid?.() === 0 ? ["-u", "nobody"] : []),
    `127.0.0.1:${port}`,
    "1024"
  ]
  const child = spawnPinned("server", file, args)
  let output = ""
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()))
  for (let i = 0; !(await canConnect(port)); i++) {
    if (i === 100 || child.exitCode !== null) throw new Error(`smtp-sink did not start: ${output}`)
    await sleep(50)
  }
  const count = async () => {
    if (!SMOKE) return undefined
    const all = [...output.matchAll(/mesg=(\d+)/g)]
    return all.length === 0 ? 0 : Number(all[all.length - 1][1])
  }
  return { kind: "plain", name: `smtp-sink (${file})`, port, count }
}

interface Proxy {
  readonly port: number
  readonly rtt: number
}
const startProxy = async (upstream: number): Promise<Proxy> => {
  const child = spawnPinned("server", process.execPath, [
    path.join(BENCH, "latproxy.mjs"),
    "0",
    String(upstream),
    String(DELAY_US)
  ])
  child.stderr!.pipe(process.stderr)
  const port = Number((await waitForLine(child, /LISTENING (\d+)/))[1])
  // the effective round trip (delay + proxy + sink + stack), as the team harness measures it
  const probe = spawnPinned("client", process.execPath, [path.join(BENCH, "rttprobe.mjs")], { PORT: String(port) })
  const rtt = Number((await waitForLine(probe, /rtt_ms=([\d.]+)/))[1])
  return { port, rtt }
}

// ---------------------------------------------------------------------------------------------- runs

interface Run {
  readonly workload: string
  readonly rep: number
  readonly contestant: string
  readonly server: string
  readonly n: number
  readonly ms: number
  readonly cpuMs: number
  readonly rssKb: number
  readonly rtt: number | undefined
  readonly status: string
}

const runOne = async (
  w: Workload,
  rep: number,
  c: Contestant,
  server: Server,
  port: number,
  rtt: number | undefined
): Promise<Run> => {
  const { args, file } = c.command()
  const before = await server.count()
  const child = spawnPinned("client", file, args, {
    HOST: "127.0.0.1",
    PORT: String(port),
    N: String(w.n),
    RCPTS: String(w.rcpts),
    SIZE: String(w.size),
    CONNS: String(w.conns),
    ...c.env
  })
  let out = ""
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()))
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS)
  const code = await new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  clearTimeout(timer)
  const m = /RESULT sent=(\d+) ms=([\d.]+).*?cpu_ms=([\d.]+).*?rss_kb=(\d+)/.exec(out)
  let status = code === 0 ? "ok" : `exit ${code ?? "killed"}`
  if (m === null && status === "ok") status = "no RESULT"
  else if (m !== null && Number(m[1]) !== w.n) status = `sent=${m[1]}`
  if (before !== undefined && status === "ok") {
    // the server's own count must have grown by N (smtp-sink reports with a short delay)
    let delta = 0
    for (let i = 0; i < 100; i++) {
      delta = ((await server.count()) ?? 0) - before
      if (delta >= w.n) break
      await sleep(20)
    }
    if (delta !== w.n) status = `server counted ${delta}`
  }
  if (status !== "ok") {
    process.stderr.write(`--- ${w.name} ${c.name} rep ${rep}: ${status}\n${out.split("\n").slice(-8).join("\n")}\n`)
  }
  return {
    workload: w.name,
    rep,
    contestant: c.name,
    server: server.name,
    n: w.n,
    ms: m === null ? NaN : Number(m[2]),
    cpuMs: m === null ? NaN : Number(m[3]),
    rssKb: m === null ? NaN : Number(m[4]),
    rtt,
    status
  }
}

/**
 * Peak RSS of a Node process that only imports modules: nothing, "effect", effect-smtp's main entry
 * alone, and what the effect-smtp contestant imports (effect's barrel, effect-smtp and
 * effect-smtp/node). The last is the issue's "node importing effect-smtp": the shared harness's
 * README, where the target comes from, measured "node + `import "effect"` 81 MB; + effect-smtp 0.1.0
 * 95 MB", effect's barrel and effect-smtp 0.1.0, whose main entry held the Node transport.
 */
const IMPORTS: ReadonlyArray<{ readonly name: string; readonly specifiers: ReadonlyArray<string> }> = [
  { name: "node", specifiers: [] },
  { name: "node + effect", specifiers: ["effect"] },
  {
    name: "node + effect-smtp",
    specifiers: [TSX ? path.join(ROOT, "src/index.ts") : path.join(DIST, "src/index.js")]
  },
  {
    name: "node + the contestant's imports",
    specifiers: [
      "effect",
      TSX ? path.join(ROOT, "src/index.ts") : path.join(DIST, "src/index.js"),
      TSX ? path.join(ROOT, "src/node.ts") : path.join(DIST, "src/node.js")
    ]
  }
]
const importRss = async (specifiers: ReadonlyArray<string>) => {
  const script = specifiers.map((specifier) => `await import(${JSON.stringify(specifier)});`).join("") +
    "process.stdout.write(`RSS ${process.resourceUsage().maxRSS}\\n`)"
  const child = spawnPinned("client", process.execPath, [
    ...(TSX ? ["--import", "tsx"] : []),
    "--input-type=module",
    "-e",
    script
  ])
  const m = await waitForLine(child, /RSS (\d+)/)
  return Number(m[1])
}

const versions = () => {
  const require = createRequire(import.meta.url)
  const version = (name: string) => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version
    } catch {
      return "?"
    }
  }
  let python = "none"
  try {
    if (PYTHON !== undefined) python = execFileSync(PYTHON, ["--version"]).toString().trim()
  } catch {
    // not runnable
  }
  return `effect ${version("effect")}, @effect/platform-node ${version("@effect/platform-node")}, nodemailer ${
    version("nodemailer")
  }, ${python} (${PYTHON ?? "-"})`
}

// ---------------------------------------------------------------------------------------------- statistics

const median = (xs: ReadonlyArray<number>) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const fmt = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–"

const rate = (r: Run) => r.n / (r.ms / 1000)
const rttPerMsg = (r: Run) => (r.rtt === undefined ? NaN : r.ms / (r.n * r.rtt))

// ---------------------------------------------------------------------------------------------- main

const main = async () => {
  const only = option("--only")?.split(",").map((s) => s.trim().toUpperCase())
  const picked = option("--contestants")?.split(",").map((s) => s.trim())
  const workloads = WORKLOADS.filter((w) => only === undefined || only.includes(w.name))
  if (only !== undefined && workloads.length !== only.length) {
    throw new Error(`unknown workload in ${only.join(",")} (known: ${WORKLOADS.map((w) => w.name).join(",")})`)
  }
  const unknown = picked?.filter((p) => !ALL_CONTESTANTS.some((c) => c.name === p)) ?? []
  if (unknown.length > 0) {
    throw new Error(`unknown contestant ${unknown.join(",")} (known: ${ALL_CONTESTANTS.map((c) => c.name).join(",")})`)
  }
  const skipped: Array<string> = []
  const contestants = ALL_CONTESTANTS.filter((c) => {
    if (picked !== undefined && !picked.includes(c.name)) return false
    if (c.name === "effect-lean" && LEAN === undefined) {
      skipped.push(`effect-lean (${LEAN_SOURCE} not found; EFFECT_LEAN=path)`)
      return false
    }
    if (c.name === "smtplib" && PYTHON === undefined) {
      skipped.push("smtplib (no python3; PYTHON=path)")
      return false
    }
    return true
  })

  const t0 = Date.now()
  const loadAtStart = os.loadavg()
  const log = (s: string) => process.stdout.write(`${s}\n`)
  log(
    `effect-smtp bench${SMOKE ? " --smoke" : ""}: REPS=${REPS} PIN=${PIN}${PIN === "same" ? ` (cpu ${PIN_CPU})` : ""}${
      TASKSET === undefined ? " (no taskset: not pinned)" : ""
    } DELAY_US=${DELAY_US} ${TSX ? "effect-smtp through tsx" : "effect-smtp compiled (bench/dist)"}`
  )
  for (const s of skipped) log(`skipped: ${s}`)

  if (!TSX) {
    // compiled JS for the effect-smtp contestants and the sink: fair CPU and memory figures (tsx
    // adds ~60 MB and its own CPU); bench/dist is inside the repository so imports resolve
    log("building bench/dist (tsc -p bench/tsconfig.json)")
    try {
      execFileSync(process.execPath, [
        path.join(ROOT, "node_modules/typescript/bin/tsc"),
        "-p",
        path.join(BENCH, "tsconfig.json")
      ], {
        stdio: "inherit"
      })
    } catch {
      if (!fs.existsSync(path.join(DIST, "bench/contestants/effect.js"))) throw new Error("the build failed")
      log("tsc reported errors; the emitted JS is used anyway")
    }
    if (LEAN !== undefined) fs.copyFileSync(LEAN, LEAN_COPY)
  } else if (LEAN !== undefined) {
    fs.mkdirSync(DIST, { recursive: true })
    fs.copyFileSync(LEAN, LEAN_COPY)
  }

  // servers: the DATA sink (smtp-sink when installed) and the CHUNKING sink, each in its own process
  const needed = new Set(contestants.map((c) => c.server))
  const servers = new Map<ServerKind, Server>()
  if (needed.has("plain")) {
    servers.set("plain", SMTP_SINK !== undefined ? await startSmtpSink(SMTP_SINK) : await startProjectSink("plain"))
  }
  if (needed.has("chunking")) servers.set("chunking", await startProjectSink("chunking"))
  for (const s of servers.values()) log(`server ${s.kind}: ${s.name} on :${s.port}`)
  const proxies = new Map<ServerKind, Proxy>()

  const runs: Array<Run> = []
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)
  const outDir = path.join(BENCH, "results", `${stamp}${SMOKE ? "-smoke" : ""}`)
  fs.mkdirSync(outDir, { recursive: true })
  const csv = path.join(outDir, "runs.csv")
  fs.writeFileSync(csv, "workload,rep,contestant,server,n,ms,cpu_ms,rss_kb,probe_rtt_ms,status\n")

  // the memory baseline: a process that only imports
  const baseline = new Map<string, Array<number>>()
  if (workloads.some((w) => w.name === "W1") && contestants.some((c) => c.name.startsWith("effect-"))) {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const i of IMPORTS) baseline.set(i.name, [...(baseline.get(i.name) ?? []), await importRss(i.specifiers)])
    }
    log(
      `import baseline (peak RSS, median of ${REPS}): ${
        IMPORTS.map((i) => `${i.name} ${fmt(median(baseline.get(i.name)!) / 1024, 1)} MB`).join(", ")
      }`
    )
  }

  for (const w of workloads) {
    const list = contestants.filter((c) => c.workloads.includes(w.name))
    if (list.length === 0) continue
    if (w.via === "proxy") {
      for (const c of list) {
        if (!proxies.has(c.server)) {
          const proxy = await startProxy(servers.get(c.server)!.port)
          proxies.set(c.server, proxy)
          log(`latency proxy :${proxy.port} -> ${c.server} sink, delay ${DELAY_US} µs, NOOP round trip ${proxy.rtt} ms`)
        }
      }
    }
    log(`== ${w.name}: N=${w.n} RCPTS=${w.rcpts} SIZE=${w.size} CONNS=${w.conns} via ${w.via} (${w.what})`)
    for (let rep = 1; rep <= REPS; rep++) {
      for (let i = 0; i < list.length; i++) {
        // interleaved A B C …, the order rotated each rep
        const c = list[(i + rep - 1) % list.length]
        const server = servers.get(c.server)!
        const proxy = w.via === "proxy" ? proxies.get(c.server)! : undefined
        const run = await runOne(w, rep, c, server, proxy?.port ?? server.port, proxy?.rtt)
        runs.push(run)
        fs.appendFileSync(
          csv,
          `${run.workload},${run.rep},${run.contestant},${run.server},${run.n},${run.ms},${run.cpuMs},${run.rssKb},${
            run.rtt ?? ""
          },${run.status}\n`
        )
        log(
          `  ${w.name.padEnd(3)} rep ${rep} ${c.name.padEnd(18)} ${fmt(run.ms, 1).padStart(10)} ms  cpu ${
            fmt(run.cpuMs, 1).padStart(8)
          } ms  rss ${fmt(run.rssKb / 1024, 1).padStart(6)} MB${
            w.via === "proxy" ? `  ${fmt(rttPerMsg(run), 2)} RTT/msg` : ""
          }  ${run.status}`
        )
      }
    }
  }

  const summary = summarize(workloads, contestants, runs, baseline, servers, proxies)
  const header = [
    `effect-smtp bench, ${new Date().toISOString()}${SMOKE ? " (--smoke: tiny N, 1 rep; not a measurement)" : ""}`,
    `host: ${os.cpus().length} cpus (${
      os.cpus()[0]?.model ?? "?"
    }), ${os.type()} ${os.release()}, node ${process.version}, ` +
    `load average ${loadAtStart.map((l) => l.toFixed(2)).join(" ")} at the start, ${
      os.loadavg().map((l) => l.toFixed(2)).join(" ")
    } at the end`,
    `REPS=${REPS} PIN=${PIN}${PIN === "same" ? ` (cpu ${PIN_CPU})` : ""} DELAY_US=${DELAY_US}; effect-smtp ${
      TSX ? "through tsx" : "compiled (tsc -p bench/tsconfig.json)"
    }; servers: ${[...servers.values()].map((s) => `${s.kind} = ${s.name}`).join(", ")}`,
    `versions: ${versions()}`
  ]
  fs.writeFileSync(path.join(outDir, "summary.md"), `${header.join("\n\n")}\n\n${summary}`)
  log("")
  log(summary)
  const failed = runs.filter((r) => r.status !== "ok")
  log(
    `${runs.length - failed.length} runs ok, ${failed.length} failed; ${Math.round((Date.now() - t0) / 1000)} s; ${
      path.relative(ROOT, outDir)
    }/`
  )
  for (const f of failed) log(`FAILED: ${f.workload} ${f.contestant} rep ${f.rep}: ${f.status}`)
  return failed.length === 0 && runs.length > 0
}

// ---------------------------------------------------------------------------------------------- the tables

const summarize = (
  workloads: ReadonlyArray<Workload>,
  contestants: ReadonlyArray<Contestant>,
  runs: ReadonlyArray<Run>,
  baseline: ReadonlyMap<string, ReadonlyArray<number>>,
  servers: ReadonlyMap<ServerKind, Server>,
  proxies: ReadonlyMap<ServerKind, Proxy>
) => {
  const ok = runs.filter((r) => r.status === "ok")
  const of = (w: string, c: string) => ok.filter((r) => r.workload === w && r.contestant === c)
  /** the median over reps of a same-rep ratio a / b */
  const ratio = (w: string, a: string, b: string, f: (r: Run) => number) => {
    const bs = of(w, b)
    return median(
      of(w, a).map((ra) => {
        const rb = bs.find((r) => r.rep === ra.rep)
        return rb === undefined ? NaN : f(ra) / f(rb)
      })
    )
  }
  const med = (w: string, c: string, f: (r: Run) => number) => median(of(w, c).map(f))
  const lines: Array<string> = []

  for (const w of workloads) {
    const list = contestants.filter((c) =>
      c.workloads.includes(w.name) && runs.some((r) => r.workload === w.name && r.contestant === c.name)
    )
    if (list.length === 0) continue
    const big = w.n === 1
    lines.push(`### ${w.name}: ${w.what}`)
    lines.push("")
    lines.push(
      `| contestant | sink | ${big ? "ms (min–max)" : "msgs/s (min–max)"} | client CPU ms/msg | ${
        w.via === "proxy" ? "RTT/msg | " : ""
      }peak RSS MB | ÷ nm-conn${w.name === "W4" ? " | ÷ nm-pool4" : ""} | ok |`
    )
    lines.push(`|---|---|---:|---:|${w.via === "proxy" ? "---:|" : ""}---:|---:|${w.name === "W4" ? "---:|" : ""}---|`)
    for (const c of list) {
      const rs = of(w.name, c.name)
      const values = rs.map(big ? (r: Run) => r.ms : rate)
      const base = c.server === "chunking" && contestants.some((x) =>
          x.name === "nm-conn-ch" && x.workloads.includes(w.name)
        ) ?
        "nm-conn-ch" :
        "nm-conn"
      // W3/W3L: time ratio (lower is better); otherwise msgs/s ratio (higher is better)
      const vsNm = c.name === base ? NaN : ratio(w.name, c.name, base, big ? (r) => r.ms : rate)
      const total = runs.filter((r) => r.workload === w.name && r.contestant === c.name).length
      lines.push(
        `| ${c.name} | ${c.server === "chunking" ? "CHUNKING" : "plain"} | ${fmt(median(values), big ? 1 : 0)} (${
          fmt(Math.min(...values), big ? 1 : 0)
        }–${fmt(Math.max(...values), big ? 1 : 0)}) | ${fmt(med(w.name, c.name, (r) => r.cpuMs / r.n), 3)} | ${
          w.via === "proxy" ? `${fmt(med(w.name, c.name, rttPerMsg), 2)} | ` : ""
        }${fmt(med(w.name, c.name, (r) => r.rssKb / 1024), 1)} | ${
          Number.isFinite(vsNm) ? `${fmt(vsNm, 2)}×${base === "nm-conn-ch" ? " (ch)" : ""}` : ""
        }${
          w.name === "W4" ?
            ` | ${c.name === "nm-pool4" ? "" : fmt(ratio(w.name, c.name, "nm-pool4", rate), 2) + "×"}` :
            ""
        } | ${rs.length}/${total} |`
      )
    }
    if (w.via === "proxy") {
      lines.push("")
      lines.push(
        `RTT/msg = time ÷ (N × measured NOOP round trip through the proxy: ${
          [...proxies.entries()].map(([k, p]) => `${p.rtt} ms to the ${k} sink`).join(", ")
        }).`
      )
    }
    lines.push("")
  }
  if (baseline.size > 0) {
    lines.push(
      `Import baseline (peak RSS of a process that only imports; median of ${baseline.get("node")!.length}): ${
        [...baseline.entries()].map(([name, xs]) => `${name} ${fmt(median(xs) / 1024, 1)} MB`).join(", ")
      }.`
    )
    // what the run itself adds: W1's peak over a process that imports what the contestant imports
    const own = median(baseline.get("node + the contestant's imports") ?? [])
    const effect = median(baseline.get("node + effect") ?? [])
    const mainOnly = median(baseline.get("node + effect-smtp") ?? [])
    const w1 = (c: string) => median(of("W1", c).map((r) => r.rssKb))
    if (Number.isFinite(own) && of("W1", "effect-single").length > 0) {
      lines.push(
        `W1 peak RSS over the process's own imports: effect-single ${fmt((w1("effect-single") - own) / 1024, 1)} MB` +
          (of("W1", "effect-lean").length > 0 ?
            `, effect-lean ${fmt((w1("effect-lean") - effect) / 1024, 1)} MB (over node + effect)` :
            "") +
          `; effect-single over effect-smtp's main entry alone (no effect barrel, no effect-smtp/node): ${
            fmt((w1("effect-single") - mainOnly) / 1024, 1)
          } MB.`
      )
    }
    lines.push("")
  }

  // the issue's targets
  type Target = {
    readonly what: string
    readonly value: number
    readonly goal: string
    readonly met: boolean | undefined
  }
  const targets: Array<Target> = []
  const check = (what: string, value: number, op: "<=" | ">=", limit: number, unit = "") => {
    targets.push({
      what,
      value,
      goal: `${op === "<=" ? "≤" : "≥"} ${limit}${unit}`,
      met: Number.isFinite(value) ? (op === "<=" ? value <= limit : value >= limit) : undefined
    })
  }
  const cpu = (r: Run) => r.cpuMs / r.n
  const importsRss = median(baseline.get("node + the contestant's imports") ?? [])
  check(
    "W1 single DATA: client CPU/msg ÷ effect-lean's",
    ratio("W1", "effect-single", "effect-lean", cpu),
    "<=",
    1.15,
    "×"
  )
  check("W1 single DATA: msgs/s ÷ nm-conn", ratio("W1", "effect-single", "nm-conn", rate), ">=", 1.2, "×")
  check("W2 single DATA: msgs/s ÷ nm-conn", ratio("W2", "effect-single", "nm-conn", rate), ">=", 1.5, "×")
  check("W4 Mailer (4 connections): msgs/s ÷ nm-pool4", ratio("W4", "effect-mailer", "nm-pool4", rate), ">=", 1.2, "×")
  // the same Mailer's bulk operation (not one of the issue's targets: shown beside it)
  check("W4 Mailer.sendAll: msgs/s ÷ nm-pool4", ratio("W4", "effect-sendall", "nm-pool4", rate), ">=", 1.2, "×")
  check("W5 single DATA: RTT/msg", med("W5", "effect-single", rttPerMsg), "<=", 2.2)
  check("W5 single BDAT: RTT/msg", med("W5", "effect-single-bdat", rttPerMsg), "<=", 1.1)
  check("W5 batch DATA: RTT/msg", med("W5", "effect-batch", rttPerMsg), "<=", 1.15)
  check("W5 batch BDAT: RTT/msg", med("W5", "effect-batch-bdat", rttPerMsg), "<=", 0.1)
  check("W1 batch DATA: msgs/s ÷ smtplib", ratio("W1", "effect-batch", "smtplib", rate), ">=", 1.0, "×")
  check(
    "W1 batch BDAT (CHUNKING sink): msgs/s ÷ nm-conn (same sink)",
    ratio("W1", "effect-batch-bdat", "nm-conn-ch", rate),
    ">=",
    10,
    "×"
  )
  // the batch operation as one Effect (`sendBatchAll`): the same batch without running a Stream
  check("W5 batch DATA, sendBatchAll: RTT/msg", med("W5", "effect-batchall", rttPerMsg), "<=", 1.15)
  check("W5 batch BDAT, sendBatchAll: RTT/msg", med("W5", "effect-batchall-bdat", rttPerMsg), "<=", 0.1)
  check(
    "W1 batch DATA, sendBatchAll: msgs/s ÷ smtplib",
    ratio("W1", "effect-batchall", "smtplib", rate),
    ">=",
    1.0,
    "×"
  )
  check(
    "W1 batch BDAT, sendBatchAll: msgs/s ÷ nm-conn (same sink)",
    ratio("W1", "effect-batchall-bdat", "nm-conn-ch", rate),
    ">=",
    10,
    "×"
  )
  check(
    "W1 single DATA: peak RSS − (node importing effect and effect-smtp)",
    (med("W1", "effect-single", (r) => r.rssKb) - importsRss) / 1024,
    "<=",
    25,
    " MB"
  )
  check("W3L single DATA: time ÷ nm-conn", ratio("W3L", "effect-single", "nm-conn", (r) => r.ms), "<=", 1.2, "×")
  check(
    "W3L single DATA: peak RSS − its W3 peak RSS",
    (med("W3L", "effect-single", (r) => r.rssKb) - med("W3", "effect-single", (r) => r.rssKb)) / 1024,
    "<=",
    20,
    " MB"
  )
  if (SMOKE) {
    lines.push("(--smoke: the targets are not evaluated on tiny runs)")
    return lines.join("\n")
  }
  lines.push("### Targets (medians over reps; ratios are medians of same-rep ratios)")
  lines.push("")
  lines.push("| target | measured | goal | met |")
  lines.push("|---|---:|---:|---|")
  for (const t of targets) {
    lines.push(
      `| ${t.what} | ${fmt(t.value, 2)} | ${t.goal} | ${
        t.met === undefined ? "not measured" : t.met ? "yes" : "**no**"
      } |`
    )
  }
  lines.push("")
  return lines.join("\n")
}

main().then(
  (ok) => {
    cleanup()
    process.exit(ok ? 0 : 1)
  },
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
    cleanup()
    process.exit(2)
  }
)
