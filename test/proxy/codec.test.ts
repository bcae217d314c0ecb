import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import * as Proxy from "../../src/internal/proxy.js"
import { splitAt } from "../support/bytes.js"

const encoder = new TextEncoder()
const bytes = (s: string): Uint8Array => encoder.encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")
const of = (...xs: Array<number>) => Uint8Array.of(...xs)

const right = <A>(e: Either.Either<A, Proxy.ProxyFailure>): A => {
  if (Either.isLeft(e)) throw new Error(`unexpected failure: ${e.left.detail}`)
  return e.right
}
const left = <A>(e: Either.Either<A, Proxy.ProxyFailure>): Proxy.ProxyFailure => {
  if (Either.isRight(e)) throw new Error("unexpected success")
  return e.left
}

/**
 * Pushes chunks until the handshake ends; returns the writes requested, the last step and the
 * bytes after the handshake (its `rest` and the chunks not pushed, which the socket would deliver).
 */
const run = (handshake: Proxy.Handshake, chunks: ReadonlyArray<Uint8Array>) => {
  const writes: Array<string> = []
  let last: Proxy.Step = { _tag: "Continue" }
  let after = ""
  for (const chunk of chunks) {
    if (last._tag === "Done") {
      after += text(chunk)
      continue
    }
    last = handshake.push(chunk)
    if (last._tag === "Continue" && last.write !== undefined) writes.push(hex(last.write))
    if (last._tag === "Done") after += text(last.rest)
    if (last._tag === "Failed") break
  }
  return { writes, last, after }
}

describe("SOCKS5 requests", () => {
  it("greets with no-auth only, or no-auth and username/password", () => {
    assert.strictEqual(hex(Proxy.socks5Greeting(false)), "050100")
    assert.strictEqual(hex(Proxy.socks5Greeting(true)), "05020002")
  })

  it("RFC 1929 username/password request", () => {
    assert.strictEqual(
      hex(right(Proxy.socks5Auth("user", "pass"))),
      "01" + "04" + hex(bytes("user")) + "04" + hex(bytes("pass"))
    )
    // UTF-8, lengths in bytes
    assert.strictEqual(hex(right(Proxy.socks5Auth("é", "ü"))), "0102c3a902c3bc")
    assert.strictEqual(left(Proxy.socks5Auth("", "x")).reason, "invalid")
    assert.strictEqual(left(Proxy.socks5Auth("u", "x".repeat(256))).reason, "invalid")
    assert.strictEqual(right(Proxy.socks5Auth("u".repeat(255), "p".repeat(255))).length, 3 + 510)
    // the failure never quotes the credentials
    assert.notInclude(left(Proxy.socks5Auth("u", "secret".repeat(50))).detail, "secret")
  })

  it("CONNECT with a domain name (the proxy resolves it)", () => {
    assert.strictEqual(
      hex(right(Proxy.socks5Connect("mx.example.com", 587))),
      "05010003" + "0e" + hex(bytes("mx.example.com")) + "024b"
    )
  })

  it("CONNECT with IPv4 and IPv6 literals", () => {
    assert.strictEqual(hex(right(Proxy.socks5Connect("127.0.0.1", 25))), "05010001" + "7f000001" + "0019")
    assert.strictEqual(
      hex(right(Proxy.socks5Connect("[::1]", 465))),
      "05010004" + "00000000000000000000000000000001" + "01d1"
    )
    assert.strictEqual(
      hex(right(Proxy.socks5Connect("2001:db8::192.0.2.1", 25))),
      "05010004" + "20010db80000000000000000c0000201" + "0019"
    )
    // not literals: sent as names
    assert.strictEqual(right(Proxy.socks5Connect("256.1.1.1", 25))[3], 3)
    assert.strictEqual(right(Proxy.socks5Connect("01.2.3.4", 25))[3], 3)
  })

  it("refuses what cannot be sent", () => {
    assert.strictEqual(left(Proxy.socks5Connect("a".repeat(256), 25)).reason, "invalid")
    assert.strictEqual(left(Proxy.socks5Connect("host", 0)).reason, "invalid")
    assert.strictEqual(left(Proxy.socks5Connect("host", 65536)).reason, "invalid")
  })
})

describe("IP literals", () => {
  it("IPv6 forms", () => {
    assert.strictEqual(hex(Proxy.ipv6("::")!), "0".repeat(32))
    assert.strictEqual(hex(Proxy.ipv6("1::")!), "0001" + "0".repeat(28))
    assert.strictEqual(hex(Proxy.ipv6("1:2:3:4:5:6:7:8")!), "00010002000300040005000600070008")
    assert.strictEqual(hex(Proxy.ipv6("::ffff:10.0.0.1")!), "00000000000000000000ffff0a000001")
    for (
      const bad of [
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "12345::",
        "1:2:3:4:5:6:7",
        "::1.2.3",
        "example.com",
        "fe80::1%eth0"
      ]
    ) {
      assert.isUndefined(Proxy.ipv6(bad), bad)
    }
  })
})

describe("SOCKS5 handshake", () => {
  const target = { host: "mx.example.com", port: 25 }
  const connect = hex(right(Proxy.socks5Connect("mx.example.com", 25)))
  const success = of(5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38)

  it("no authentication: greeting, CONNECT, reply, and the server's first bytes after it", () => {
    const h = right(Proxy.makeSocks5(target))
    assert.strictEqual(hex(h.start), "050100")
    const r1 = h.push(of(5, 0))
    assert.deepStrictEqual(r1._tag === "Continue" && r1.write !== undefined ? hex(r1.write) : r1, connect)
    const r2 = h.push(Buffer.concat([success, bytes("220 mx ESMTP\r\n")]))
    assert.strictEqual(r2._tag, "Done")
    assert.strictEqual(r2._tag === "Done" ? text(r2.rest) : "", "220 mx ESMTP\r\n")
  })

  it("username/password, with the reply split at every byte", () => {
    const h = right(Proxy.makeSocks5(target, { user: "u", password: "p" }))
    assert.strictEqual(hex(h.start), "05020002")
    const replies = [of(5, 2), of(1, 0), success]
    const writes: Array<string> = []
    let last: Proxy.Step | undefined
    for (const reply of replies) {
      for (const b of reply) {
        last = h.push(of(b))
        if (last._tag === "Continue" && last.write !== undefined) writes.push(hex(last.write))
      }
    }
    assert.deepStrictEqual(writes, ["0101750170", connect])
    assert.deepStrictEqual(last, { _tag: "Done", rest: new Uint8Array(0) })
  })

  it("any split of the replies gives the same result (property)", () => {
    const all = Buffer.concat([of(5, 2), of(1, 0), of(5, 0, 0, 3, 4), bytes("host"), of(0, 25), bytes("220 ok\r\n")])
    FastCheck.assert(
      FastCheck.property(FastCheck.array(FastCheck.nat(all.length)), (cuts) => {
        // the client writes between replies, but the codec may be fed anything that arrived: feed
        // each reply separately (a proxy answers only what was asked), split within
        const h = right(Proxy.makeSocks5(target, { user: "u", password: "p" }))
        const parts = [all.subarray(0, 2), all.subarray(2, 4), all.subarray(4)]
        const writes: Array<string> = []
        let last: Proxy.Step = { _tag: "Continue" }
        let after = ""
        for (const part of parts) {
          const r = run(h, splitAt(part, cuts))
          writes.push(...r.writes)
          last = r.last
          after = r.after
        }
        return writes.length === 2 && last._tag === "Done" && after === "220 ok\r\n"
      })
    )
  })

  it("a SOCKS reply code is a refusal with its RFC 1928 meaning", () => {
    for (const [code, meaning] of Object.entries(Proxy.socks5ReplyText)) {
      const h = right(Proxy.makeSocks5(target))
      h.push(of(5, 0))
      const r = h.push(of(5, Number(code))) // decided on two bytes: some proxies close then
      assert.deepStrictEqual(r, {
        _tag: "Failed",
        failure: { reason: "refused", detail: `refused: ${meaning} (${code})`, code: Number(code) }
      })
    }
    const h = right(Proxy.makeSocks5(target))
    h.push(of(5, 0))
    assert.deepStrictEqual(h.push(of(5, 0x42, 0, 1)), {
      _tag: "Failed",
      failure: { reason: "refused", detail: "refused: unknown reply code (66)", code: 66 }
    })
  })

  it("no acceptable method, and a rejected password", () => {
    const h1 = right(Proxy.makeSocks5(target))
    const r1 = h1.push(of(5, 0xff))
    assert.strictEqual(r1._tag === "Failed" ? r1.failure.reason : r1._tag, "auth")
    assert.include(r1._tag === "Failed" ? r1.failure.detail : "", "needs credentials")
    const h2 = right(Proxy.makeSocks5(target, { user: "u", password: "wrong" }))
    h2.push(of(5, 2))
    assert.deepStrictEqual(h2.push(of(1, 1)), {
      _tag: "Failed",
      failure: { reason: "auth", detail: "rejected the username/password (status 1)", code: 1 }
    })
  })

  it("a method that was not offered is a protocol error", () => {
    const h = right(Proxy.makeSocks5(target)) // offered only 0
    const r = h.push(of(5, 2))
    assert.strictEqual(
      r._tag === "Failed" ? r.failure.detail : "",
      "chose an authentication method that was not offered (0x02)"
    )
  })

  it("garbage: not SOCKS5, an HTTP server, an unknown address type, bytes nobody asked for", () => {
    const r1 = right(Proxy.makeSocks5(target)).push(bytes("\x04\x5a"))
    assert.strictEqual(
      r1._tag === "Failed" ? r1.failure.detail : "",
      "sent something that is not a SOCKS5 reply (first byte 0x04)"
    )
    const r2 = right(Proxy.makeSocks5(target)).push(bytes("HTTP/1.1 400 Bad Request\r\n"))
    assert.include(r2._tag === "Failed" ? r2.failure.detail : "", "an HTTP server?")
    const h3 = right(Proxy.makeSocks5(target))
    h3.push(of(5, 0))
    const r3 = h3.push(of(5, 0, 0, 9, 1, 2, 3, 4))
    assert.strictEqual(r3._tag === "Failed" ? r3.failure.reason : "", "protocol")
    const r4 = right(Proxy.makeSocks5(target)).push(of(5, 0, 5))
    assert.strictEqual(r4._tag === "Failed" ? r4.failure.detail : "", "sent 1 unexpected byte(s) during the handshake")
  })
})

describe("HTTP CONNECT", () => {
  it("the exact request, with and without Basic credentials", () => {
    assert.strictEqual(
      text(right(Proxy.httpConnectRequest("mx.example.com", 587))),
      "CONNECT mx.example.com:587 HTTP/1.1\r\nHost: mx.example.com:587\r\n\r\n"
    )
    assert.strictEqual(
      text(right(Proxy.httpConnectRequest("::1", 25, { user: "Aladdin", password: "open sesame" }))),
      "CONNECT [::1]:25 HTTP/1.1\r\nHost: [::1]:25\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
    )
    // RFC 7617 §2.1: UTF-8
    assert.strictEqual(right(Proxy.basicCredentials("test", "123£")), "dGVzdDoxMjPCow==")
  })

  it("refuses what cannot be sent (header injection, a colon in the user)", () => {
    assert.strictEqual(left(Proxy.httpConnectRequest("a\r\nX-Evil: 1", 25)).reason, "invalid")
    assert.strictEqual(left(Proxy.httpConnectRequest("a b", 25)).reason, "invalid")
    assert.strictEqual(left(Proxy.httpConnectRequest("evil/path", 25)).reason, "invalid")
    assert.strictEqual(left(Proxy.httpConnectRequest("host", 25, { user: "a:b", password: "p" })).reason, "invalid")
    assert.strictEqual(left(Proxy.httpConnectRequest("host", 25, { user: "a", password: "p\r\n" })).reason, "invalid")
  })

  const target = { host: "mx.example.com", port: 25 }

  it("200, with headers and the server's first bytes in the same chunk", () => {
    const h = right(Proxy.makeHttpConnect(target))
    const r = h.push(bytes("HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n220 mx\r\n"))
    assert.deepStrictEqual(r._tag === "Done" ? text(r.rest) : r, "220 mx\r\n")
  })

  it("any split gives the same result (property)", () => {
    const all = bytes("HTTP/1.0 200 OK\r\nVia: 1.1 tinyproxy\r\n\r\n220 mx ESMTP\r\n")
    FastCheck.assert(
      FastCheck.property(FastCheck.array(FastCheck.nat(all.length)), (cuts) => {
        const r = run(right(Proxy.makeHttpConnect(target)), splitAt(all, cuts))
        return r.writes.length === 0 && r.last._tag === "Done" && r.after === "220 mx ESMTP\r\n"
      })
    )
  })

  it("407, 403, 502 and others", () => {
    const status = (response: string, auth?: { user: string; password: string }) => {
      const r = right(Proxy.makeHttpConnect(target, auth)).push(bytes(response))
      return r._tag === "Failed" ? r.failure : r
    }
    assert.deepStrictEqual(status("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"), {
      reason: "auth",
      detail: "requires authentication (407 Proxy Authentication Required)",
      code: 407
    })
    assert.deepStrictEqual(status("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", { user: "u", password: "p" }), {
      reason: "auth",
      detail: "rejected the credentials (407 Proxy Authentication Required)",
      code: 407
    })
    // tinyproxy's answer to bad credentials
    assert.deepStrictEqual(status("HTTP/1.0 401 Unauthorized\r\n\r\n", { user: "u", password: "p" }), {
      reason: "auth",
      detail: "rejected the credentials (401 Unauthorized)",
      code: 401
    })
    assert.deepStrictEqual(status("HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n"), {
      reason: "refused",
      detail: "refused: 403 Forbidden",
      code: 403
    })
    assert.deepStrictEqual(status("HTTP/1.0 502 Bad Gateway\n\n"), {
      reason: "refused",
      detail: "refused: 502 Bad Gateway",
      code: 502
    })
    assert.deepStrictEqual(status("HTTP/1.1 503\r\n\r\n"), { reason: "refused", detail: "refused: 503", code: 503 })
    // a reason phrase with control characters is printed safely
    assert.deepStrictEqual(status("HTTP/1.1 500 a\x1b[31mb\r\n\r\n"), {
      reason: "refused",
      detail: "refused: 500 a?[31mb",
      code: 500
    })
  })

  it("garbage: not HTTP (decided early), a malformed status line, a head that never ends", () => {
    const h1 = right(Proxy.makeHttpConnect(target))
    const r1 = h1.push(of(5, 0))
    assert.strictEqual(r1._tag === "Failed" ? r1.failure.reason : r1._tag, "protocol")
    const r2 = right(Proxy.makeHttpConnect(target)).push(bytes("220 mx.example.com ESMTP\r\n"))
    assert.strictEqual(
      r2._tag === "Failed" ? r2.failure.detail : "",
      "sent something that is not an HTTP response: \"220 mx.example.com ESMTP??\""
    )
    const r3 = right(Proxy.makeHttpConnect(target)).push(bytes("HTTP/2 200\r\n\r\n"))
    assert.strictEqual(r3._tag === "Failed" ? r3.failure.detail : "", "sent a malformed status line: \"HTTP/2 200\"")
    const h4 = right(Proxy.makeHttpConnect(target))
    assert.strictEqual(h4.push(bytes("HTTP/1.1 200 OK\r\n"))._tag, "Continue")
    const r4 = h4.push(bytes("X: " + "y".repeat(Proxy.maxHttpHead)))
    assert.strictEqual(
      r4._tag === "Failed" ? r4.failure.detail : "",
      `sent a response head longer than ${Proxy.maxHttpHead} bytes`
    )
  })
})

describe("proxy URLs", () => {
  it("socks5 and http, with percent-encoded credentials and default ports", () => {
    assert.deepStrictEqual(right(Proxy.parseProxyUrl("socks5://us%40er:p%3Ass@127.0.0.1:1080")), {
      type: "socks5",
      host: "127.0.0.1",
      port: 1080,
      auth: { user: "us@er", password: "p:ss" }
    })
    assert.deepStrictEqual(right(Proxy.parseProxyUrl("socks5h://proxy.example")), {
      type: "socks5",
      host: "proxy.example",
      port: 1080
    })
    assert.deepStrictEqual(right(Proxy.parseProxyUrl("http://u:p@[::1]:3128/")), {
      type: "http",
      host: "::1",
      port: 3128,
      auth: { user: "u", password: "p" }
    })
    assert.deepStrictEqual(right(Proxy.parseProxyUrl("http://proxy")), { type: "http", host: "proxy", port: 80 })
  })

  it("refuses other schemes and junk without repeating the URL", () => {
    for (
      const url of [
        "https://u:secret@proxy:443",
        "socks4://u:secret@p:1080",
        "not a url secret",
        "http://u:secret@p:3128/path",
        "socks5://u:%E0%A4%A@p"
      ]
    ) {
      const failure = left(Proxy.parseProxyUrl(url))
      assert.strictEqual(failure.reason, "invalid", url)
      assert.notInclude(failure.detail, "secret", url)
    }
  })

  it("names a proxy without credentials", () => {
    assert.strictEqual(
      Proxy.describeProxy({ type: "socks5", host: "127.0.0.1", port: 1080 }),
      "SOCKS5 proxy 127.0.0.1:1080"
    )
    assert.strictEqual(Proxy.describeProxy({ type: "http", host: "::1", port: 3128 }), "HTTP proxy [::1]:3128")
  })
})
