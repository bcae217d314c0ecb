/**
 * Running a Worker in workerd (the `workerd` npm package's binary) for the tests: whether it can
 * run here, and a scoped workerd serving one Worker bundled with esbuild, on a free loopback port.
 * Without a working binary a suite skips, saying why; with SMTP_WORKERD_REQUIRED=1 that is a failure.
 */
import { Deferred, Effect, type Scope } from "effect"
import * as esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"

/** `SMTP_WORKERD_REQUIRED=1`: an unavailable workerd fails the suite instead of skipping it. */
export const workerdRequired = process.env.SMTP_WORKERD_REQUIRED === "1"

/** The binary the `workerd` package installs. */
export const workerdBinary = (): string => {
  const require = Module.createRequire(import.meta.url)
  return Path.join(Path.dirname(require.resolve("workerd/package.json")), "bin", "workerd")
}

/** Why workerd cannot run here, or undefined. */
export const workerdUnavailableReason = (): string | undefined => {
  let binary: string
  try {
    binary = workerdBinary()
  } catch (e) {
    return `the workerd package is not installed (${e instanceof Error ? e.message : String(e)})`
  }
  if (!Fs.existsSync(binary)) return `${binary} does not exist`
  const probe = ChildProcess.spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 })
  if (probe.status !== 0) {
    return `${binary} --version failed: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`
  }
  return undefined
}

/** A date this binary supports (workerd refuses dates after its own). */
export const COMPATIBILITY_DATE = "2025-09-01"

/** A workerd serving a Worker: its HTTP port on 127.0.0.1, and what it wrote to stderr so far. */
export interface Workerd {
  readonly port: number
  readonly log: () => string
}

/**
 * Bundles `entry` into `worker.js`, writes `files` (a `config.capnp` among them, whose socket
 * named "http" listens on `127.0.0.1:0`) into a temporary directory, and starts workerd there;
 * stopped (SIGKILL: nothing needs draining) and removed with the Scope.
 */
export const startWorkerd = (options: {
  readonly entry: string
  readonly files: Readonly<Record<string, string>>
  readonly external?: ReadonlyArray<string> | undefined
}): Effect.Effect<Workerd, never, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-smtp-workerd-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    yield* Effect.promise(() =>
      esbuild.build({
        entryPoints: [options.entry],
        outfile: Path.join(dir, "worker.js"),
        bundle: true,
        format: "esm",
        platform: "browser",
        conditions: ["workerd", "worker", "browser"],
        external: [...(options.external ?? [])],
        logLevel: "silent"
      })
    )
    for (const [name, text] of Object.entries(options.files)) Fs.writeFileSync(Path.join(dir, name), text)
    let stderr = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(workerdBinary(), ["serve", "config.capnp", "--control-fd=3"], {
          cwd: dir,
          stdio: ["ignore", "ignore", "pipe", "pipe"]
        })
      ),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGKILL")
        })
    )
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8")
    })
    const listening = yield* Deferred.make<number, string>()
    ;(child.stdio[3] as NodeJS.ReadableStream).on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue
        const event = JSON.parse(line) as { event?: string; socket?: string; port?: number }
        if (event.event === "listen" && event.socket === "http" && event.port !== undefined) {
          Deferred.unsafeDone(listening, Effect.succeed(event.port))
        }
      }
    })
    child.once(
      "exit",
      (code, signal) => Deferred.unsafeDone(listening, Effect.fail(`workerd exited (${code ?? signal}): ${stderr}`))
    )
    const port = yield* Deferred.await(listening).pipe(
      Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => `workerd did not listen: ${stderr}` }),
      Effect.orDieWith((why) => new Error(why))
    )
    return { port, log: () => stderr }
  })
