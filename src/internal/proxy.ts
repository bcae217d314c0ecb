/**
 * The proxy handshakes as a pure codec: SOCKS5 (RFC 1928, username/password RFC 1929) and HTTP
 * CONNECT (RFC 9110 §9.3.6, Basic `Proxy-Authorization` RFC 7617). Bytes in, bytes or plain data
 * out: a handshake is made for one target, its `start` bytes are written, then every chunk the
 * proxy sends is `push`ed until it says `Done` (with the bytes that already belong to the tunnel)
 * or `Failed`. No I/O, no `node:*`: the Node wiring is `nodeProxy.ts`.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import { concatBytes } from "./bytes.js"

/**
 * Why a proxy handshake failed: `unreachable` (no connection to the proxy), `refused` (the proxy
 * answered and declined: a SOCKS reply code, an HTTP status), `auth` (it wants credentials or
 * rejected them), `protocol` (an answer that is not the protocol), `closed` (the connection ended
 * before the handshake did), `invalid` (options that cannot be sent: a bad URL, a too-long name).
 */
export type ProxyFailureReason = "unreachable" | "refused" | "auth" | "protocol" | "closed" | "invalid"

/** What went wrong, without the proxy's name (the caller adds it). */
export interface ProxyFailure {
  readonly reason: ProxyFailureReason
  readonly detail: string
  /** The SOCKS5 reply code, the RFC 1929 status or the HTTP status, when there is one. */
  readonly code?: number | undefined
}

/**
 * A proxy handshake that failed, naming the proxy (`SOCKS5 proxy 127.0.0.1:1080`) and never its
 * credentials. The `cause` of the `SmtpConnectError`.
 */
export class ProxyError extends Data.TaggedError("ProxyError")<{
  /** `SOCKS5 proxy 127.0.0.1:1080`, `HTTP proxy [::1]:3128`. */
  readonly proxy: string
  readonly reason: ProxyFailureReason
  readonly detail: string
  readonly code?: number | undefined
}> {
  override get message(): string {
    return `${this.proxy} ${this.detail}`
  }
}

/** The supported kinds. */
export type ProxyType = "socks5" | "http"

/** A proxy with its credentials in the clear: only ever held in memory, never printed. */
export interface ProxySpec {
  readonly type: ProxyType
  readonly host: string
  readonly port: number
  readonly auth?: { readonly user: string; readonly password: string } | undefined
}

/** One step of a handshake after a chunk. */
export type Step =
  /** Need more bytes; write `write` first when present. */
  | { readonly _tag: "Continue"; readonly write?: Uint8Array | undefined }
  /** The tunnel is open; `rest` is what the proxy sent after its answer (the server's first bytes). */
  | { readonly _tag: "Done"; readonly rest: Uint8Array }
  | { readonly _tag: "Failed"; readonly failure: ProxyFailure }

/** A handshake for one connection: write `start`, then push what the proxy sends. */
export interface Handshake {
  readonly start: Uint8Array
  readonly push: (chunk: Uint8Array) => Step
}

const encoder = new TextEncoder()
const utf8 = (text: string): Uint8Array => encoder.encode(text)
const unbracket = (host: string): string => host.replace(/^\[|\]$/g, "")

const continue_: Step = { _tag: "Continue" }
const fail = (reason: ProxyFailureReason, detail: string, code?: number): Step => ({
  _tag: "Failed",
  failure: code === undefined ? { reason, detail } : { reason, detail, code }
})

/** `"SOCKS5 proxy 127.0.0.1:1080"`: the proxy as named in errors (no credentials). */
export const describeProxy = (proxy: Pick<ProxySpec, "type" | "host" | "port">): string =>
  `${proxy.type === "socks5" ? "SOCKS5" : "HTTP"} proxy ${authority(proxy.host, proxy.port)}`

/** `host:port`, with an IPv6 literal in brackets. */
export const authority = (host: string, port: number): string => {
  const bare = unbracket(host)
  return ipv6(bare) === undefined ? `${bare}:${port}` : `[${bare}]:${port}`
}

// ---------------------------------------------------------------------------------------------------------------
// addresses (no node:net: the literal forms are parsed here)
// ---------------------------------------------------------------------------------------------------------------

/** The four bytes of a dotted-quad IPv4 literal, or undefined. */
export const ipv4 = (text: string): Uint8Array | undefined => {
  const parts = text.split(".")
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!
    if (!/^(?:0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined
    out[i] = Number(p)
  }
  return out
}

/** The sixteen bytes of an IPv6 literal (with `::` and an embedded IPv4 tail; no zone), or undefined. */
export const ipv6 = (text: string): Uint8Array | undefined => {
  if (!text.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(text)) return undefined
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const groups = (part: string): Array<number> | undefined => {
    if (part === "") return []
    const out: Array<number> = []
    const items = part.split(":")
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = ipv4(item)
        if (v4 === undefined) return undefined
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!)
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(item)) return undefined
        out.push(parseInt(item, 16))
      }
    }
    return out
  }
  const head = groups(halves[0]!)
  const tail = halves.length === 2 ? groups(halves[1]!) : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  const all = [...head, ...Array<number>(missing).fill(0), ...tail]
  const out = new Uint8Array(16)
  all.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  return out
}

const validPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535

// ---------------------------------------------------------------------------------------------------------------
// SOCKS5
// ---------------------------------------------------------------------------------------------------------------

const SOCKS_VERSION = 5
const METHOD_NONE = 0x00
const METHOD_USERPASS = 0x02
const METHOD_REFUSED = 0xff

/** RFC 1928 §6 reply codes. */
export const socks5ReplyText: Readonly<Record<number, string>> = {
  1: "general SOCKS server failure",
  2: "connection not allowed by ruleset",
  3: "network unreachable",
  4: "host unreachable",
  5: "connection refused by destination",
  6: "TTL expired",
  7: "command not supported",
  8: "address type not supported"
}

/** The method selection message: no authentication, and username/password when there are credentials. */
export const socks5Greeting = (withAuth: boolean): Uint8Array =>
  withAuth ?
    Uint8Array.of(SOCKS_VERSION, 2, METHOD_NONE, METHOD_USERPASS) :
    Uint8Array.of(SOCKS_VERSION, 1, METHOD_NONE)

/** The RFC 1929 request: version 1, then the user and password (UTF-8, 1 to 255 bytes each). */
export const socks5Auth = (user: string, password: string): Either.Either<Uint8Array, ProxyFailure> => {
  const u = utf8(user)
  const p = utf8(password)
  if (u.length < 1 || u.length > 255) {
    return Either.left({ reason: "invalid", detail: "cannot send the user name: SOCKS5 takes 1 to 255 bytes" })
  }
  if (p.length < 1 || p.length > 255) {
    return Either.left({ reason: "invalid", detail: "cannot send the password: SOCKS5 takes 1 to 255 bytes" })
  }
  return Either.right(concatBytes([Uint8Array.of(1, u.length), u, Uint8Array.of(p.length), p]))
}

/**
 * The CONNECT request. A host name goes as a domain name (ATYP 3): the proxy resolves it, so the
 * name is never looked up here; IP literals go as ATYP 1 or 4.
 */
export const socks5Connect = (host: string, port: number): Either.Either<Uint8Array, ProxyFailure> => {
  if (!validPort(port)) return Either.left({ reason: "invalid", detail: `cannot connect to port ${port}` })
  const bare = unbracket(host)
  const portBytes = Uint8Array.of(port >> 8, port & 0xff)
  const v4 = ipv4(bare)
  if (v4 !== undefined) return Either.right(concatBytes([Uint8Array.of(SOCKS_VERSION, 1, 0, 1), v4, portBytes]))
  const v6 = ipv6(bare)
  if (v6 !== undefined) return Either.right(concatBytes([Uint8Array.of(SOCKS_VERSION, 1, 0, 4), v6, portBytes]))
  const name = utf8(bare)
  if (name.length < 1 || name.length > 255) {
    return Either.left({ reason: "invalid", detail: "cannot send the host name: SOCKS5 takes 1 to 255 bytes" })
  }
  return Either.right(
    concatBytes([Uint8Array.of(SOCKS_VERSION, 1, 0, 3, name.length), name, portBytes])
  )
}

const hex = (byte: number) => `0x${byte.toString(16).padStart(2, "0")}`

const notSocks5 = (bytes: Uint8Array): Step =>
  fail(
    "protocol",
    `sent something that is not a SOCKS5 reply (first byte ${hex(bytes[0]!)}` +
      (isHttpStart(bytes) ? ": an HTTP server?)" : ")")
  )

const isHttpStart = (bytes: Uint8Array) =>
  bytes.length >= 4 && bytes[0] === 0x48 && bytes[1] === 0x54 && bytes[2] === 0x54 && bytes[3] === 0x50

/** An incremental SOCKS5 client handshake for one target. */
export const makeSocks5 = (
  target: { readonly host: string; readonly port: number },
  auth?: { readonly user: string; readonly password: string } | undefined
): Either.Either<Handshake, ProxyFailure> =>
  Either.gen(function*() {
    const connect = yield* socks5Connect(target.host, target.port)
    const credentials = auth === undefined ? undefined : yield* socks5Auth(auth.user, auth.password)
    let state: "method" | "auth" | "connect" | "done" = "method"
    let buffer: Uint8Array = new Uint8Array(0)
    const take = (n: number): Uint8Array => {
      const out = buffer.subarray(0, n)
      buffer = buffer.subarray(n)
      return out
    }
    const extra = (): Step | undefined =>
      buffer.length > 0 ? fail("protocol", `sent ${buffer.length} unexpected byte(s) during the handshake`) : undefined
    const step = (): Step => {
      switch (state) {
        case "method": {
          if (buffer.length < 2) return continue_
          if (buffer[0] !== SOCKS_VERSION) return notSocks5(buffer)
          const [, method] = take(2)
          if (method === METHOD_REFUSED) {
            return fail(
              "auth",
              credentials === undefined ?
                "accepts none of the offered authentication methods (no authentication): it needs credentials" :
                "accepts none of the offered authentication methods (no authentication, username/password)"
            )
          }
          if (method === METHOD_USERPASS && credentials !== undefined) {
            state = "auth"
            return extra() ?? { _tag: "Continue", write: credentials }
          }
          if (method !== METHOD_NONE) {
            return fail("protocol", `chose an authentication method that was not offered (${hex(method!)})`)
          }
          state = "connect"
          return extra() ?? { _tag: "Continue", write: connect }
        }
        case "auth": {
          if (buffer.length < 2) return continue_
          // RFC 1929 says version 1; some servers answer with 5: only the status matters
          if (buffer[0] !== 1 && buffer[0] !== SOCKS_VERSION) return notSocks5(buffer)
          const [, status] = take(2)
          if (status !== 0) return fail("auth", `rejected the username/password (status ${status})`, status)
          state = "connect"
          return extra() ?? { _tag: "Continue", write: connect }
        }
        case "connect": {
          if (buffer.length < 2) return continue_
          if (buffer[0] !== SOCKS_VERSION) return notSocks5(buffer)
          const code = buffer[1]!
          if (code !== 0) {
            // decided on the code alone: some proxies close without the rest of the reply
            const text = socks5ReplyText[code] ?? "unknown reply code"
            return fail("refused", `refused: ${text} (${code})`, code)
          }
          if (buffer.length < 5) return continue_
          const atyp = buffer[3]!
          const addressLength = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + buffer[4]! : -1
          if (addressLength < 0) return fail("protocol", `sent a reply with an unknown address type (${hex(atyp)})`)
          const length = 4 + addressLength + 2
          if (buffer.length < length) return continue_
          take(length)
          state = "done"
          return { _tag: "Done", rest: take(buffer.length) }
        }
        case "done":
          return { _tag: "Done", rest: take(buffer.length) }
      }
    }
    return {
      start: socks5Greeting(credentials !== undefined),
      push: (chunk: Uint8Array): Step => {
        buffer = buffer.length === 0 ? chunk : concatBytes([buffer, chunk])
        return step()
      }
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// HTTP CONNECT
// ---------------------------------------------------------------------------------------------------------------

/** The longest response head accepted before the blank line. */
export const maxHttpHead = 16 * 1024

/** RFC 7617 Basic credentials: base64 of `user:password` in UTF-8. */
export const basicCredentials = (user: string, password: string): Either.Either<string, ProxyFailure> =>
  user.includes(":") ?
    Either.left({ reason: "invalid", detail: "cannot send the user name: Basic authentication forbids \":\" in it" }) :
    /[\x00-\x1f\x7f]/.test(user + password) ?
    Either.left({ reason: "invalid", detail: "cannot send the credentials: control characters" }) :
    Either.right(Encoding.encodeBase64(utf8(`${user}:${password}`)))

/** `CONNECT host:port HTTP/1.1` with `Host` and, with credentials, `Proxy-Authorization: Basic …`. */
export const httpConnectRequest = (
  host: string,
  port: number,
  auth?: { readonly user: string; readonly password: string } | undefined
): Either.Either<Uint8Array, ProxyFailure> =>
  Either.gen(function*() {
    if (!validPort(port)) {
      return yield* Either.left<ProxyFailure>({ reason: "invalid", detail: `cannot connect to port ${port}` })
    }
    if (!/^[\x21-\x7e]+$/.test(unbracket(host)) || /[/?#@[\]]/.test(unbracket(host).replace(/:/g, ""))) {
      return yield* Either.left<ProxyFailure>({
        reason: "invalid",
        detail: "cannot send the host name in a CONNECT request"
      })
    }
    const target = authority(host, port)
    const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`]
    if (auth !== undefined) {
      lines.push(`Proxy-Authorization: Basic ${yield* basicCredentials(auth.user, auth.password)}`)
    }
    return utf8(lines.join("\r\n") + "\r\n\r\n")
  })

const HTTP_PREFIX = utf8("HTTP/")
const printable = (text: string, max = 100) => {
  const clean = text.replace(/[^\x20-\x7e]/g, "?")
  return clean.length > max ? clean.slice(0, max) + "…" : clean
}

/** Where the head ends (after `\r\n\r\n`, or a bare `\n\n`), or -1. */
const headEnd = (bytes: Uint8Array): number => {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue
    if (bytes[i + 1] === 0x0a) return i + 2
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 3
  }
  return -1
}

const latin1 = (bytes: Uint8Array): string => {
  let out = ""
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]!)
  return out
}

/** An incremental HTTP CONNECT client handshake for one target. */
export const makeHttpConnect = (
  target: { readonly host: string; readonly port: number },
  auth?: { readonly user: string; readonly password: string } | undefined
): Either.Either<Handshake, ProxyFailure> =>
  Either.map(httpConnectRequest(target.host, target.port, auth), (start): Handshake => {
    let buffer: Uint8Array = new Uint8Array(0)
    let done = false
    return {
      start,
      push: (chunk) => {
        buffer = buffer.length === 0 ? chunk : concatBytes([buffer, chunk])
        if (done) {
          const rest = buffer
          buffer = new Uint8Array(0)
          return { _tag: "Done", rest }
        }
        const prefix = Math.min(buffer.length, HTTP_PREFIX.length)
        for (let i = 0; i < prefix; i++) {
          if (buffer[i] !== HTTP_PREFIX[i]) {
            return fail(
              "protocol",
              `sent something that is not an HTTP response: "${printable(latin1(buffer.subarray(0, 40)), 40)}"`
            )
          }
        }
        const end = headEnd(buffer)
        if (end < 0) {
          return buffer.length > maxHttpHead ?
            fail("protocol", `sent a response head longer than ${maxHttpHead} bytes`) :
            continue_
        }
        const statusLine = latin1(buffer.subarray(0, buffer.indexOf(0x0a))).replace(/\r$/, "")
        const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
        if (match === null) return fail("protocol", `sent a malformed status line: "${printable(statusLine)}"`)
        const status = Number(match[1])
        const reasonPhrase = printable((match[2] ?? "").trim())
        const said = reasonPhrase === "" ? `${status}` : `${status} ${reasonPhrase}`
        if (status >= 200 && status < 300) {
          done = true
          const rest = buffer.subarray(end)
          buffer = new Uint8Array(0)
          return { _tag: "Done", rest }
        }
        // 407 is the proxy's; tinyproxy answers a CONNECT with bad or missing credentials with 401
        if (status === 407 || status === 401) {
          return fail(
            "auth",
            auth === undefined ?
              `requires authentication (${said})` :
              `rejected the credentials (${said})`,
            status
          )
        }
        return fail("refused", `refused: ${said}`, status)
      }
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------------------------

/** The handshake for a proxy and a target. */
export const makeHandshake = (
  proxy: ProxySpec,
  target: { readonly host: string; readonly port: number }
): Either.Either<Handshake, ProxyFailure> =>
  proxy.type === "socks5" ? makeSocks5(target, proxy.auth) : makeHttpConnect(target, proxy.auth)

const schemes: Readonly<Record<string, { readonly type: ProxyType; readonly port: number }>> = {
  "socks5:": { type: "socks5", port: 1080 },
  "socks5h:": { type: "socks5", port: 1080 },
  "socks:": { type: "socks5", port: 1080 },
  "http:": { type: "http", port: 80 }
}

/**
 * Reads `socks5://user:password@host:1080` (also `socks5h:` and `socks:`, the same here: the
 * proxy always resolves the name) or `http://user:password@host:3128`; user and password are
 * percent-decoded. Default ports: 1080 for SOCKS5, 80 for HTTP. The failure never repeats the URL,
 * which may hold a password.
 */
export const parseProxyUrl = (url: string): Either.Either<ProxySpec, ProxyFailure> => {
  let parsed: URL
  try {
    parsed = new URL(url.trim())
  } catch {
    return Either.left({ reason: "invalid", detail: "is not a valid URL" })
  }
  const scheme = schemes[parsed.protocol.toLowerCase()]
  if (scheme === undefined) {
    return Either.left({
      reason: "invalid",
      detail: `has an unsupported scheme "${printable(parsed.protocol, 20)}" (socks5: or http:)`
    })
  }
  if (parsed.hostname === "") return Either.left({ reason: "invalid", detail: "has no host" })
  if ((parsed.pathname !== "" && parsed.pathname !== "/") || parsed.search !== "" || parsed.hash !== "") {
    return Either.left({ reason: "invalid", detail: "has a path, query or fragment" })
  }
  let user: string
  let password: string
  try {
    user = decodeURIComponent(parsed.username)
    password = decodeURIComponent(parsed.password)
  } catch {
    return Either.left({ reason: "invalid", detail: "has malformed percent-encoding in its credentials" })
  }
  return Either.right({
    type: scheme.type,
    host: unbracket(parsed.hostname),
    port: parsed.port === "" ? scheme.port : Number(parsed.port),
    ...(user === "" && password === "" ? {} : { auth: { user, password } })
  })
}
