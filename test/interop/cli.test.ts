/**
 * The `effect-smtp` command (built, as a subprocess: test/cli/support.ts) against the real peers: `send` over
 * STARTTLS with AUTH to aiosmtpd (the stored bytes and the AUTH it recorded; the transcript without the
 * password) and over implicit TLS with an OAuth 2.0 token from the environment, `probe` of aiosmtpd and of Postfix's submission port (STARTTLS, its SIZE and mechanisms, a login, a
 * refused login), and `bulk` through Postfix with a recipient it refuses (delivered into the Maildirs, the
 * refusal in the results file).
 *
 * Skips without SMTP_PEERS_DIR, as the other interop suites (see peers.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { isOneLineError, run, tempDir } from "../cli/support.js"
import {
  aiosmtpdMailDir,
  type AiosmtpdPeer,
  aiosmtpdPeer,
  listFiles,
  postfixMaildirNew,
  type PostfixPeer,
  postfixPeer,
  skipReason,
  waitForAiosmtpdMessageContaining,
  waitForFileContaining
} from "./peers.js"
import { fromPromise, required, uniqueId } from "./support.js"

const aiosmtpd = (): AiosmtpdPeer => required(aiosmtpdPeer(), "aiosmtpd")
const postfix = (): PostfixPeer => required(postfixPeer(), "postfix")

describe.skipIf(skipReason("aiosmtpd") !== undefined)(skipReason("aiosmtpd") ?? "effect-smtp command: aiosmtpd", () => {
  it.live("send: STARTTLS, AUTH, the message stored as composed; the transcript hides the password", () =>
    Effect.gen(function*() {
      const peer = aiosmtpd()
      const token = uniqueId("cli-send")
      const before = listFiles(aiosmtpdMailDir(peer))
      const result = yield* run([
        "send",
        "-s",
        peer.host,
        "-p",
        String(peer.ports.smtp),
        "--security",
        "starttls",
        "--ca",
        peer.ca,
        "-u",
        peer.user,
        "-f",
        "sender@example.test",
        "-t",
        "rcpt@example.test",
        "--subject",
        token,
        "--text",
        "from the command",
        "--transcript"
      ], { env: { SMTP_PASSWORD: peer.password } })
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /^accepted:\s+rcpt@example\.test$/m)
      assert.match(result.stderr, /C: AUTH \S+ <redacted>/)
      assert.notInclude(result.stderr, peer.password)
      const stored = yield* fromPromise(() => waitForAiosmtpdMessageContaining(peer, before, token))
      assert.strictEqual(stored.meta.auth?.login, peer.user)
      assert.isNotNull(stored.meta.tls)
      assert.include(stored.bytes.toString("utf8"), "from the command")
    }))

  it.live("send with an OAuth 2.0 token from the environment (XOAUTH2); a rejected token is exit 5", () =>
    Effect.gen(function*() {
      const peer = aiosmtpd()
      const token = uniqueId("cli-oauth")
      const before = listFiles(aiosmtpdMailDir(peer))
      const args = ["send", "-s", `${peer.host}:${peer.ports.smtps}`, "--security", "tls", "--ca", peer.ca]
        .concat([
          "-u",
          peer.user,
          "--oauth2-token-env",
          "MY_TOKEN",
          "-f",
          "sender@example.test",
          "-t",
          "rcpt@example.test"
        ])
        .concat(["--subject", token, "--text", "x"])
      const [ok, rejected] = yield* Effect.all([
        run(args, { env: { MY_TOKEN: peer.oauthToken } }),
        run(args, { env: { MY_TOKEN: "not-the-token" } })
      ], { concurrency: 2 })
      assert.strictEqual(ok.code, 0, ok.stderr)
      const stored = yield* fromPromise(() => waitForAiosmtpdMessageContaining(peer, before, token))
      assert.deepStrictEqual(stored.meta.auth, { login: peer.user, mechanism: "XOAUTH2" })
      assert.strictEqual(rejected.code, 5, rejected.stderr)
      assert.isTrue(isOneLineError(rejected), rejected.stderr)
      assert.notInclude(rejected.stderr, "not-the-token")
    }))

  it.live("probe --json: STARTTLS verified with the peer's CA, AUTH mechanisms, a login", () =>
    Effect.gen(function*() {
      const peer = aiosmtpd()
      const result = yield* run(
        ["probe", peer.host, "-p", String(peer.ports.smtp), "--ca", peer.ca, "-u", peer.user, "--json"],
        { env: { SMTP_PASSWORD: peer.password } }
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const report = JSON.parse(result.stdout)
      assert.strictEqual(report.greeting.code, 220)
      assert.isTrue(report.tls.verified)
      assert.isAbove(report.tls.chain.length, 0)
      assert.isAbove(report.authMechanisms.length, 0)
      assert.isTrue(report.login.ok)
    }))
})

describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "effect-smtp command: postfix", () => {
  it.live("probe the submission port: SIZE, mechanisms, a login; a wrong password is exit 5", () =>
    Effect.gen(function*() {
      const peer = postfix()
      const args = ["probe", peer.host, "-p", String(peer.ports.submission), "--ca", peer.ca, "-u", peer.user]
      const [ok, wrong] = yield* Effect.all([
        run([...args, "--json"], { env: { SMTP_PASSWORD: peer.password } }),
        run(args, { env: { SMTP_PASSWORD: "not-the-password" } })
      ], { concurrency: 2 })
      assert.strictEqual(ok.code, 0, ok.stderr)
      const report = JSON.parse(ok.stdout)
      assert.strictEqual(report.sizeLimit, peer.size)
      assert.includeMembers(report.authMechanisms, peer.mechanisms.split(" "))
      assert.strictEqual(report.tls.mode, "starttls")
      assert.isTrue(report.tls.verified)
      assert.isTrue(report.login.ok)
      assert.strictEqual(wrong.code, 5, wrong.stderr)
      assert.isTrue(isOneLineError(wrong), wrong.stderr)
      assert.match(wrong.stdout, /^login:\s+FAILED/m)
    }))

  it.scopedLive("bulk: delivered into the Maildirs, nobody@ refused and recorded", () =>
    Effect.gen(function*() {
      const peer = postfix()
      const dir = yield* tempDir
      const token = uniqueId("cli-bulk")
      const csv = path.join(dir, "list.csv")
      fs.writeFileSync(
        csv,
        `email,name\nalice@${peer.domain},Alice\nnobody@${peer.domain},Nobody\nbob@${peer.domain},Bob\n`
      )
      const result = yield* run([
        "bulk",
        "-s",
        peer.host,
        "-p",
        String(peer.ports.starttls),
        "--security",
        "starttls",
        "--ca",
        peer.ca,
        "-r",
        csv,
        "-f",
        `postmaster@${peer.domain}`,
        "--subject",
        `${token} for {{name}}`,
        "--text",
        "Hello {{name}}",
        "--retries",
        "0"
      ])
      assert.strictEqual(result.code, 1, result.stderr)
      assert.match(result.stdout, /sent 2, failed 1 \(0 transient, 1 permanent/)
      const results = fs.readFileSync(`${csv}.results.jsonl`, "utf8").trim().split("\n").map((l) => JSON.parse(l))
      const nobody = results.find((r) => r.to.startsWith("nobody@"))
      assert.deepInclude(nobody, { status: "failed", disposition: "permanent" })
      assert.match(nobody.error, /550/)
      const alice = yield* fromPromise(() =>
        waitForFileContaining(postfixMaildirNew(peer, `alice@${peer.domain}`), `${token} for Alice`)
      )
      assert.include(fs.readFileSync(alice, "utf8"), "Hello Alice")
      yield* fromPromise(() => waitForFileContaining(postfixMaildirNew(peer, `bob@${peer.domain}`), `${token} for Bob`))
    }))
})
