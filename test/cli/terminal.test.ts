/**
 * The command in a real terminal: the built command runs in a tmux session (a private tmux server
 * per test) and the pane is captured while it runs.
 *
 * - `bulk`: the progress bar with the count, the rate and the ETA, redrawn in place; at the end the
 *   bar is full and the summary follows.
 * - `send --user` without the password in the environment: the hidden prompt, the password typed
 *   (never echoed), the login.
 *
 * Without tmux the suite skips, saying why; with SMTP_TMUX_REQUIRED=1 it fails instead.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { builtMain, tempDir } from "./support.js"

const required = process.env.SMTP_TMUX_REQUIRED === "1"
const tmuxPath = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].find((p) => Fs.existsSync(p))
const skipReason = tmuxPath !== undefined || required ?
  undefined :
  "skipped: tmux is not installed (apt-get install -y tmux); set SMTP_TMUX_REQUIRED=1 to make this a failure"

const tmux = (socket: string, args: ReadonlyArray<string>): string => {
  if (tmuxPath === undefined) throw new Error("tmux is not installed")
  const result = ChildProcess.spawnSync(tmuxPath, ["-L", socket, ...args], { encoding: "utf8", timeout: 10_000 })
  if (result.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr}`)
  return result.stdout
}

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`

/** A private tmux server running `command` in a session `main`, killed with the Scope. */
const session = (command: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const socket = `effect-smtp-cli-${process.pid}-${Math.random().toString(36).slice(2)}`
      tmux(socket, ["new-session", "-d", "-s", "main", "-x", "150", "-y", "12", `${command}; echo EXIT=$?; sleep 60`])
      return socket
    }),
    (socket) => Effect.sync(() => tmux(socket, ["kill-server"]))
  )

/** Captures the pane every 50 ms until `until` holds (or 15 s pass); every capture, in order. */
const watch = (socket: string, until: (pane: string) => boolean) =>
  Effect.promise(async () => {
    const snapshots: Array<string> = []
    for (let i = 0; i < 300; i++) {
      const pane = tmux(socket, ["capture-pane", "-p", "-t", "main"])
      snapshots.push(pane)
      if (until(pane)) break
      await new Promise((r) => setTimeout(r, 50))
    }
    return snapshots
  })

describe.skipIf(skipReason !== undefined)(skipReason ?? "effect-smtp in a terminal", () => {
  it.scopedLive("a bar with the count, the rate and the ETA, redrawn in place", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const main = yield* Effect.promise(() => builtMain())
      const total = 60
      const csv = Path.join(dir, "list.csv")
      Fs.writeFileSync(csv, ["email", ...Array.from({ length: total }, (_, i) => `t${i}@example.net`)].join("\n"))
      const command = [
        process.execPath,
        main,
        "bulk",
        "-s",
        `127.0.0.1:${server.port}`,
        "-r",
        csv,
        "-f",
        "s@example.com",
        "--subject",
        "hi",
        "--text",
        "x",
        "--rate",
        "20/s"
      ].map(quote).join(" ")
      const socket = yield* session(command)
      const snapshots = yield* watch(socket, (pane) => pane.includes("EXIT="))
      const last = snapshots.at(-1)!
      assert.include(last, "EXIT=0", last)
      const bar = /\[(#*)(\.*)\] (\d+)\/60 (\d+)% ([\d.]+) msg\/s ETA (\d+)s \| sent (\d+) failed 0/
      const midway = snapshots.map((s) => bar.exec(s)).filter((m) =>
        m !== null && Number(m[3]) > 0 && Number(m[3]) < total
      )
      assert.isAbove(midway.length, 0, snapshots.join("\n----\n"))
      const m = midway[0]!
      assert.isAbove(Number(m[5]), 0) // a rate
      assert.isAbove(m[2]!.length, 0) // not full yet
      // redrawn in place: one bar line on the screen, however many updates
      assert.strictEqual(last.split("\n").filter((l) => bar.test(l)).length, 1, last)
      assert.match(last, /\[#+\] 60\/60 100% [\d.]+ msg\/s ETA 0s \| sent 60 failed 0/)
      assert.match(last, /sent 60, failed 0 of 60 in \d+s; results in /)
      assert.strictEqual((yield* server.received).length, total)
    }))

  it.scopedLive("send --user: a hidden password prompt", () =>
    Effect.gen(function*() {
      const password = "typed-Secret-4471"
      const server = yield* TestSmtpServer.make({ users: { app: password }, requireAuth: true })
      const main = yield* Effect.promise(() => builtMain())
      const command = [process.execPath, main, "send", "-s", `127.0.0.1:${server.port}`, "-u", "app"]
        .concat(["-f", "a@example.com", "-t", "b@example.net", "--subject", "typed", "--text", "x"])
        .map(quote).join(" ")
      // no SMTP_PASSWORD in the session's environment
      const socket = yield* session(`env -u SMTP_PASSWORD ${command}`)
      yield* watch(socket, (pane) => pane.includes("Password for app"))
      tmux(socket, ["send-keys", "-t", "main", "-l", password])
      tmux(socket, ["send-keys", "-t", "main", "Enter"])
      const last = (yield* watch(socket, (pane) => pane.includes("EXIT="))).at(-1)!
      assert.include(last, "EXIT=0", last)
      assert.notInclude(last, password)
      assert.match(last, /accepted:\s+b@example\.net/)
      const [received] = yield* server.received
      assert.strictEqual(received!.user, "app")
    }))
})
