/**
 * Running the built `effect-smtp` command as a subprocess. The package's sources are compiled once
 * (tsc with tsconfig.build.json, type-checking left to `tsc --noEmit`) into a directory keyed by
 * their content, shared by the test files through a lock directory, with the repository's
 * node_modules linked beside it; each test then runs `node dist/cli/main.js ...`.
 */
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"

const root = Path.resolve(Path.dirname(Url.fileURLToPath(import.meta.url)), "../..")

const sourceHash = (): string => {
  const hash = Crypto.createHash("sha256")
  const walk = (dir: string): void => {
    for (const entry of Fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = Path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else {
        hash.update(full)
        hash.update(Fs.readFileSync(full))
      }
    }
  }
  walk(Path.join(root, "src"))
  hash.update(Fs.readFileSync(Path.join(root, "tsconfig.build.json")))
  hash.update(Fs.readFileSync(Path.join(root, "package.json")))
  return hash.digest("hex").slice(0, 16)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

let building: Promise<string> | undefined

/** The path of the built `dist/cli/main.js` (built on first use). */
export const builtMain = (): Promise<string> => {
  building ??= (async () => {
    const dir = Path.join(Os.tmpdir(), `effect-smtp-cli-${sourceHash()}`)
    const main = Path.join(dir, "dist/cli/main.js")
    const done = Path.join(dir, "done")
    const lock = `${dir}.lock`
    for (let waited = 0; !Fs.existsSync(done); waited += 200) {
      try {
        Fs.mkdirSync(lock)
      } catch {
        // another test file is building: wait for it (and take over a lock left by a crashed run)
        const age = Date.now() - Fs.statSync(lock, { throwIfNoEntry: false })!.mtimeMs
        if (Number.isFinite(age) && age > 120_000) Fs.rmSync(lock, { recursive: true, force: true })
        if (waited > 120_000) throw new Error(`timed out waiting for the build in ${dir}`)
        await sleep(200)
        continue
      }
      try {
        Fs.rmSync(dir, { recursive: true, force: true })
        Fs.mkdirSync(dir, { recursive: true })
        const tsc = Path.join(root, "node_modules/typescript/bin/tsc")
        const result = ChildProcess.spawnSync(process.execPath, [
          tsc,
          "-p",
          Path.join(root, "tsconfig.build.json"),
          "--outDir",
          Path.join(dir, "dist"),
          "--noCheck",
          "--declaration",
          "false",
          "--declarationMap",
          "false",
          "--sourceMap",
          "false"
        ], { encoding: "utf8" })
        if (result.status !== 0) throw new Error(`build failed: ${result.stdout}${result.stderr}`)
        Fs.copyFileSync(Path.join(root, "package.json"), Path.join(dir, "package.json"))
        Fs.symlinkSync(Path.join(root, "node_modules"), Path.join(dir, "node_modules"), "dir")
        Fs.writeFileSync(done, "")
        // builds of other sources, more than an hour old, are of no use any more
        for (const name of Fs.readdirSync(Os.tmpdir())) {
          const other = Path.join(Os.tmpdir(), name)
          if (!/^effect-smtp-cli-[0-9a-f]{16}$/.test(name) || other === dir) continue
          const stat = Fs.statSync(other, { throwIfNoEntry: false })
          if (stat !== undefined && Date.now() - stat.mtimeMs > 3_600_000) {
            Fs.rmSync(other, { recursive: true, force: true })
          }
        }
      } finally {
        Fs.rmSync(lock, { recursive: true, force: true })
      }
    }
    return main
  })()
  return building
}

/** What a run printed and how it ended. */
export interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Options of a run. */
export interface RunOptions {
  readonly env?: Record<string, string> | undefined
  readonly input?: string | undefined
  readonly cwd?: string | undefined
  /** Kill the process after this long (a test failure, not a hang). Default 20 s. */
  readonly timeout?: number | undefined
}

/** The environment of a run: no SMTP_PASSWORD from the caller's shell, no colours. */
const environment = (env: Record<string, string> | undefined) => {
  const base: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" }
  delete base.SMTP_PASSWORD
  return { ...base, ...env }
}

/** Starts the command; the caller reads its output and waits for it. */
export const spawn = async (args: ReadonlyArray<string>, options: RunOptions = {}) => {
  const main = await builtMain()
  return ChildProcess.spawn(process.execPath, [main, ...args], {
    env: environment(options.env),
    cwd: options.cwd ?? Os.tmpdir(),
    stdio: ["pipe", "pipe", "pipe"]
  })
}

/** Waits for a started command and collects its output. */
export const collect = (child: ChildProcess.ChildProcess, options: RunOptions = {}): Promise<Run> =>
  new Promise((resolve) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8")
    })
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeout ?? 20_000)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
    if (options.input !== undefined) child.stdin!.end(options.input)
    else child.stdin!.end()
  })

/** Runs the command to its end. */
export const run = (args: ReadonlyArray<string>, options: RunOptions = {}): Effect.Effect<Run> =>
  Effect.promise(async () => collect(await spawn(args, options), options))

/** A temporary directory, removed with the Scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-smtp-cli-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** The failure shape every bad input must have: one line on stderr, no stack trace. */
export const isOneLineError = (run: Run): boolean => {
  const lines = run.stderr.trimEnd().split("\n")
  return lines.length === 1 && lines[0]!.startsWith("effect-smtp: ") && !/\n\s+at /.test(run.stderr)
}

/** A port on 127.0.0.1 with nothing listening (bound, then closed). */
export const closedPort = (): Effect.Effect<number> =>
  Effect.promise(() =>
    new Promise<number>((resolve) => {
      const server = Net.createServer()
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port
        server.close(() => resolve(port))
      })
    })
  )
