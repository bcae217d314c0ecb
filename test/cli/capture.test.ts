/**
 * `effect-smtp capture`, the built command as a subprocess: started on a free port, sent to with
 * the library (STARTTLS trusting the CA it wrote, AUTH as the user it requires), then stopped with
 * Ctrl-C (SIGINT, exit 0) or by --count: the printed envelope and headers (text and --json), and
 * the saved .eml files byte for byte.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Message, SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import type * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { collect, spawn, tempDir } from "./support.js"

/** Starts `capture` and waits for its "listening on host:port" line. */
const start = (args: ReadonlyArray<string>, env?: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const child = await spawn(["capture", "--port", "0", ...args], { env })
      const done = collect(child, { timeout: 20_000 })
      const port = await new Promise<number>((resolve, reject) => {
        let err = ""
        child.stderr!.on("data", (chunk: Buffer) => {
          err += chunk.toString("utf8")
          const match = /listening on [\d.]+:(\d+)/.exec(err)
          if (match !== null) resolve(Number(match[1]))
        })
        child.on("exit", () => reject(new Error(`capture exited: ${err}`)))
      })
      return { child, done, port }
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const sendTo = (port: number, ca: string | undefined, subject: string, to: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const smtp = yield* SmtpClient.connect({
      host: "127.0.0.1",
      port,
      ...(ca === undefined ?
        { security: "none" as const } :
        { security: "starttls" as const, tls: { ca }, auth: { user: "dev", password: Redacted.make("devpw") } })
    })
    const message = yield* Message.make({ from: "app@example.com", to, subject, text: `body of ${subject}` })
    const result = yield* smtp.send(message)
    return { result, bytes: yield* Message.toBytes(message) }
  }).pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))

const stop = (child: ChildProcess.ChildProcess) => Effect.sync(() => child.kill("SIGINT"))

describe("effect-smtp capture", () => {
  it.scopedLive("STARTTLS + AUTH, --json, .eml files; Ctrl-C ends it with exit 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const ca = Path.join(dir, "ca.pem")
      const out = Path.join(dir, "mail")
      const { child, done, port } = yield* start(
        ["--tls", "starttls", "--ca-out", ca, "-u", "dev", "--dir", out, "--json"],
        { SMTP_PASSWORD: "devpw" }
      )
      const first = yield* sendTo(port, Fs.readFileSync(ca, "utf8"), "one", ["x@example.net", "y@example.net"])
      const second = yield* sendTo(port, Fs.readFileSync(ca, "utf8"), "two", ["z@example.net"])
      // a client that does not log in is refused
      const anonymous = yield* Effect.either(sendTo(port, undefined, "three", ["z@example.net"]))
      assert.isTrue(anonymous._tag === "Left")
      yield* Effect.sleep("200 millis")
      yield* stop(child)
      const result = yield* Effect.promise(() => done)
      assert.strictEqual(result.code, 0, result.stderr)
      const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l))
      assert.strictEqual(lines.length, 2)
      assert.deepStrictEqual(lines[0].envelope, { from: "app@example.com", to: ["x@example.net", "y@example.net"] })
      assert.strictEqual(lines[0].user, "dev")
      assert.isTrue(lines[0].secure)
      assert.strictEqual(lines[0].queueId, first.result.queueId)
      assert.deepInclude(lines[1].headers, { name: "Subject", value: "two" })
      const files = Fs.readdirSync(out).sort()
      assert.strictEqual(files.length, 2)
      // as sent: the composed message and the CRLF SMTP ends it with
      const wire = (bytes: Uint8Array) => Buffer.concat([bytes, Buffer.from("\r\n")]).toString("latin1")
      assert.strictEqual(Fs.readFileSync(lines[0].file, "latin1"), wire(first.bytes))
      assert.strictEqual(Fs.readFileSync(lines[1].file, "latin1"), wire(second.bytes))
    }))

  it.scopedLive("text output: envelope, session and headers; --count stops it", () =>
    Effect.gen(function*() {
      const { done, port } = yield* start(["--count", "1"])
      yield* sendTo(port, undefined, "Grüße aus dem Test", ["r@example.net"])
      const result = yield* Effect.promise(() => done)
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /^--- message 1 /m)
      assert.match(result.stdout, /^MAIL FROM: <app@example\.com>/m)
      assert.match(result.stdout, /^RCPT TO:\s+<r@example\.net>$/m)
      assert.match(result.stdout, /^session:\s+EHLO .*queued as TEST\w+$/m)
      assert.match(result.stdout, /^Subject: Grüße aus dem Test$/m)
      assert.match(result.stdout, /^From: app@example\.com$/m)
    }))

  it.scopedLive("a port in use is one line and a non-zero exit", () =>
    Effect.gen(function*() {
      const { port } = yield* start([])
      const child = yield* Effect.promise(() => spawn(["capture", "--port", String(port)]))
      const result = yield* Effect.promise(() => collect(child))
      assert.strictEqual(result.code, 2)
      assert.match(result.stderr, /^effect-smtp: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*\n$/)
    }))

  it.scopedLive("bad input: a count below 1, a greeting name with a line break", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
        [["capture", "--port", "0", "-n", "-1"], /--count must be at least 1/],
        [["capture", "--port", "0", "--hostname", "a\r\nb"], /--hostname must be printable ASCII/]
      ]
      yield* Effect.forEach(cases, ([args, pattern]) =>
        Effect.flatMap(
          Effect.promise(() => spawn(args)),
          (child) =>
            Effect.map(Effect.promise(() => collect(child)), (result) => {
              assert.strictEqual(result.code, 2, result.stderr)
              assert.match(result.stderr, pattern)
            })
        ))
    }))
})
