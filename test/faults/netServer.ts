/**
 * The model server (`model.ts`) over real sockets: a node:net server on 127.0.0.1, port 0, each
 * connection played by a model with the options its index gives. A close is `socket.end()` (FIN),
 * a reset `socket.resetAndDestroy()` (RST), a stall `socket.pause()` (nothing more is read: the
 * client's writes block once the socket buffers are full).
 */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"
import { holdsUpload, type ServerOptions, SmtpModel } from "./model.js"

export interface NetConnection {
  readonly model: SmtpModel
  /** Whether the client closed (or reset) its side, as the server saw it. */
  readonly clientClosed: () => boolean
  /** Whether the server's socket is fully closed. */
  readonly closed: () => boolean
}

export interface NetServer {
  readonly port: number
  readonly connections: () => ReadonlyArray<NetConnection>
  /** The gate of a message Stream at the `body` / `chunk` stages (see `holdsUpload`), in real time. */
  readonly gate: Effect.Effect<void>
}

export const make = (options: (index: number) => ServerOptions): Effect.Effect<NetServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Net.Server; readonly state: NetServer; readonly sockets: Set<Net.Socket> }>(
      (resume) => {
        const connections: Array<NetConnection> = []
        const sockets = new Set<Net.Socket>()
        const server = Net.createServer((socket) => {
          sockets.add(socket)
          socket.setNoDelay(true)
          let clientClosed = false
          let closed = false
          socket.on("error", () => {
            clientClosed = true
          })
          socket.on("end", () => {
            clientClosed = true
          })
          socket.on("close", () => {
            clientClosed = true
            closed = true
            sockets.delete(socket)
          })
          const model = new SmtpModel(options(connections.length), {
            send: (bytes) => {
              if (socket.writable) socket.write(bytes)
            },
            close: () => {
              socket.end()
            },
            reset: () => {
              socket.resetAndDestroy()
            },
            stopReading: () => {
              socket.pause()
            }
          })
          connections.push({ model, clientClosed: () => clientClosed, closed: () => closed })
          socket.on("data", (data) => model.receive(new Uint8Array(data.buffer, data.byteOffset, data.length)))
          // a fault instead of the greeting waits until the client's connect has completed (a reset
          // at once would race it, and fail the connect itself)
          if (model.options.fault?.stage === "greeting") setTimeout(() => model.start(), 20)
          else model.start()
        })
        const gate = Effect.gen(function*() {
          for (let i = 0; i < 1500; i++) {
            const latest = connections[connections.length - 1]
            if (!holdsUpload(latest?.model, latest?.clientClosed() ?? false)) return
            yield* Effect.sleep("2 millis")
          }
          return yield* Effect.dieMessage("gate: the client never closed the faulted connection")
        })
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as Net.AddressInfo).port
          resume(Effect.succeed({ server, sockets, state: { port, connections: () => connections.slice(), gate } }))
        })
      }
    ),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ state }) => state))
