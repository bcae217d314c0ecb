/**
 * `effect-smtp probe`, the built command as a subprocess, against TestSmtpServer (STARTTLS and
 * implicit TLS under its generated CA, AUTH): the --json fields (greeting, extensions, SIZE, AUTH,
 * TLS protocol and cipher, the chain with days left, trust and host name, the login test), the
 * text report, and the exit code of each failure kind: unreachable 3, TLS 4 (untrusted CA, wrong
 * host name), login refused 5.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestSmtpServer } from "effect-smtp/testing/node"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { closedPort, run, tempDir } from "./support.js"

const serverWithCa = (options: TestSmtpServer.Options) =>
  Effect.gen(function*() {
    const server = yield* TestSmtpServer.make(options)
    const dir = yield* tempDir
    const ca = Path.join(dir, "ca.pem")
    Fs.writeFileSync(ca, server.ca!)
    return { server, ca }
  })

describe("effect-smtp probe", () => {
  it.scopedLive("--json: greeting, extensions, SIZE, AUTH, STARTTLS details, the chain, a login", () =>
    Effect.gen(function*() {
      const { ca, server } = yield* serverWithCa({ tls: true, users: { app: "pw-1" }, size: 1000000 })
      const result = yield* run(
        ["probe", "localhost", "-p", String(server.port), "--ca", ca, "-u", "app", "--json"],
        { env: { SMTP_PASSWORD: "pw-1" } }
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const report = JSON.parse(result.stdout)
      assert.deepStrictEqual(report.greeting, { code: 220, text: "mx.test ESMTP effect-smtp test server" })
      assert.strictEqual(report.sizeLimit, 1000000)
      assert.deepStrictEqual(report.authMechanisms, ["PLAIN", "LOGIN"])
      assert.property(report.extensions, "pipelining")
      assert.strictEqual(report.tls.mode, "starttls")
      assert.match(report.tls.protocol, /^TLSv1\.[23]$/)
      assert.isString(report.tls.cipher)
      assert.isTrue(report.tls.verified)
      assert.isTrue(report.tls.hostnameMatches)
      assert.strictEqual(report.tls.chain.length, 2)
      assert.strictEqual(report.tls.chain[0].subject, "CN=localhost")
      assert.include(report.tls.chain[0].subjectAltNames, "DNS:localhost")
      assert.strictEqual(report.tls.chain[1].subject, report.tls.chain[0].issuer)
      assert.isAbove(report.tls.chain[0].daysLeft, 0)
      assert.deepInclude(report.login, { user: "app", ok: true })
      assert.isNull(report.error)
    }))

  it.scopedLive("text report over implicit TLS", () =>
    Effect.gen(function*() {
      const { ca, server } = yield* serverWithCa({ tls: { implicit: true } })
      const result = yield* run(["probe", `127.0.0.1:${server.port}`, "--security", "tls", "--ca", ca])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /^greeting:\s+220 mx\.test/m)
      assert.match(result.stdout, /^tls:\s+TLSv1\.\d \S+ \(implicit TLS\)$/m)
      assert.match(result.stdout, /^certificate: verified for 127\.0\.0\.1$/m)
      assert.match(result.stdout, /^\s+valid:\s+\d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d \(\d+ days left\)$/m)
      assert.match(result.stdout, /^size limit:\s+26214400 bytes/m)
      assert.match(result.stdout, /^auth:\s+PLAIN LOGIN$/m)
    }))

  it.scopedLive("exit codes: unreachable 3, untrusted 4, wrong host name 4, login refused 5", () =>
    Effect.gen(function*() {
      const { ca, server } = yield* serverWithCa({ tls: true, users: { app: "right" } })
      const port = String(server.port)
      const closed = String(yield* closedPort())
      const [unreachable, untrusted, wrongName, login] = yield* Effect.all([
        run(["probe", "127.0.0.1", "-p", closed, "--json"]),
        run(["probe", "127.0.0.1", "-p", port, "--json", "-u", "app"], { env: { SMTP_PASSWORD: "right" } }),
        run(["probe", "127.0.0.1", "-p", port, "--ca", ca, "--servername", "mail.example.org", "--json"]),
        run(["probe", "127.0.0.1", "-p", port, "--ca", ca, "-u", "app", "--json"], { env: { SMTP_PASSWORD: "wrong" } })
      ], { concurrency: "unbounded" })
      assert.strictEqual(unreachable.code, 3, unreachable.stderr)
      assert.strictEqual(JSON.parse(unreachable.stdout).error.kind, "unreachable")

      assert.strictEqual(untrusted.code, 4, untrusted.stderr)
      const u = JSON.parse(untrusted.stdout)
      assert.strictEqual(u.error.kind, "tls")
      assert.isFalse(u.tls.trusted)
      assert.isString(u.tls.trustError)
      assert.strictEqual(u.tls.chain[0].subject, "CN=localhost") // reported all the same
      assert.isNull(u.login) // no login over an unverified connection

      assert.strictEqual(wrongName.code, 4, wrongName.stderr)
      const w = JSON.parse(wrongName.stdout)
      assert.isTrue(w.tls.trusted)
      assert.isFalse(w.tls.hostnameMatches)
      assert.strictEqual(w.tls.servername, "mail.example.org")

      assert.strictEqual(login.code, 5, login.stderr)
      const l = JSON.parse(login.stdout)
      assert.strictEqual(l.error.kind, "auth")
      assert.deepInclude(l.login, { user: "app", ok: false })
      assert.deepStrictEqual(l.authMechanisms, ["PLAIN", "LOGIN"])
    }))

  it.scopedLive("--help documents the exit codes", () =>
    Effect.gen(function*() {
      const result = yield* run(["probe", "--help"])
      assert.strictEqual(result.code, 0)
      assert.match(result.stdout.replace(/\s+/g, " "), /3 unreachable; 4 TLS failure.*5 login refused/)
    }))
})
