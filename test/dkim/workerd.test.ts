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
import { Effect } from "effect"
import * as Path from "node:path"
import * as Url from "node:url"
import { COMPATIBILITY_DATE, startWorkerd, workerdRequired, workerdUnavailableReason } from "../support/workerd.js"
import type { Answer } from "./worker.js"

const required = workerdRequired
const workerEntry = Path.join(Path.dirname(Url.fileURLToPath(import.meta.url)), "worker.ts")

const reason = workerdUnavailableReason()

const CONFIG = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ( name = "main",
      worker = (
        modules = [ (name = "worker.js", esModule = embed "worker.js") ],
        compatibilityDate = "${COMPATIBILITY_DATE}"
      )
    )
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ]
);
`

/** Bundles the Worker, starts workerd in a temporary directory, fetches its one answer. */
const answer = Effect.scoped(Effect.gen(function*() {
  const { log, port } = yield* startWorkerd({ entry: workerEntry, files: { "config.capnp": CONFIG } })
  return yield* Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(15_000) })
    const text = await response.text()
    if (response.status !== 200) throw new Error(`the Worker answered ${response.status}: ${text}\n${log()}`)
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
