/**
 * A model SMTP / LMTP server for the fault tests, independent of any transport: it parses what
 * the client writes (command lines, dot-terminated DATA, BDAT chunks), answers as a plain server
 * with PIPELINING (and CHUNKING) would, and at one stage of one transaction replaces its reply by
 * a fault (close, reset, stall, garbage, 421, a 421 cut short, 451). The in-memory transport
 * (`memoryTransport.ts`, TestClock) and the node:net server (`netServer.ts`, real sockets) drive
 * the same model, so the scripted matrix and the socket matrix share one stage table.
 *
 * It also records what a real server would have delivered: a message whose end of data arrived
 * and that the server accepted (even when the reply saying so is then lost to a fault).
 */

/** Where in a session the fault replaces the server's reply. */
export type Stage =
  /** instead of the greeting */
  | "greeting"
  /** instead of the reply to EHLO / LHLO */
  | "ehlo"
  /** instead of the reply to MAIL */
  | "mail"
  /** instead of the reply to the first RCPT */
  | "rcpt"
  /**
   * DATA path: instead of the 354. BDAT streamed: instead of the reply to the first (non-last)
   * chunk, once the client has pipelined every chunk, LAST included.
   */
  | "data"
  /**
   * while the message is being uploaded, before its end: DATA, on the first bytes of the message;
   * BDAT streamed, instead of the reply to the first (non-last) chunk
   */
  | "body"
  /**
   * BDAT streamed: the first (non-last) chunk is answered 250, then the fault, while the rest of
   * the message (LAST included) is still to be written
   */
  | "chunk"
  /** after the end of data (final dot, BDAT LAST) arrived, instead of the (first) final reply */
  | "end"
  /** LMTP: after the first per-recipient reply, instead of the second */
  | "between"

export const stages: ReadonlyArray<Stage> = [
  "greeting",
  "ehlo",
  "mail",
  "rcpt",
  "data",
  "body",
  "chunk",
  "end",
  "between"
]

export type FaultKind =
  /** the server closes the connection (FIN) */
  | "close"
  /** the server resets the connection (RST) */
  | "reset"
  /** the server stops answering and stops reading */
  | "stall"
  /** a line that is not a reply, then silence */
  | "garbage"
  /** a complete `421` reply, then close */
  | "421"
  /** the first line of a multi-line 421 and half of the second, then close */
  | "421-cut"
  /** a complete `451` reply; the session goes on (the transaction is not delivered) */
  | "451"

export const GARBAGE = "this is not an SMTP reply\r\n"
export const REPLY_421 = "421 4.3.2 mx.test service shutting down\r\n"
export const REPLY_421_CUT = "421-4.3.2 mx.test service shutting down\r\n421 4.3.2 clos"
export const REPLY_451 = "451 4.3.0 try again later\r\n"

export interface Fault {
  readonly stage: Stage
  readonly kind: FaultKind
}

/** What the model asks its transport to do. Every call is synchronous. */
export interface ServerIo {
  readonly send: (bytes: Uint8Array) => void
  /** Closes the connection gracefully (FIN) after what was sent. */
  readonly close: () => void
  /** Resets the connection (RST). */
  readonly reset: () => void
  /** Stops reading what the client writes (its writes eventually block). */
  readonly stopReading: () => void
}

export interface ServerOptions {
  readonly pipelining: boolean
  readonly chunking: boolean
  readonly lmtp: boolean
  /** Applied once, to the first transaction that reaches the stage. */
  readonly fault?: Fault | undefined
  /** The fault is armed from this transaction on (0: the first MAIL); default: from the start. */
  readonly faultFrom?: number | undefined
  /** Called with every message the server accepted (delivered), with its envelope sender. */
  readonly onDelivered?: ((message: Uint8Array, sender: string) => void) | undefined
  /** Called on every MAIL command (one per attempt), with its sender. */
  readonly onMail?: ((sender: string) => void) | undefined
  /** Called when the fault happens. */
  readonly onFault?: ((fault: Fault) => void) | undefined
}

const encoder = new TextEncoder()
const latin1 = new TextDecoder("latin1")

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Removes DATA's dot-stuffing (a `.` doubled at the start of a line). */
const unstuff = (data: Uint8Array): Uint8Array => {
  const out: Array<number> = []
  let lineStart = true
  for (let i = 0; i < data.length; i++) {
    const b = data[i]
    if (lineStart && b === 46) {
      lineStart = false
      continue
    }
    out.push(b)
    lineStart = b === 10
  }
  return Uint8Array.from(out)
}

/** The index just past `\r\n.\r\n` (or `.\r\n` at the very start), or -1. */
const findDataEnd = (buffer: Uint8Array): number => {
  if (buffer.length >= 3 && buffer[0] === 46 && buffer[1] === 13 && buffer[2] === 10) return 3
  for (let i = 0; i + 5 <= buffer.length; i++) {
    if (
      buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 46 && buffer[i + 3] === 13 &&
      buffer[i + 4] === 10
    ) return i + 5
  }
  return -1
}

interface Transaction {
  readonly sender: string
  readonly recipients: Array<string>
  readonly chunks: Array<Uint8Array>
  /** BDAT streamed, stage "data": the reply to the first chunk is held back until LAST, then the fault */
  heldChunkFault: boolean
}

type Mode =
  | { readonly _tag: "command" }
  | { readonly _tag: "data" }
  | { readonly _tag: "bdat"; readonly size: number; readonly last: boolean }

/** One server connection. */
export class SmtpModel {
  private buffer: Uint8Array = new Uint8Array(0)
  private mode: Mode = { _tag: "command" }
  private txn: Transaction | undefined
  /** After a fault (or QUIT) the server neither reads nor answers. */
  private dead = false
  /** The fault, once it happened: what the client had written by then. */
  fired: { readonly stage: Stage; readonly kind: FaultKind; readonly received: number } | undefined
  /** Bytes read from the client. */
  received = 0
  /** Whether an end of data (final dot, BDAT LAST) arrived. */
  endReceived = false
  /** Messages delivered on this connection. */
  readonly delivered: Array<Uint8Array> = []
  /** What happened, for failure messages. */
  readonly log: Array<string> = []

  constructor(readonly options: ServerOptions, private readonly io: ServerIo) {}

  /** MAIL commands read so far. */
  private mails = 0

  private get fault(): Fault | undefined {
    const armed = this.options.faultFrom === undefined || this.mails > this.options.faultFrom
    return this.fired === undefined && armed ? this.options.fault : undefined
  }

  private faultAt(stage: Stage): FaultKind | undefined {
    const fault = this.fault
    return fault !== undefined && fault.stage === stage ? fault.kind : undefined
  }

  private reply(text: string) {
    if (this.dead) return
    this.log.push(`S: ${text}`)
    this.io.send(encoder.encode(`${text}\r\n`))
  }

  /** Replaces the reply at `stage` by the fault. */
  private fire(stage: Stage, kind: FaultKind) {
    this.fired = { stage, kind, received: this.received }
    this.log.push(`fault: ${kind} at ${stage}`)
    this.options.onFault?.({ stage, kind })
    switch (kind) {
      case "close":
        this.dead = true
        this.io.close()
        return
      case "reset":
        this.dead = true
        this.io.reset()
        return
      case "stall":
        this.dead = true
        this.io.stopReading()
        return
      case "garbage":
        this.io.send(encoder.encode(GARBAGE))
        this.dead = true
        return
      case "421":
        this.io.send(encoder.encode(REPLY_421))
        this.dead = true
        this.io.close()
        return
      case "421-cut":
        this.io.send(encoder.encode(REPLY_421_CUT))
        this.dead = true
        this.io.close()
        return
      case "451":
        this.io.send(encoder.encode(REPLY_451))
        return
    }
  }

  start() {
    const kind = this.faultAt("greeting")
    if (kind !== undefined) return this.fire("greeting", kind)
    this.reply(`220 mx.test ${this.options.lmtp ? "LMTP" : "ESMTP"} fault model`)
  }

  receive(bytes: Uint8Array) {
    if (this.dead) return
    this.received += bytes.length
    this.buffer = this.buffer.length === 0 ? bytes.slice() : concat([this.buffer, bytes])
    this.process()
  }

  private process() {
    for (;;) {
      if (this.dead) return
      if (this.mode._tag === "command") {
        const lf = this.buffer.indexOf(10)
        if (lf === -1) return
        const line = latin1.decode(this.buffer.subarray(0, lf)).replace(/\r$/, "")
        this.buffer = this.buffer.slice(lf + 1)
        this.log.push(`C: ${line}`)
        const bdat = /^BDAT (\d+)( LAST)?$/i.exec(line)
        if (bdat !== null) this.mode = { _tag: "bdat", size: Number(bdat[1]), last: bdat[2] !== undefined }
        else this.command(line)
      } else if (this.mode._tag === "data") {
        const end = findDataEnd(this.buffer)
        if (end === -1) {
          const kind = this.faultAt("body")
          if (kind !== undefined && this.buffer.length > 0) this.fire("body", kind)
          return
        }
        const data = unstuff(this.buffer.subarray(0, end - 3))
        this.buffer = this.buffer.slice(end)
        this.mode = { _tag: "command" }
        this.log.push(`C: <message data: ${data.length} bytes>`)
        this.endOfData(data)
      } else {
        const { last, size } = this.mode
        if (this.buffer.length < size) return
        const chunk = this.buffer.slice(0, size)
        this.buffer = this.buffer.slice(size)
        this.mode = { _tag: "command" }
        this.log.push(`C: <BDAT ${size}${last ? " LAST" : ""}>`)
        this.bdatChunk(chunk, last)
      }
    }
  }

  private command(line: string) {
    const verb = line.split(" ")[0].toUpperCase()
    switch (verb) {
      case "EHLO":
      case "LHLO": {
        const kind = this.faultAt("ehlo")
        if (kind !== undefined) return this.fire("ehlo", kind)
        const features = [
          "mx.test greets you",
          ...(this.options.pipelining ? ["PIPELINING"] : []),
          ...(this.options.chunking ? ["CHUNKING"] : []),
          "8BITMIME"
        ]
        this.reply(features.map((f, i) => `250${i === features.length - 1 ? " " : "-"}${f}`).join("\r\n"))
        return
      }
      case "HELO":
        return this.reply("250 mx.test")
      case "MAIL": {
        const sender = /<([^>]*)>/.exec(line)?.[1] ?? ""
        this.mails++
        this.options.onMail?.(sender)
        const kind = this.faultAt("mail")
        if (kind !== undefined) {
          this.txn = undefined
          return this.fire("mail", kind)
        }
        this.txn = { sender, recipients: [], chunks: [], heldChunkFault: false }
        return this.reply("250 2.1.0 sender ok")
      }
      case "RCPT": {
        if (this.txn === undefined) return this.reply("503 5.5.1 MAIL first")
        const recipient = /<([^>]*)>/.exec(line)?.[1] ?? ""
        const kind = this.txn.recipients.length === 0 ? this.faultAt("rcpt") : undefined
        if (kind !== undefined) {
          this.fire("rcpt", kind)
          // a refusal (451) leaves the transaction without this recipient
          return
        }
        this.txn.recipients.push(recipient)
        return this.reply("250 2.1.5 recipient ok")
      }
      case "DATA": {
        if (this.txn === undefined || this.txn.recipients.length === 0) {
          return this.reply("503 5.5.1 no valid recipients")
        }
        const kind = this.faultAt("data")
        if (kind !== undefined) return this.fire("data", kind)
        this.mode = { _tag: "data" }
        return this.reply("354 go ahead")
      }
      case "RSET":
        this.txn = undefined
        return this.reply("250 2.0.0 reset")
      case "NOOP":
        return this.reply("250 2.0.0 ok")
      case "QUIT":
        this.reply("221 2.0.0 bye")
        this.dead = true
        this.io.close()
        return
      default:
        return this.reply("500 5.5.2 unknown command")
    }
  }

  private bdatChunk(chunk: Uint8Array, last: boolean) {
    const txn = this.txn
    if (txn === undefined || txn.recipients.length === 0) {
      // nothing to deliver to (a refused or missing envelope): the chunk is discarded
      return this.reply("503 5.5.1 no valid recipients")
    }
    txn.chunks.push(chunk)
    if (!last) {
      // "body": the fault in place of the reply to the first chunk, while the client is held
      // before it writes the rest of the message
      const body = txn.chunks.length === 1 ? this.faultAt("body") : undefined
      if (body !== undefined) return this.fire("body", body)
      if (txn.chunks.length === 1 && this.faultAt("data") !== undefined) txn.heldChunkFault = true
      if (txn.heldChunkFault) return
      this.reply("250 2.0.0 chunk accepted")
      const kind = txn.chunks.length === 1 ? this.faultAt("chunk") : undefined
      if (kind !== undefined) this.fire("chunk", kind)
      return
    }
    if (txn.heldChunkFault) {
      // every chunk is in, LAST included: now the fault, in place of the reply to the first chunk
      this.endReceived = true
      this.txn = undefined
      return this.fire("data", this.faultAt("data")!)
    }
    this.endOfData(concat(txn.chunks))
  }

  private endOfData(message: Uint8Array) {
    this.endReceived = true
    const txn = this.txn
    this.txn = undefined
    if (txn === undefined) return this.reply("503 5.5.1 no transaction")
    const kind = this.faultAt("end")
    // a fault after the end of data: the server took the message, then the reply was lost;
    // a 421 or 451 reply instead is a refusal
    if (kind === undefined || (kind !== "421" && kind !== "451")) this.deliver(message, txn.sender)
    if (kind !== undefined) return this.fire("end", kind)
    if (!this.options.lmtp) return this.reply("250 2.0.0 queued")
    txn.recipients.forEach((recipient, i) => {
      if (i === 1) {
        const between = this.faultAt("between")
        if (between !== undefined) return this.fire("between", between)
      }
      this.reply(`250 2.0.0 <${recipient}> delivered`)
    })
  }

  private deliver(message: Uint8Array, sender: string) {
    this.delivered.push(message)
    this.options.onDelivered?.(message, sender)
  }
}

/**
 * Whether a message Stream must wait before writing more (the gate of the `body` and `chunk`
 * stages): until the server has received the first part and faulted, then, unless it stalled,
 * until the client has noticed and closed the connection. The rest of the message (the end of data
 * above all) must not reach the socket before the client knows of the fault.
 */
export const holdsUpload = (model: SmtpModel | undefined, clientClosed: boolean): boolean => {
  const fault = model?.options.fault
  if (model === undefined || fault === undefined || (fault.stage !== "body" && fault.stage !== "chunk")) return false
  if (model.fired === undefined) return true
  return model.fired.kind !== "stall" && !clientClosed
}

/** The Message-ID of a message as the server received it. */
export const messageId = (message: Uint8Array): string | undefined =>
  /^Message-ID:\s*<?([^\s>]+)>?/im.exec(latin1.decode(message.subarray(0, 4096)))?.[1]
