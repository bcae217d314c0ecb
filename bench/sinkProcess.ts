/**
 * The project's sink (`bench/sink.ts`) in a child process of its own, for the scripts that measure
 * the client's process alone.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export interface SinkProcess {
  readonly port: number
  readonly stop: () => void
}

/** Starts the sink (with CHUNKING when asked) and resolves once it listens. */
export const startSinkProcess = (options: { readonly chunking?: boolean } = {}): Promise<SinkProcess> =>
  new Promise((resolve, reject) => {
    // compiled (bench/dist, see bench/tsconfig.json), the compiled sink; else through tsx
    const compiled = import.meta.url.endsWith(".js")
    const child = spawn(
      process.execPath,
      [
        ...(compiled ? [] : ["--import", "tsx"]),
        fileURLToPath(new URL(compiled ? "./sink.js" : "./sink.ts", import.meta.url)),
        ...(options.chunking === true ? ["--chunking"] : [])
      ],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    child.on("error", reject)
    child.stdout.on("data", (d: Buffer) => {
      const m = /LISTENING (\d+)/.exec(d.toString())
      if (m !== null) resolve({ port: Number(m[1]), stop: () => child.kill("SIGTERM") })
    })
  })
