/**
 * What the sendBatch race tests share: the connection, the EHLO replies, numbered items and the
 * scripted steps one message draws with DATA or with BDAT (each BDAT message after the first
 * preceded by RSET), and a real-time sleep.
 */
import { Socket } from "@effect/platform"
import { Effect, Layer } from "effect"
import type { SmtpConnection } from "effect-smtp"
import { SmtpTransport } from "../../src/index.js"

export const connectOptions = { host: "mx.test", security: "none", timeout: "10 seconds" } as const
export const PIPELINING = "250-mx.test\r\n250 PIPELINING"
export const CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250 CHUNKING"

export const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
export const item = (i: number): SmtpConnection.BatchItem => ({
  from: "a@x.test",
  to: `r${i}@x.test`,
  message: body(i)
})

/**
 * An item whose recipient getter throws (a JavaScript caller's object): reading it is a defect,
 * unlike an item that is not a BatchItem (its own NotSent outcome).
 */
export const throwingItem = (): SmtpConnection.BatchItem =>
  ({
    from: "a@x.test",
    get to(): string {
      throw new Error("a getter that throws")
    },
    message: "x"
  }) as SmtpConnection.BatchItem

/** Message `i` with DATA, every reply positive. */
export const dataSteps = (i: number) => [
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: `${body(i)}.\r\n`, reply: `250 queued ${i}` }
]

/** Message `i` with BDAT (RSET first, but for the first), every reply positive. */
export const bdatSteps = (i: number, message: (i: number) => string = body) => [
  ...(i === 1 ? [] : [{ expect: "RSET", reply: "250 reset" }]),
  { expect: "MAIL FROM:<a@x.test>", reply: "250 ok" },
  { expect: `RCPT TO:<r${i}@x.test>`, reply: "250 ok" },
  { expect: `BDAT ${message(i).length} LAST\r\n${message(i)}`, reply: `250 queued ${i}` }
]

/** A failed write of the Socket, as Node's (an EPIPE, a destroyed socket). */
export const writeFailure = (message: string) =>
  Effect.fail(new Socket.SocketGenericError({ reason: "Write", cause: new Error(message) }))

export const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** The transport of `layer` with each connection it opens changed by `f`. */
const mapConnections = (
  layer: Layer.Layer<SmtpTransport.SmtpTransport>,
  f: (connection: SmtpTransport.Connection) => SmtpTransport.Connection
): Layer.Layer<SmtpTransport.SmtpTransport> =>
  Layer.effect(
    SmtpTransport.SmtpTransport,
    Effect.map(SmtpTransport.SmtpTransport, (transport) => ({
      ...transport,
      connect: (options: Parameters<typeof transport.connect>[0]) => Effect.map(transport.connect(options), f)
    }))
  ).pipe(Layer.provide(layer))

/**
 * The transport of `layer` with the Socket of each connection it opens changed by `f` (given the
 * connection's number, from 0); writes all go through the Socket's writer (no synchronous write).
 */
export const withSocket = (
  layer: Layer.Layer<SmtpTransport.SmtpTransport>,
  f: (socket: Socket.Socket, connection: number) => Socket.Socket
): Layer.Layer<SmtpTransport.SmtpTransport> => {
  let opened = 0
  return mapConnections(layer, (connection) => ({
    ...connection,
    write: undefined,
    socket: f(connection.socket, opened++)
  }))
}

/**
 * The transport of `layer` with each connection's synchronous write replaced: `write(bytes, write)`
 * gets the original (a socket whose buffer is full: the bytes handed over, the Effect waiting).
 */
export const withWrite = (
  layer: Layer.Layer<SmtpTransport.SmtpTransport>,
  write: (
    bytes: Uint8Array,
    original: NonNullable<SmtpTransport.Connection["write"]>
  ) => ReturnType<NonNullable<SmtpTransport.Connection["write"]>>
): Layer.Layer<SmtpTransport.SmtpTransport> =>
  mapConnections(layer, (connection) => ({
    ...connection,
    write: (bytes: Uint8Array) => write(bytes, connection.write!)
  }))

/**
 * The transport of `layer` with each connection's Socket writer wrapped: `write(text, chunk, write)`
 * sees every byte chunk (and its text) and gets the original writer (a failure, a delay, a gate).
 */
export const withSocketWriter = (
  layer: Layer.Layer<SmtpTransport.SmtpTransport>,
  write: (
    text: string,
    chunk: Uint8Array,
    original: (chunk: Uint8Array) => Effect.Effect<void, Socket.SocketError>
  ) => Effect.Effect<void, Socket.SocketError>
): Layer.Layer<SmtpTransport.SmtpTransport> =>
  mapConnections(layer, (connection) => ({
    ...connection,
    socket: Socket.Socket.of({
      ...connection.socket,
      writer: Effect.map(
        connection.socket.writer,
        (original) => (chunk: Uint8Array | string | Socket.CloseEvent) =>
          chunk instanceof Uint8Array ? write(new TextDecoder().decode(chunk), chunk, original) : original(chunk)
      )
    })
  }))
