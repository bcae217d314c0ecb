/**
 * The protocol of the test server (`TestServer`): one state machine per connection, bytes in and
 * bytes out, with no I/O of its own. The in-memory transport and the Node server are adapters
 * that feed it the client's bytes and carry out what it asks (write, close, start TLS).
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import type * as TestServer from "../testing/TestServer.js"
import { concatBytes } from "./bytes.js"

/** What a connection asks of its adapter. */
export interface Io {
  readonly write: (bytes: Uint8Array) => void
  /** Close the connection (after the bytes written so far). */
  readonly close: () => void
  /**
   * Start TLS as the server (STARTTLS was answered 220); the adapter calls `tlsStarted` once the
   * handshake is done. Bytes that arrived after the STARTTLS line are dropped.
   */
  readonly startTls: () => void
}

/** One line of a transcript: `C:` what the client sent, `S:` what the server answered. */
export type TranscriptLine = string

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A reply as wire bytes: every line but the last with `-`. */
export const formatReply = (code: number, text: string): string => {
  const lines = text.split("\n")
  return lines.map((line, i) => `${code}${i === lines.length - 1 ? " " : "-"}${line}`).join("\r\n") +
    "\r\n"
}

/** `"550 5.1.1 No such user"` or `{ code, text }` as a code and a text. */
export const parseReply = (reply: TestServer.Reply): { readonly code: number; readonly text: string } => {
  if (typeof reply !== "string") return reply
  const match = /^([1-5]\d\d)(?:[ -](.*))?$/s.exec(reply)
  if (match === null) throw new Error(`not a reply: ${JSON.stringify(reply)} (expected "550 5.1.1 text")`)
  return { code: Number(match[1]), text: (match[2] ?? "").replace(/\r\n/g, "\n") }
}

const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s)

/** What the connections of one server share: the options, the counters and the captures. */
export class Server {
  readonly received: Array<TestServer.Received> = []
  readonly transcripts: Array<Array<TranscriptLine>> = []
  private readonly listeners = new Set<() => void>()
  private queued = 0
  connections = 0

  constructor(readonly options: TestServer.Options, readonly offerTls: boolean) {}

  get hostname(): string {
    return this.options.hostname ?? "mx.test"
  }

  get size(): number {
    return this.options.size ?? 25 * 1024 * 1024
  }

  enabled(extension: TestServer.Extension): boolean {
    return !(this.options.disable ?? []).includes(extension)
  }

  nextQueueId(): string {
    this.queued++
    return `TEST${this.queued.toString(16).toUpperCase().padStart(6, "0")}`
  }

  capture(received: TestServer.Received) {
    this.received.push(received)
    for (const listener of Array.from(this.listeners)) listener()
  }

  /** Calls `listener` after each capture until it is removed. */
  onCapture(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  open(io: Io, secure: boolean): Connection {
    const index = this.connections++
    const transcript: Array<TranscriptLine> = []
    this.transcripts[index] = transcript
    return new Connection(this, index, io, secure, transcript)
  }
}

interface Transaction {
  readonly from: string
  readonly params: ReadonlyArray<string>
  readonly utf8: boolean
  readonly accepted: Array<string>
  /** BDAT chunks so far, and whether the first BDAT was refused (the rest is read and dropped). */
  readonly chunks: Array<Uint8Array>
  bdatRefused: TestServer.Reply | undefined
  bdatStarted: boolean
}

type Mode =
  | { readonly _tag: "command" }
  | { readonly _tag: "data"; readonly lines: Array<Uint8Array>; size: number }
  | { readonly _tag: "bdat"; need: number; readonly last: boolean; readonly parts: Array<Uint8Array> }
  | { readonly _tag: "auth"; readonly mechanism: "PLAIN" | "LOGIN"; user: string | undefined }
  | { readonly _tag: "tls" }
  | { readonly _tag: "stalled" }
  | { readonly _tag: "closed" }

/** One connection's state machine. */
export class Connection {
  private pending: Uint8Array = new Uint8Array(0)
  private mode: Mode = { _tag: "command" }
  private helo: string | undefined
  private esmtp = false
  private user: string | undefined
  private transaction: Transaction | undefined

  constructor(
    private readonly server: Server,
    readonly index: number,
    private readonly io: Io,
    public secure: boolean,
    private readonly transcript: Array<TranscriptLine>
  ) {}

  get closed(): boolean {
    return this.mode._tag === "closed"
  }

  /** Sends the greeting (or what `respond` says at `"connect"`). */
  start() {
    const response = this.ask({ stage: "connect", command: "" })
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code !== undefined && code !== 220) this.close()
      return
    }
    this.reply(
      220,
      `${this.server.hostname} ${this.server.options.lmtp === true ? "LMTP" : "ESMTP"} effect-smtp test server`
    )
  }

  /** The client closed its side. */
  end() {
    this.mode = { _tag: "closed" }
  }

  tlsStarted() {
    if (this.mode._tag !== "tls") return
    this.secure = true
    // RFC 3207 §4.2: the session starts over
    this.helo = undefined
    this.esmtp = false
    this.user = undefined
    this.transaction = undefined
    this.mode = { _tag: "command" }
    this.transcript.push("-- TLS started --")
  }

  push(chunk: Uint8Array) {
    if (this.mode._tag === "closed" || this.mode._tag === "stalled" || this.mode._tag === "tls") return
    this.pending = this.pending.length === 0 ? chunk.slice() : concatBytes([this.pending, chunk])
    this.drain()
  }

  private drain() {
    for (;;) {
      const mode = this.mode
      if (mode._tag === "bdat") {
        if (this.pending.length === 0) return
        const take = Math.min(mode.need, this.pending.length)
        mode.parts.push(this.pending.subarray(0, take))
        this.pending = this.pending.subarray(take)
        mode.need -= take
        if (mode.need > 0) return
        this.mode = { _tag: "command" }
        this.bdatChunk(concatBytes(mode.parts), mode.last)
        continue
      }
      if (mode._tag !== "command" && mode._tag !== "data" && mode._tag !== "auth") return
      const lf = this.pending.indexOf(10)
      if (lf === -1) {
        if (this.pending.length > 1024 * 1024 && mode._tag !== "data") {
          this.reply(500, "5.5.2 Line too long")
          this.close()
        }
        return
      }
      const lineBytes = this.pending.subarray(0, lf + 1)
      this.pending = this.pending.subarray(lf + 1)
      if (mode._tag === "data") {
        this.dataLine(mode, lineBytes)
        continue
      }
      const line = decoder.decode(lineBytes).replace(/\r?\n$/, "")
      if (mode._tag === "auth") this.authLine(mode, line)
      else this.command(line)
    }
  }

  private write(text: string) {
    this.io.write(encoder.encode(text))
  }

  private reply(code: number, text: string) {
    const wire = formatReply(code, text)
    this.transcript.push(...wire.slice(0, -2).split("\r\n").map((line) => `S: ${line}`))
    this.write(wire)
  }

  private close() {
    if (this.mode._tag === "closed") return
    this.mode = { _tag: "closed" }
    this.transcript.push("-- closed by the server --")
    this.io.close()
  }

  private ask(
    event: Omit<TestServer.Event, "connection">
  ): TestServer.Response | undefined {
    const respond = this.server.options.respond
    if (respond === undefined) return undefined
    return respond({
      connection: this.index,
      user: this.user,
      from: this.transaction?.from,
      recipients: this.transaction === undefined ? undefined : this.transaction.accepted.slice(),
      ...event
    })
  }

  /** Carries out a response; the code it replied with, if any. */
  private respondWith(response: TestServer.Response): { readonly code: number | undefined } {
    if (response === "disconnect") {
      this.close()
      return { code: undefined }
    }
    if (response === "stall") {
      this.mode = { _tag: "stalled" }
      this.transcript.push("-- stalled --")
      return { code: undefined }
    }
    const { code, text } = parseReply(response)
    this.reply(code, text)
    return { code }
  }

  private command(line: string) {
    const verb = (/^\S*/.exec(line)?.[0] ?? "").toUpperCase()
    this.transcript.push(`C: ${verb === "AUTH" ? line.split(" ").slice(0, 2).join(" ") + " <credentials>" : line}`)
    const args = line.slice(verb.length).trim()
    switch (verb) {
      case "EHLO":
      case "HELO":
      case "LHLO":
        if ((verb === "LHLO") !== (this.server.options.lmtp === true)) {
          return this.reply(500, "5.5.1 Error: command not recognized")
        }
        return this.hello(verb, args, line)
      case "STARTTLS":
        return this.startTls(args)
      case "AUTH":
        return this.auth(args, line)
      case "MAIL":
        return this.mail(args, line)
      case "RCPT":
        return this.rcpt(args, line)
      case "DATA":
        return this.data(args, line)
      case "BDAT":
        return this.bdat(args, line)
      case "RSET":
        this.transaction = undefined
        return this.reply(250, "2.0.0 Ok")
      case "NOOP":
        return this.reply(250, "2.0.0 Ok")
      case "VRFY":
        return this.reply(252, "2.1.5 Cannot VRFY user, but will accept message and attempt delivery")
      case "HELP":
        return this.reply(214, "2.0.0 See RFC 5321")
      case "QUIT":
        this.reply(221, "2.0.0 Bye")
        return this.close()
      default:
        return this.reply(500, "5.5.2 Error: command not recognized")
    }
  }

  private hello(verb: "EHLO" | "HELO" | "LHLO", name: string, line: string) {
    if (name === "") return this.reply(501, `5.5.4 Syntax: ${verb} hostname`)
    const response = this.ask({ stage: "ehlo", command: line })
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code === undefined || code !== 250) return
    }
    this.helo = name
    this.esmtp = verb !== "HELO"
    this.transaction = undefined
    if (response !== undefined) return
    if (verb === "HELO") return this.reply(250, this.server.hostname)
    const server = this.server
    const lines = [`${server.hostname} greets ${name}`]
    if (server.enabled("PIPELINING")) lines.push("PIPELINING")
    if (server.enabled("SIZE")) lines.push(`SIZE ${server.size}`)
    if (server.enabled("8BITMIME")) lines.push("8BITMIME")
    if (server.enabled("SMTPUTF8")) lines.push("SMTPUTF8")
    if (server.enabled("CHUNKING")) lines.push("CHUNKING")
    if (server.enabled("ENHANCEDSTATUSCODES")) lines.push("ENHANCEDSTATUSCODES")
    if (server.offerTls && server.enabled("STARTTLS") && !this.secure) lines.push("STARTTLS")
    if (server.enabled("AUTH")) lines.push("AUTH PLAIN LOGIN")
    this.reply(250, lines.join("\n"))
  }

  private startTls(args: string) {
    if (!this.server.offerTls || !this.server.enabled("STARTTLS")) return this.reply(502, "5.5.1 STARTTLS not offered")
    if (this.secure) return this.reply(503, "5.5.1 TLS already active")
    if (args !== "") return this.reply(501, "5.5.4 Syntax: STARTTLS")
    this.reply(220, "2.0.0 Ready to start TLS")
    // anything sent after STARTTLS and before the handshake would be plaintext injection
    this.pending = new Uint8Array(0)
    this.mode = { _tag: "tls" }
    this.io.startTls()
  }

  private auth(args: string, line: string) {
    if (!this.server.enabled("AUTH")) return this.reply(502, "5.5.1 AUTH not offered")
    if (this.helo === undefined || !this.esmtp) return this.reply(503, "5.5.1 Error: send EHLO first")
    if (this.user !== undefined) return this.reply(503, "5.5.1 Already authenticated")
    if (this.transaction !== undefined) return this.reply(503, "5.5.1 Not during a mail transaction")
    const [mechanism = "", initial] = args.split(/\s+/)
    switch (mechanism.toUpperCase()) {
      case "PLAIN":
        if (initial === undefined) {
          this.mode = { _tag: "auth", mechanism: "PLAIN", user: undefined }
          return this.reply(334, "")
        }
        return this.plain(initial, line)
      case "LOGIN":
        if (initial === undefined) {
          this.mode = { _tag: "auth", mechanism: "LOGIN", user: undefined }
          return this.reply(334, "VXNlcm5hbWU6")
        }
        return this.loginUser(initial)
      default:
        return this.reply(504, "5.5.4 Unrecognized authentication type")
    }
  }

  private authLine(mode: Extract<Mode, { _tag: "auth" }>, line: string) {
    this.transcript.push("C: <credentials>")
    this.mode = { _tag: "command" }
    if (line === "*") return this.reply(501, "5.7.0 Authentication cancelled")
    if (mode.mechanism === "PLAIN") return this.plain(line, "AUTH PLAIN")
    if (mode.user === undefined) return this.loginUser(line)
    const password = base64(line)
    if (password === undefined) return this.reply(501, "5.5.2 Cannot decode response")
    this.authenticate(mode.user, password, "AUTH LOGIN")
  }

  private loginUser(encoded: string) {
    const user = base64(encoded)
    if (user === undefined) return this.reply(501, "5.5.2 Cannot decode response")
    this.mode = { _tag: "auth", mechanism: "LOGIN", user }
    this.reply(334, "UGFzc3dvcmQ6")
  }

  private plain(encoded: string, line: string) {
    const decoded = encoded === "=" ? "" : base64(encoded)
    const fields = decoded?.split("\u0000")
    if (fields === undefined || fields.length !== 3) return this.reply(501, "5.5.2 Cannot decode response")
    this.authenticate(fields[1], fields[2], line)
  }

  private authenticate(user: string, password: string, line: string) {
    const users = this.server.options.users
    const valid = users === undefined || (Object.hasOwn(users, user) && users[user] === password)
    const response = this.ask({ stage: "auth", command: line.split(" ").slice(0, 2).join(" "), user })
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code === 235) this.user = user
      return
    }
    if (!valid) return this.reply(535, "5.7.8 Error: authentication failed")
    this.user = user
    this.reply(235, "2.7.0 Authentication successful")
  }

  private mail(args: string, line: string) {
    if (this.helo === undefined) return this.reply(503, "5.5.1 Error: send HELO/EHLO first")
    if (this.transaction !== undefined) return this.reply(503, "5.5.1 Error: nested MAIL command")
    if (this.server.options.requireAuth === true && this.user === undefined) {
      return this.reply(530, "5.7.0 Authentication required")
    }
    const match = /^FROM:\s*<([^>]*)>\s*(.*)$/i.exec(args)
    if (match === null) return this.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
    const from = match[1]
    const params = match[2] === "" ? [] : match[2].split(/\s+/)
    if (params.length > 0 && !this.esmtp) return this.reply(555, "5.5.4 Parameters need EHLO")
    const utf8 = params.some((p) => p.toUpperCase() === "SMTPUTF8")
    if (utf8 && !this.server.enabled("SMTPUTF8")) return this.reply(555, "5.5.4 SMTPUTF8 not offered")
    if (!utf8 && !isAscii(from)) return this.reply(553, "5.6.7 SMTPUTF8 is required for this address")
    const size = params.find((p) => p.toUpperCase().startsWith("SIZE="))
    if (size !== undefined && this.server.enabled("SIZE") && Number(size.slice(5)) > this.server.size) {
      return this.reply(552, "5.3.4 Message size exceeds fixed limit")
    }
    const response = this.ask({ stage: "mail", command: line, from })
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code === undefined || code >= 300) return
    } else {
      this.reply(250, "2.1.0 Ok")
    }
    this.transaction = {
      from,
      params,
      utf8,
      accepted: [],
      chunks: [],
      bdatRefused: undefined,
      bdatStarted: false
    }
  }

  private rcpt(args: string, line: string) {
    const transaction = this.transaction
    if (transaction === undefined) return this.reply(503, "5.5.1 Error: need MAIL command")
    const match = /^TO:\s*<([^>]*)>\s*(.*)$/i.exec(args)
    if (match === null || match[1] === "") return this.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
    const recipient = match[1]
    if (!transaction.utf8 && !isAscii(recipient)) {
      return this.reply(553, "5.6.7 SMTPUTF8 is required for this address")
    }
    const refuse = this.server.options.refuse
    const refused = refuse === undefined ?
      undefined :
      typeof refuse === "function" ?
      refuse(recipient) :
      Object.entries(refuse).find(([address]) => address.toLowerCase() === recipient.toLowerCase())?.[1]
    const response = refused ?? this.ask({ stage: "rcpt", command: line, recipient })
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code !== undefined && code < 300) transaction.accepted.push(recipient)
      return
    }
    transaction.accepted.push(recipient)
    this.reply(250, "2.1.5 Ok")
  }

  private data(args: string, line: string) {
    const transaction = this.transaction
    if (args !== "") return this.reply(501, "5.5.4 Syntax: DATA")
    if (transaction === undefined) return this.reply(503, "5.5.1 Error: need MAIL command")
    if (transaction.bdatStarted) return this.reply(503, "5.5.1 Error: BDAT in progress")
    if (transaction.accepted.length === 0) return this.reply(554, "5.5.1 Error: no valid recipients")
    const response = this.ask({ stage: "data", command: line })
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code !== 354) return
    } else {
      this.reply(354, "End data with <CR><LF>.<CR><LF>")
    }
    this.mode = { _tag: "data", lines: [], size: 0 }
  }

  private dataLine(mode: Extract<Mode, { _tag: "data" }>, line: Uint8Array) {
    const n = line.length
    const crlf = n >= 2 && line[n - 2] === 13
    if (line[0] === 46 && (n === 2 && !crlf || n === 3 && crlf)) {
      this.mode = { _tag: "command" }
      this.transcript.push(`C: <message, ${mode.size} bytes>`, "C: .")
      this.finish(concatBytes(mode.lines), "DATA")
      return
    }
    const content = line[0] === 46 ? line.subarray(1) : line
    mode.size += content.length
    // the size limit is checked at the end; past it, nothing more is kept
    if (mode.size <= this.server.size + 1024 * 1024) mode.lines.push(content)
  }

  private bdat(args: string, line: string) {
    const match = /^(\d+)(\s+LAST)?$/i.exec(args)
    if (match === null) return this.reply(501, "5.5.4 Syntax: BDAT size [LAST]")
    const need = Number(match[1])
    const last = match[2] !== undefined
    this.mode = { _tag: "bdat", need, last, parts: [] }
    this.transcript.pop()
    this.transcript.push(`C: ${line} <${need} bytes>`)
    if (need === 0) {
      this.mode = { _tag: "command" }
      this.bdatChunk(new Uint8Array(0), last)
    }
  }

  private bdatChunk(bytes: Uint8Array, last: boolean) {
    const transaction = this.transaction
    if (!this.server.enabled("CHUNKING")) return this.reply(502, "5.5.1 CHUNKING not offered")
    if (transaction === undefined) return this.reply(503, "5.5.1 Error: need MAIL command")
    if (transaction.accepted.length === 0) return this.reply(554, "5.5.1 Error: no valid recipients")
    if (!transaction.bdatStarted) {
      transaction.bdatStarted = true
      const response = this.ask({ stage: "data", command: "BDAT" })
      if (response !== undefined && response !== "disconnect" && response !== "stall") {
        transaction.bdatRefused = response
      } else if (response !== undefined) {
        return this.respondWith(response)
      }
    }
    if (transaction.bdatRefused !== undefined) {
      const { code, text } = parseReply(transaction.bdatRefused)
      if (last) this.transaction = undefined
      return this.reply(code, text)
    }
    transaction.chunks.push(bytes)
    if (!last) return this.reply(250, `2.0.0 ${bytes.length} bytes received`)
    this.finish(concatBytes(transaction.chunks), "BDAT")
  }

  /** LMTP: one reply per accepted recipient; the capture holds those it was delivered to. */
  private finishLmtp(transaction: Transaction, message: Uint8Array, via: "DATA" | "BDAT") {
    const queueId = this.server.nextQueueId()
    const delivered: Array<string> = []
    for (const recipient of transaction.accepted) {
      const response = this.ask({
        stage: "message",
        command: "<end of data>",
        message,
        from: transaction.from,
        recipients: transaction.accepted.slice(),
        recipient
      })
      if (response === undefined) {
        delivered.push(recipient)
        this.reply(250, `2.0.0 <${recipient}> Ok: queued as ${queueId}`)
        continue
      }
      const { code } = this.respondWith(response)
      // hung up or stalled: those delivered so far stay delivered
      if (code === undefined) break
      if (code < 300) delivered.push(recipient)
    }
    if (delivered.length === 0) return
    this.server.capture({
      envelope: { from: transaction.from, to: delivered },
      mailParams: transaction.params,
      raw: message,
      queueId,
      via,
      connection: this.index,
      helo: this.helo ?? "",
      secure: this.secure,
      user: this.user
    })
  }

  /** The end of the data: the final reply, and the capture when it is a success. */
  private finish(message: Uint8Array, via: "DATA" | "BDAT") {
    const transaction = this.transaction!
    this.transaction = undefined
    if (this.server.enabled("SIZE") && message.length > this.server.size) {
      return this.reply(552, "5.3.4 Message size exceeds fixed limit")
    }
    if (this.server.options.lmtp === true) return this.finishLmtp(transaction, message, via)
    const response = this.ask({
      stage: "message",
      command: "<end of data>",
      message,
      from: transaction.from,
      recipients: transaction.accepted.slice()
    })
    let queueId: string
    if (response !== undefined) {
      const { code } = this.respondWith(response)
      if (code === undefined || code >= 300) return
      queueId = this.server.nextQueueId()
    } else {
      queueId = this.server.nextQueueId()
      this.reply(250, `2.0.0 Ok: queued as ${queueId}`)
    }
    this.server.capture({
      envelope: { from: transaction.from, to: transaction.accepted.slice() },
      mailParams: transaction.params,
      raw: message,
      queueId,
      via,
      connection: this.index,
      helo: this.helo ?? "",
      secure: this.secure,
      user: this.user
    })
  }
}

const base64 = (text: string): string | undefined => {
  const decoded = Encoding.decodeBase64String(text)
  return Either.isRight(decoded) ? decoded.right : undefined
}
