/**
 * An in-memory `SmtpTransport` whose connections are played by the model server (`model.ts`):
 * for the scripted fault matrix on the TestClock. Unlike `ScriptedTransport` it can fault at any
 * point (before the greeting, in the middle of an upload), tell a reset (the read fails) from a
 * close (the read ends), stop reading (the client's writes block until it closes the
 * connection, as a full socket buffer would) and record every write the client attempted after
 * the fault.
 *
 * Sockets behave as `NodeSocket.fromDuplex`: a closed peer ends `run`, a reset fails it, writes
 * to a closed peer fail, closing the writer ends the connection only while a `run` is active.
 */
import { Socket } from "@effect/platform"
import { Effect, Layer, Queue } from "effect"
import { SmtpTransport } from "../../src/index.js"
import { holdsUpload, type ServerOptions, SmtpModel } from "./model.js"

type Event = Uint8Array | "close" | "reset"

/** A write the client attempted after the server's fault, and what became of it. */
export interface LateWrite {
  readonly text: string
  readonly outcome: "accepted" | "failed" | "blocked"
}

export interface MemoryConnection {
  readonly model: SmtpModel
  /** Everything the server read. */
  readonly written: () => string
  /** Writes the client attempted after the fault fired (a blocked write counts once). */
  readonly lateWrites: () => ReadonlyArray<LateWrite>
  /** Whether the client closed its side. */
  readonly clientClosed: () => boolean
  /** `run` calls still active on the connection's sockets. */
  readonly readers: () => number
  /** Writes still blocked (the server stopped reading). */
  readonly blockedWrites: () => number
}

export interface MemoryTransport {
  readonly layer: Layer.Layer<SmtpTransport.SmtpTransport>
  readonly connections: () => ReadonlyArray<MemoryConnection>
  readonly connection: (i: number) => MemoryConnection
  /** The gate of a message Stream at the `body` / `chunk` stages (see `holdsUpload`); yields only, no clock. */
  readonly gate: Effect.Effect<void>
}

const decoder = new TextDecoder()

class Connection implements MemoryConnection {
  readonly model: SmtpModel
  private readonly events: Queue.Queue<Event>
  private readonly all: Array<Uint8Array> = []
  private readonly late: Array<LateWrite> = []
  private serverClosed = false
  private stopped = false
  private closedByClient = false
  private running = 0
  private readonly blocked = new Set<(error: Socket.SocketError) => void>()

  constructor(options: ServerOptions, events: Queue.Queue<Event>) {
    this.events = events
    this.model = new SmtpModel(options, {
      send: (bytes) => {
        if (!this.serverClosed) Queue.unsafeOffer(this.events, bytes)
      },
      close: () => {
        if (this.serverClosed) return
        this.serverClosed = true
        Queue.unsafeOffer(this.events, "close")
      },
      reset: () => {
        if (this.serverClosed) return
        this.serverClosed = true
        Queue.unsafeOffer(this.events, "reset")
      },
      stopReading: () => {
        this.stopped = true
      }
    })
  }

  written = () => decoder.decode(concatAll(this.all))
  lateWrites = () => this.late.slice()
  clientClosed = () => this.closedByClient
  readers = () => this.running
  blockedWrites = () => this.blocked.size

  clientEnd() {
    if (this.closedByClient) return
    this.closedByClient = true
    for (const fail of this.blocked) fail(writeError("the client closed the connection"))
    this.blocked.clear()
    // as a destroyed socket: the reader's run ends
    Queue.unsafeOffer(this.events, "close")
  }

  socket(): Socket.Socket {
    const run = <_, E, R>(handler: (_: Uint8Array) => Effect.Effect<_, E, R> | void) =>
      Effect.gen(this, function*() {
        for (;;) {
          const event = yield* Queue.take(this.events)
          if (event === "close" || event === "reset") {
            // a closed or reset peer stays so for the next reader too
            Queue.unsafeOffer(this.events, event)
            if (event === "reset" && !this.closedByClient) {
              return yield* Effect.fail(
                new Socket.SocketGenericError({ reason: "Read", cause: new Error("read ECONNRESET (model)") })
              )
            }
            return
          }
          const result = handler(event)
          if (Effect.isEffect(result)) yield* result
        }
      }).pipe(
        Effect.ensuring(Effect.sync(() => this.running--)),
        (effect) => Effect.zipRight(Effect.sync(() => this.running++), effect)
      )
    const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
      Effect.suspend(() => {
        if (Socket.isCloseEvent(chunk)) {
          this.clientEnd()
          return Effect.void
        }
        const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk
        const late = this.model.fired !== undefined
        const record = (outcome: LateWrite["outcome"]) => {
          if (late) this.late.push({ text: decoder.decode(bytes.subarray(0, 200)), outcome })
        }
        if (this.closedByClient || this.serverClosed) {
          record("failed")
          return Effect.fail(writeError(this.closedByClient ? "write after close" : "EPIPE (the server closed)"))
        }
        if (this.stopped) {
          record("blocked")
          return Effect.async<void, Socket.SocketError>((resume) => {
            const fail = (error: Socket.SocketError) => resume(Effect.fail(error))
            this.blocked.add(fail)
            return Effect.sync(() => {
              this.blocked.delete(fail)
            })
          })
        }
        record("accepted")
        this.all.push(bytes.slice())
        this.model.receive(bytes)
        return Effect.void
      })
    return Socket.Socket.of({
      [Socket.TypeId]: Socket.TypeId,
      run,
      runRaw: run,
      writer: Effect.acquireRelease(Effect.succeed(write), () =>
        Effect.sync(() => {
          if (this.running > 0) this.clientEnd()
        }))
    })
  }
}

const writeError = (message: string) => new Socket.SocketGenericError({ reason: "Write", cause: new Error(message) })

const concatAll = (parts: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

/** Connection `i` is played by a model server with `options(i)`. */
export const make = (options: (index: number) => ServerOptions): Effect.Effect<MemoryTransport> =>
  Effect.sync(() => {
    const connections: Array<Connection> = []
    const service: SmtpTransport.SmtpTransport["Type"] = {
      localHostname: Effect.succeed("client.test"),
      connect: () =>
        Effect.gen(function*() {
          const events = yield* Queue.unbounded<Event>()
          const connection = new Connection(options(connections.length), events)
          connections.push(connection)
          yield* Effect.addFinalizer(() => Effect.sync(() => connection.clientEnd()))
          connection.model.start()
          const socket = connection.socket()
          return {
            socket,
            secure: false,
            upgradeTls: () => Effect.dieMessage("no TLS in the fault model"),
            close: Effect.sync(() => connection.clientEnd())
          } satisfies SmtpTransport.Connection
        })
    }
    const gate = Effect.gen(function*() {
      for (let i = 0; i < 10_000; i++) {
        const latest = connections[connections.length - 1]
        if (!holdsUpload(latest?.model, latest?.clientClosed() ?? false)) return
        yield* Effect.yieldNow()
      }
      return yield* Effect.dieMessage("gate: the client never noticed the fault")
    })
    return {
      layer: Layer.succeed(SmtpTransport.SmtpTransport, service),
      connections: () => connections.slice(),
      connection: (i) => {
        const c = connections[i]
        if (c === undefined) throw new Error(`no connection ${i} (there were ${connections.length})`)
        return c
      },
      gate
    } satisfies MemoryTransport
  })
