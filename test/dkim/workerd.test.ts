/**
 * Dkim in the Workers runtime: test/dkim/worker.ts is bundled with esbuild and served by workerd
 * (the `workerd` npm package's binary), without nodejs_compat; it signs the RFC 8463 Appendix A
 * message with workerd's Web Crypto (PKCS#1 RSA wrapped into PKCS#8, the raw Ed25519 seed), and
 * the signatures must be the RFC's, b= included.
 *
 * Without a working workerd binary the suite skips, saying why; with SMTP_WORKERD_REQUIRED=1 that
 * is a failure instead (as test/cloudflare/workerd.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import * as esbuild from "esbuild"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Url from "node:url"
import type { Answer } from "./worker.js"

const required = process.env.SMTP_WORKERD_REQUIRED === "1"
const workerEntry = Path.join(Path.dirname(Url.fileURLToPath(import.meta.url)), "worker.ts")

const workerdBinary = (): string => {
  const require = Module.createRequire(import.meta.url)
  return Path.join(Path.dirname(require.resolve("workerd/package.json")), "bin", "workerd")
}

const unavailableReason = (): string | undefined => {
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

const reason = unavailableReason()

const CONFIG = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ( name = "main",
      worker = (
        modules = [ (name = "worker.js", esModule = embed "worker.js") ],
        compatibilityDate = "2025-09-01"
      )
    )
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ]
);
`

/** Bundles the Worker, starts workerd in a temporary directory, fetches its one answer. */
const answer = Effect.scoped(Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-smtp-dkim-workerd-"))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )
  yield* Effect.promise(() =>
    esbuild.build({
      entryPoints: [workerEntry],
      outfile: Path.join(dir, "worker.js"),
      bundle: true,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      logLevel: "silent"
    })
  )
  Fs.writeFileSync(Path.join(dir, "config.capnp"), CONFIG)
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
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
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
  return yield* Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(15_000) })
    const text = await response.text()
    if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${text}\n${stderr}`)
    return JSON.parse(text) as Answer
  })
}))

const b = (value: string) => /\bb=([^;]*)$/.exec(value)![1]!.replace(/\s+/g, "")

describe("Dkim in workerd", () => {
  it.live.skipIf(reason !== undefined && !required)(
    reason === undefined ? "RFC 8463 Appendix A signed in workerd gives the RFC's signatures" : `skipped: ${reason}`,
    () =>
      Effect.gen(function*() {
        assert.isUndefined(reason, `SMTP_WORKERD_REQUIRED=1 but ${reason}`)
        const result = yield* answer
        if (!result.ok) return assert.fail(result.error)
        assert.deepStrictEqual(result.signatures.map(b), [
          "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
          "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8="
        ])
        assert.isTrue(result.signatures.every((s) => s.includes("bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=")))
        assert.strictEqual(result.records[0], "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
      }),
    30_000
  )
})
