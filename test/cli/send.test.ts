/**
 * `effect-smtp send`, the built command as a subprocess, against TestSmtpServer in this process
 * (STARTTLS under its generated CA, AUTH, per-recipient refusals): a composed message with an
 * attachment and extra headers, the transcript without the password, a raw .eml, --dry-run, and
 * bad input ending in one line and the exit code of its kind.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as Dkim from "effect-smtp/Dkim"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { RFC8463_ED25519_SEED } from "../dkim/rfc8463.js"
import { mailauth } from "../dkim/verifiers.js"
import { closedPort, isOneLineError, run, tempDir } from "./support.js"

const PASSWORD = "cli-Secret-pw-5512"
const b64 = (s: string) => Buffer.from(s, "latin1").toString("base64")

describe("effect-smtp send", () => {
  it.scopedLive("composes, logs in over STARTTLS, prints the result; the transcript hides the password", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({
        tls: true,
        users: { app: PASSWORD },
        requireAuth: true,
        refuse: { "gone@example.net": "550 5.1.1 No such user" }
      })
      const dir = yield* tempDir
      const ca = Path.join(dir, "ca.pem")
      Fs.writeFileSync(ca, server.ca!)
      const attachment = Path.join(dir, "report.csv")
      Fs.writeFileSync(attachment, "a,b\n1,2\n")
      const result = yield* run([
        "send",
        "--server",
        `127.0.0.1:${server.port}`,
        "--security",
        "starttls",
        "--ca",
        ca,
        "--user",
        "app",
        "--from",
        "Me <me@example.com>",
        "--to",
        "you@example.net",
        "--to",
        "gone@example.net",
        "--cc",
        "cc@example.net",
        "--bcc",
        "hidden@example.net",
        "--subject",
        "Grüße",
        "--text",
        "Hello there",
        "--attach",
        attachment,
        "--header",
        "X-Campaign: cli-test",
        "--transcript"
      ], { env: { SMTP_PASSWORD: PASSWORD } })
      assert.strictEqual(result.code, 1, result.stderr) // one recipient refused
      assert.match(result.stdout, /accepted:\s+you@example\.net, hidden@example\.net, cc@example\.net/)
      assert.match(result.stdout, /refused:\s+gone@example\.net \(550 5\.1\.1 No such user\)/)
      assert.match(result.stdout, /queue id:\s+TEST\w+/)
      assert.match(result.stdout, /reply:\s+250 /)
      assert.match(result.stderr, /C: STARTTLS/)
      assert.match(result.stderr, /C: AUTH \w+ <redacted>/)
      assert.notInclude(result.stderr + result.stdout, PASSWORD)
      assert.notInclude(result.stderr, b64(`\u0000app\u0000${PASSWORD}`))
      const [received] = yield* server.messages
      assert.strictEqual(received!.user, "app")
      assert.isTrue(received!.secure)
      assert.deepStrictEqual(received!.envelope.to, ["you@example.net", "hidden@example.net", "cc@example.net"])
      assert.strictEqual(received!.subject, "Grüße")
      assert.strictEqual(received!.text, "Hello there")
      assert.strictEqual(received!.header("x-campaign"), "cli-test")
      assert.isUndefined(received!.header("bcc"))
      assert.strictEqual(received!.attachments[0]!.filename, "report.csv")
      assert.strictEqual(new TextDecoder().decode(received!.attachments[0]!.content), "a,b\n1,2\n")
    }))

  it.scopedLive("sends a .eml file as is, with --json", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const eml = Path.join(dir, "m.eml")
      const raw =
        "From: a@example.com\r\nTo: b@example.net\r\nSubject: raw\r\nMessage-ID: <raw-1@example.com>\r\n\r\n" +
        ".leading dot\r\nbody\r\n"
      Fs.writeFileSync(eml, raw)
      const result = yield* run([
        "send",
        "-s",
        `127.0.0.1:${server.port}`,
        "--eml",
        eml,
        "--to",
        "override@example.net",
        "--json"
      ])
      assert.strictEqual(result.code, 0, result.stderr)
      const json = JSON.parse(result.stdout)
      assert.deepStrictEqual(json.accepted, ["override@example.net"])
      assert.strictEqual(json.messageId, "<raw-1@example.com>")
      assert.match(json.queueId, /^TEST/)
      const [received] = yield* server.received
      assert.strictEqual(new TextDecoder().decode(received!.raw), raw)
      assert.deepStrictEqual(received!.envelope, { from: "a@example.com", to: ["override@example.net"] })
    }))

  it.scopedLive("--dry-run prints the envelope and the message and connects to nothing", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const result = yield* run([
        "send",
        "-s",
        `127.0.0.1:${server.port}`,
        "--from",
        "a@example.com",
        "--to",
        "b@example.net",
        "--bcc",
        "c@example.net",
        "--subject",
        "dry",
        "--text",
        "nothing sent",
        "--dry-run"
      ])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stderr, /MAIL FROM: <a@example\.com>/)
      assert.match(result.stderr, /RCPT TO:\s+<b@example\.net> <c@example\.net>/)
      assert.match(result.stdout, /^Subject: dry\r$/m)
      assert.match(result.stdout, /nothing sent/)
      assert.notMatch(result.stdout, /^Bcc:/m)
      assert.strictEqual(server.connections(), 0)
    }))

  it.scopedLive("--dkim-*: the message is signed with the key file (verified by mailauth); a missing flag is exit 2", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make()
      const dir = yield* tempDir
      const keyFile = Path.join(dir, "ed.key")
      Fs.writeFileSync(keyFile, `${RFC8463_ED25519_SEED}\n`)
      const signer = yield* Dkim.signer({
        domain: "example.org",
        selector: "ed",
        privateKey: Redacted.make(RFC8463_ED25519_SEED)
      })
      const dkim = ["--dkim-domain", "example.org", "--dkim-selector", "ed", "--dkim-key-file", keyFile]
      const args = ["send", "-s", `127.0.0.1:${server.port}`, "--from", "a@example.org", "--to", "b@example.net"]
      const result = yield* run([...args, "--subject", "signed", "--text", "hello", ...dkim])
      assert.strictEqual(result.code, 0, result.stderr)
      const [received] = yield* server.awaitMessages(1)
      const verdicts = yield* mailauth(received.raw, { [signer.dnsName]: signer.dnsRecord })
      assert.deepStrictEqual(verdicts.map((v) => v.result), ["pass"])
      assert.notInclude(result.stdout + result.stderr, RFC8463_ED25519_SEED)
      const partial = yield* run([...args, "--subject", "x", "--text", "y", "--dkim-domain", "example.org"])
      assert.strictEqual(partial.code, 2)
      assert.isTrue(isOneLineError(partial), partial.stderr)
    }))

  it.scopedLive("a wrong password is exit 5 in one line", () =>
    Effect.gen(function*() {
      const server = yield* TestSmtpServer.make({ users: { app: PASSWORD } })
      const result = yield* run(
        [
          "send",
          "-s",
          `127.0.0.1:${server.port}`,
          "-u",
          "app",
          "-f",
          "a@example.com",
          "-t",
          "b@example.net",
          "--text",
          "x"
        ],
        { env: { SMTP_PASSWORD: "wrong" } }
      )
      assert.strictEqual(result.code, 5, result.stderr)
      assert.isTrue(isOneLineError(result), result.stderr)
    }))

  it.scopedLive("every recipient refused is exit 6; no reply after the data is exit 7 (may have been delivered)", () =>
    Effect.gen(function*() {
      const refusing = yield* TestSmtpServer.make({ refuse: () => "550 5.1.1 No such user" })
      const dropping = yield* TestSmtpServer.make({
        respond: (event) => (event.stage === "message" ? "disconnect" : undefined)
      })
      const args = (port: number) => ["send", "-s", `127.0.0.1:${port}`, "-f", "a@example.com", "-t", "b@example.net"]
      const [refused, unknown] = yield* Effect.all([
        run([...args(refusing.port), "--text", "x"]),
        run([...args(dropping.port), "--text", "x", "--timeout", "5"])
      ], { concurrency: 2 })
      assert.strictEqual(refused.code, 6, refused.stderr)
      assert.isTrue(isOneLineError(refused), refused.stderr)
      assert.match(refused.stderr, /550 5\.1\.1/)
      assert.strictEqual(unknown.code, 7, unknown.stderr)
      assert.isTrue(isOneLineError(unknown), unknown.stderr)
    }))

  it.scopedLive("bad input: one line on stderr, a non-zero exit, no stack trace", () =>
    Effect.gen(function*() {
      const port = yield* closedPort()
      const dir = yield* tempDir
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, number, RegExp]> = [
        [["send", "--bogus"], 2, /unknown argument/],
        [["send", "-f", "not an address", "-t", "b@example.net", "--dry-run"], 2, /address/],
        [
          ["send", "-f", "a@example.com", "-t", "b@example.net", "--attach", Path.join(dir, "nope.pdf")],
          2,
          /no such file/
        ],
        [["send", "-f", "a@example.com", "-t", "b@example.net"].concat(["-s", `127.0.0.1:${port}`]), 3, /connect/i],
        [
          ["send", "-f", "a@example.com", "-t", "b@example.net", "-u", "app", "-s", `127.0.0.1:${port}`],
          2,
          /SMTP_PASSWORD/
        ],
        [["nosuch"], 2, /subcommand/i]
      ]
      yield* Effect.forEach(cases, ([args, code, pattern]) =>
        Effect.map(run(args), (result) => {
          assert.strictEqual(result.code, code, `${args.join(" ")}: ${result.stderr}`)
          assert.isTrue(isOneLineError(result), `${args.join(" ")}: ${JSON.stringify(result.stderr)}`)
          assert.match(result.stderr, pattern)
        }), { concurrency: "unbounded" })
    }))

  it.scopedLive("a secret typed in place of a variable's name is not printed back", () =>
    Effect.gen(function*() {
      const port = yield* closedPort()
      const base = ["send", "-f", "a@example.com", "-t", "b@example.net", "-u", "app", "-s", `127.0.0.1:${port}`]
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
        [[...base, "--password-env", "hunter2!secret"], /--password-env names/],
        [[...base, "--oauth2-token-env", "ya29.secret-token"], /--oauth2-token-env names/]
      ]
      yield* Effect.forEach(cases, ([args, pattern]) =>
        Effect.map(run(args), (result) => {
          assert.strictEqual(result.code, 2, `${args.join(" ")}: ${result.stderr}`)
          assert.isTrue(isOneLineError(result), result.stderr)
          assert.match(result.stderr, pattern)
          assert.notInclude(result.stderr + result.stdout, "secret", "the value given is not repeated")
        }), { concurrency: "unbounded" })
    }))
})
