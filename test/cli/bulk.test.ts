/**
 * `effect-smtp bulk`, the built command as a subprocess, against TestSmtpServer: CSV and JSONL
 * recipients with per-recipient fields (HTML-escaped in the HTML body), a refused recipient in the
 * results file, progress lines when stderr is not a terminal, bad input, and an interruption:
 * SIGINT mid-run flushes the results and prints the resume command, which then sends only the
 * rest (every recipient exactly once at the server).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { collect, isOneLineError, run, spawn, tempDir } from "./support.js"

const readResults = (file: string) =>
  Fs.readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))

describe("effect-smtp bulk", () => {
  it.scopedLive("CSV: fields filled per recipient, a refusal recorded, exit 1", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ refuse: { "c@example.net": "550 5.1.1 No such user" } })
      const dir = yield* tempDir
      const csv = Path.join(dir, "list.csv")
      Fs.writeFileSync(
        csv,
        "email,name,code\r\na@example.net,Ann,A-1\r\nb@example.net,\"Bob, Jr.\",<b>\r\nc@example.net,Cy,C-3\r\n"
      )
      const result = yield* run([
        "bulk",
        "-s",
        `127.0.0.1:${server.port}`,
        "-r",
        csv,
        "-f",
        "Shop <shop@example.com>",
        "--subject",
        "Hello {{name}}",
        "--text",
        "Your code: {{code}}",
        "--html",
        "<p>Your code: {{code}}</p>",
        "--retries",
        "0"
      ])
      assert.strictEqual(result.code, 1, result.stderr)
      assert.match(
        result.stdout,
        /sent 2, failed 1 \(0 transient, 1 permanent, 0 unknown.*\) of 3 .*results in .*list\.csv\.results\.jsonl/
      )
      assert.match(result.stderr, /^progress: 3\/3 sent 2 failed 1 \(.* msg\/s, ETA \w+\)$/m)
      const results = readResults(`${csv}.results.jsonl`)
      assert.strictEqual(results.length, 3)
      const byTo = Object.fromEntries(results.map((r) => [r.to, r]))
      assert.strictEqual(byTo["a@example.net"].status, "sent")
      assert.deepInclude(byTo["c@example.net"], { status: "failed", disposition: "permanent", index: 2 })
      assert.match(byTo["c@example.net"].error, /550/)
      const messages = yield* server.messages
      const bob = messages.find((m) => m.envelope.to[0] === "b@example.net")!
      assert.strictEqual(bob.subject, "Hello Bob, Jr.")
      assert.deepStrictEqual(bob.to, [{ name: "Bob, Jr.", address: "b@example.net" }])
      assert.strictEqual(bob.text, "Your code: <b>")
      assert.strictEqual(bob.html, "<p>Your code: &lt;b&gt;</p>")
    }))

  it.scopedLive("JSONL with a results file of its own", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const jsonl = Path.join(dir, "list.jsonl")
      const out = Path.join(dir, "out.jsonl")
      Fs.writeFileSync(jsonl, "{\"to\":\"x@example.net\",\"n\":1}\n\n{\"to\":\"y@example.net\",\"n\":2}\n")
      const result = yield* run([
        "bulk",
        "-s",
        `127.0.0.1:${server.port}`,
        "-r",
        jsonl,
        "--results",
        out,
        "-f",
        "shop@example.com",
        "--subject",
        "Order {{n}}",
        "--text",
        "."
      ])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(readResults(out).map((r) => [r.index, r.to, r.status]).sort(), [
        [0, "x@example.net", "sent"],
        [1, "y@example.net", "sent"]
      ])
      const subjects = (yield* server.messages).map((m) => m.subject).sort()
      assert.deepStrictEqual(subjects, ["Order 1", "Order 2"])
    }))

  it.scopedLive("SIGINT mid-run: results flushed, the resume command sends only the rest", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const csv = Path.join(dir, "many.csv")
      const total = 40
      Fs.writeFileSync(csv, ["email", ...Array.from({ length: total }, (_, i) => `r${i}@example.net`)].join("\n"))
      const results = `${csv}.results.jsonl`
      const args = [
        "bulk",
        "-s",
        `127.0.0.1:${server.port}`,
        "-r",
        csv,
        "-f",
        "shop@example.com",
        "--subject",
        "hi",
        "--text",
        "x",
        "--rate",
        "10/s",
        "--connections",
        "2"
      ]
      const child = yield* Effect.promise(() => spawn(args, { cwd: dir }))
      const done = collect(child)
      // wait for a few results, then Ctrl-C
      yield* Effect.promise(async () => {
        for (let i = 0; i < 200; i++) {
          if (Fs.existsSync(results) && readResults(results).length >= 12) return
          await new Promise((r) => setTimeout(r, 50))
        }
      })
      child.kill("SIGINT")
      const first = yield* Effect.promise(() => done)
      assert.strictEqual(first.code, 130, first.stderr)
      const recorded = readResults(results)
      const received = (yield* server.received).length
      assert.isBelow(recorded.length, total)
      // every message the server took is in the results: nothing was lost by the interruption
      assert.strictEqual(recorded.length, received)
      assert.match(first.stderr, /^interrupted: sent \d+, failed 0 of 40/m)
      const resume = /^resume with: effect-smtp (.*)$/m.exec(first.stderr)
      assert.isNotNull(resume, first.stderr)
      assert.match(resume![1]!, /--resume$/)
      // the message's content is not printed back: the subject and the text are shown as …
      assert.match(resume![1]!, /--subject … --text … /)
      assert.match(first.stderr, /give them again/)

      const second = yield* run([...args, "--resume"], { cwd: dir })
      assert.strictEqual(second.code, 0, second.stderr)
      assert.match(
        second.stdout,
        new RegExp(`of ${total - recorded.length} \\(${recorded.length} skipped: done before\\)`)
      )
      const all = (yield* server.received).flatMap((m) => m.envelope.to)
      assert.strictEqual(all.length, total)
      assert.strictEqual(new Set(all).size, total) // no recipient twice
      assert.strictEqual(readResults(results).length, total)
    }))

  it.scopedLive("SIGINT with no rate limit: the messages in flight finish and are recorded, none sent twice", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const csv = Path.join(dir, "fast.csv")
      const total = 3000
      Fs.writeFileSync(csv, ["email", ...Array.from({ length: total }, (_, i) => `r${i}@example.net`)].join("\n"))
      const results = `${csv}.results.jsonl`
      const args = ["bulk", "-s", `127.0.0.1:${server.port}`, "-r", csv, "-f", "shop@example.com", "--text", "x"]
      const child = yield* Effect.promise(() => spawn(args, { cwd: dir }))
      const done = collect(child)
      yield* Effect.promise(async () => {
        for (let i = 0; i < 1000; i++) {
          if (Fs.existsSync(results) && readResults(results).length >= 100) return
          await new Promise((r) => setTimeout(r, 10))
        }
      })
      child.kill("SIGINT")
      const first = yield* Effect.promise(() => done)
      assert.strictEqual(first.code, 130, first.stderr)
      const recorded = readResults(results)
      assert.isBelow(recorded.length, total)
      // before: the sending fiber was a child of the interrupted one and was cut off with it, so
      // messages the server had taken had no line, and --resume sent them again
      assert.strictEqual(recorded.length, (yield* server.received).length)
      assert.isTrue(recorded.every((r) => r.status === "sent"))

      const second = yield* run([...args, "--resume"], { cwd: dir })
      assert.strictEqual(second.code, 0, second.stderr)
      const all = (yield* server.received).flatMap((m) => m.envelope.to)
      assert.strictEqual(new Set(all).size, total)
      assert.strictEqual(all.length, total) // no recipient twice
    }))

  it.scopedLive("a results file cut by a crash: the cut recipient is not sent again, the next line is a line of its own", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const csv = Path.join(dir, "l.csv")
      Fs.writeFileSync(csv, "email\na@example.net\nb@example.net\nc@example.net\n")
      const results = `${csv}.results.jsonl`
      Fs.writeFileSync(
        results,
        "{\"index\":0,\"to\":\"a@example.net\",\"status\":\"sent\",\"at\":\"2026-12-01T00:00:00.000Z\"}\n" +
          "{\"index\":1,\"to\":\"b@exa"
      )
      const args = [
        "bulk",
        "-s",
        `127.0.0.1:${server.port}`,
        "-r",
        csv,
        "-f",
        "s@example.com",
        "--text",
        "x",
        "--resume"
      ]
      const first = yield* run(args)
      assert.strictEqual(first.code, 0, first.stderr)
      assert.match(first.stdout, /sent 1, failed 0 of 1 \(2 skipped: done before\)/)
      // the cut line stays as it was; the new result is the next line, which reads back whole
      const lines = Fs.readFileSync(results, "utf8").split("\n")
      assert.strictEqual(lines[1], "{\"index\":1,\"to\":\"b@exa")
      assert.deepInclude(JSON.parse(lines[2]!), { index: 2, to: "c@example.net", status: "sent" })
      const second = yield* run(args)
      assert.strictEqual(second.code, 0, second.stderr)
      assert.match(second.stdout, /nothing to send/)
      assert.deepStrictEqual((yield* server.received).flatMap((m) => m.envelope.to), ["c@example.net"])
    }))

  it.scopedLive("placeholders are the file's fields only; a JSONL null is an empty field", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const csv = Path.join(dir, "p.csv")
      Fs.writeFileSync(csv, "email\na@example.net\n")
      const base = ["bulk", "-s", `127.0.0.1:${server.port}`, "-f", "s@example.com", "--text", "x"]
      for (const name of ["constructor", "toString", "__proto__"]) {
        const result = yield* run([...base, "-r", csv, "--subject", `Hi {{${name}}}`])
        assert.strictEqual(result.code, 2, result.stderr)
        assert.match(result.stderr, new RegExp(`no field "${name}"`))
      }
      const jsonl = Path.join(dir, "n.jsonl")
      Fs.writeFileSync(jsonl, "{\"email\":\"z@example.net\",\"name\":null,\"plan\":null}\n")
      const sent = yield* run([...base, "-r", jsonl, "--subject", "plan [{{plan}}]"])
      assert.strictEqual(sent.code, 0, sent.stderr)
      const [message] = yield* server.messages
      assert.strictEqual(message!.subject, "plan []")
      assert.deepStrictEqual(message!.to, [{ name: "", address: "z@example.net" }])
    }))

  it.scopedLive("bad input: one line, exit 2, nothing sent", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const csv = Path.join(dir, "l.csv")
      Fs.writeFileSync(csv, "email,name\na@example.net,A\n")
      const exists = Path.join(dir, "exists.jsonl")
      Fs.writeFileSync(exists, "{\"index\":0,\"to\":\"a@example.net\",\"status\":\"sent\"}\n")
      const nulls = Path.join(dir, "nulls.jsonl")
      Fs.writeFileSync(nulls, "{\"index\":0,\"to\":\"a@example.net\",\"status\":\"sent\"}\nnull\n")
      const base = ["bulk", "-s", `127.0.0.1:${server.port}`, "-f", "s@example.com", "--text", "x"]
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
        [[...base, "-r", Path.join(dir, "missing.csv")], /missing\.csv/],
        [[...base, "-r", csv, "--subject", "{{nope}}"], /no field "nope"/],
        [[...base, "-r", csv, "--results", exists], /exists: add --resume/],
        [[...base, "-r", csv, "--rate", "fast"], /--rate fast/],
        [[...base, "-r", csv, "--rate", "10/0s"], /longer than zero/],
        [[...base, "-r", csv, "--results", dir], /--results .*: cannot read it: EISDIR/],
        [[...base, "-r", csv, "--results", nulls, "--resume"], /line 2 is not a line of a results file/],
        // a file that is not a results file (the recipients themselves) is not appended to
        [[...base, "-r", csv, "--results", csv, "--resume"], /line 1 is not a line of a results file/]
      ]
      yield* Effect.forEach(cases, ([args, pattern]) =>
        Effect.map(run(args), (result) => {
          assert.strictEqual(result.code, 2, `${args.join(" ")}: ${result.stderr}`)
          assert.isTrue(isOneLineError(result), result.stderr)
          assert.match(result.stderr, pattern)
        }), { concurrency: 5 })
      assert.strictEqual(server.connections(), 0)
    }))
})
