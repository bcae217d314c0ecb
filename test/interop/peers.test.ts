import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { DovecotPeer, PostfixPeer } from "./peers.js"
import {
  aiosmtpdPeer,
  dovecotPeer,
  listFiles,
  maildirNew,
  postfixPeer,
  skipReason,
  stripPostfixTrace,
  waitForFileContaining,
  waitForNewFile
} from "./peers.js"

const CLIENT = "From: alice@example.test\nTo: bob@example.test\nSubject: hi\n\nHello\nReceived: in the body\n"

describe("interop helpers", () => {
  it("stripPostfixTrace removes the headers Postfix prepends (README example, folded Received)", () => {
    const delivered = "Return-Path: <alice@example.test>\n" +
      "X-Original-To: bob@example.test\n" +
      "Delivered-To: bob@example.test\n" +
      "Received: from vm (unknown [127.0.0.1])\n" +
      "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) ...)\n" +
      "\t(Authenticated sender: testuser@example.test)\n" +
      "\tby mx.example.test (Postfix) with ESMTPSA id 2576A21451B\n" +
      "\tfor <bob@example.test>; Sun, 29 Nov 2026 07:38:56 +0000 (UTC)\n" +
      CLIENT
    assert.strictEqual(stripPostfixTrace(delivered), CLIENT)
  })

  it("stripPostfixTrace removes the headers Dovecot LMTP prepends and keeps the client's own Received", () => {
    const own = "Received: from client.example.test\n\tby relay.example.test; Sun, 29 Nov 2026 07:00:00 +0000\n"
    const delivered = "Return-Path: <alice@example.test>\n" +
      "Delivered-To: bob@example.test\n" +
      "Received: from [127.0.0.1]\n" +
      "\tby lmtp.example.test with LMTP\n" +
      "\tid gHb1IirgC2vlGwAAg+zDdQ\n" +
      "\t(envelope-from <alice@example.test>)\n" +
      "\tfor <bob@example.test>; Sun, 29 Nov 2026 08:19:54 +0000\n" +
      own + CLIENT
    assert.strictEqual(stripPostfixTrace(delivered), own + CLIENT)
    assert.strictEqual(stripPostfixTrace(CLIENT), CLIENT)
  })

  it("listFiles / waitForNewFile / waitForFileContaining on a folder that does not exist yet", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-smtp-peers-test-"))
    try {
      const dir = path.join(root, "Maildir", "new")
      const before = listFiles(dir)
      assert.strictEqual(before.size, 0)
      const timedOut = await waitForNewFile(dir, before, 50).then(() => "resolved", (e: Error) => e.message)
      assert.match(timedOut, /^no new file in .* after 50 ms/)
      const found = waitForNewFile(dir, before, 5_000)
      const containing = waitForFileContaining(dir, "needle-42", 5_000)
      setTimeout(() => {
        fs.mkdirSync(dir, { recursive: true })
        fs.writeFileSync(path.join(dir, ".hidden.tmp"), "needle-42")
        fs.writeFileSync(path.join(dir, "1.eml"), "has needle-42 inside")
      }, 30)
      assert.strictEqual(await found, path.join(dir, "1.eml"))
      assert.strictEqual(await containing, path.join(dir, "1.eml"))
      assert.deepStrictEqual([...listFiles(dir)].sort(), [".hidden.tmp", "1.eml"])
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  })

  it("maildirNew follows the layout of scripts/peers", () => {
    const pf = {
      maildirBase: "/s/postfix/mail",
      domain: "example.test",
      catchallDomain: "catchall.test",
      catchallMaildir: "/s/postfix/mail/catchall.test"
    } as PostfixPeer
    assert.strictEqual(maildirNew(pf, "Bob@Example.test"), "/s/postfix/mail/example.test/bob/new")
    assert.strictEqual(maildirNew(pf, "<anyone@catchall.test>"), "/s/postfix/mail/catchall.test/new")
    const dc = { domain: "example.test", maildir: "/s/dovecot/mail/example.test/{user}/Maildir" } as DovecotPeer
    assert.strictEqual(maildirNew(dc, "alice@example.test"), "/s/dovecot/mail/example.test/alice/Maildir/new")
    assert.throws(() => maildirNew(dc, "alice@elsewhere.test"))
  })
})

/** Reads the first reply line, then says QUIT: proves the peer behind peer.json is up. */
const greeting = (target: { readonly host: string; readonly port: number } | { readonly path: string }) =>
  new Promise<string>((resolve, reject) => {
    const socket = "path" in target ? net.connect(target.path) : net.connect(target.port, target.host)
    socket.setTimeout(5_000, () => socket.destroy(new Error("timeout waiting for the greeting")))
    socket.once("error", reject)
    let buf = ""
    socket.on("data", (chunk) => {
      buf += chunk.toString("latin1")
      const nl = buf.indexOf("\r\n")
      if (nl !== -1) {
        socket.end("QUIT\r\n")
        resolve(buf.slice(0, nl))
      }
    })
  })

// Not skipped with SMTP_INTEROP_REQUIRED=1: the peer readers then throw inside the test, which fails.
describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "postfix peer", () => {
  it("is up and its CA exists", async () => {
    const peer = postfixPeer()!
    assert.isTrue(fs.existsSync(peer.ca))
    assert.match(await greeting({ host: peer.host, port: peer.ports.plain }), /^220 .*ESMTP Postfix/)
  })
})

describe.skipIf(skipReason("dovecot") !== undefined)(skipReason("dovecot") ?? "dovecot LMTP peer", () => {
  it("is up on TCP and on its Unix socket", async () => {
    const peer = dovecotPeer()!
    assert.match(await greeting({ host: peer.host, port: peer.lmtpPort }), /^220 .*Dovecot/)
    assert.match(await greeting({ path: peer.lmtpSocket }), /^220 .*Dovecot/)
  })
})

describe.skipIf(skipReason("aiosmtpd") !== undefined)(skipReason("aiosmtpd") ?? "aiosmtpd peer", () => {
  it("is up on SMTP and LMTP", async () => {
    const peer = aiosmtpdPeer()!
    assert.match(await greeting({ host: peer.host, port: peer.ports.smtp }), /^220 /)
    assert.match(await greeting({ host: peer.host, port: peer.ports.lmtp }), /^220 /)
  })
})
