/** A raw TCP server on 127.0.0.1:0 whose per-connection behaviour the test writes by hand. */
import { Effect, type Scope } from "effect"
import * as Net from "node:net"

export interface RawServer {
  readonly port: number
  readonly server: Net.Server
  /** Every line each connection received (CRLF stripped), in order. */
  readonly lines: Array<Array<string>>
}

export const make = (
  onConnection: (socket: Net.Socket, lines: Array<string>) => void
): Effect.Effect<RawServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<RawServer>((resume) => {
      const lines: Array<Array<string>> = []
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
        const mine: Array<string> = []
        lines.push(mine)
        onConnection(socket, mine)
      })
      ;(server as any).__sockets = sockets
      server.listen(0, "127.0.0.1", () => {
        resume(Effect.succeed({ port: (server.address() as Net.AddressInfo).port, server, lines }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        for (const s of (server as any).__sockets as Set<Net.Socket>) s.destroy()
        server.close(() => resume(Effect.void))
      })
  )

/** Calls `onLine` for each CRLF-terminated line from the client, while in line mode. */
export const onLines = (socket: Net.Socket, lines: Array<string>, onLine: (line: string) => void) => {
  let buffer = ""
  const listener = (data: Buffer) => {
    buffer += data.toString("latin1")
    let i: number
    while ((i = buffer.indexOf("\r\n")) !== -1) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 2)
      lines.push(line)
      onLine(line)
    }
  }
  socket.on("data", listener)
  return () => socket.off("data", listener)
}
