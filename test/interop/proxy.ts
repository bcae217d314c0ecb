/**
 * A recording TCP proxy for the interop suites: the client connects to the proxy, the proxy to the real peer, and
 * every chunk is recorded in arrival order, per connection. Since a reply is recorded before it is forwarded, the
 * order of the entries is causal: a client chunk recorded before the server's reply to MAIL was sent before the
 * client could have seen that reply (what PIPELINING allows and nothing else does).
 *
 * Only for plaintext sessions (the proxy does not terminate TLS). Only node:net and effect.
 */
import { Effect, type Scope } from "effect"
import * as net from "node:net"

/** One chunk that went through the proxy. */
export interface ProxyEntry {
  /** 0 for the first connection accepted, 1 for the next, ... */
  readonly connection: number
  readonly from: "client" | "server"
  readonly data: Buffer
}

/** A running proxy: connect the client to `host:port`. */
export interface RecordingProxy {
  readonly host: string
  readonly port: number
  /** Every chunk so far, in arrival order. */
  readonly entries: () => ReadonlyArray<ProxyEntry>
  /** What the client sent on a connection (default: the first), as latin1 text. */
  readonly clientText: (connection?: number) => string
  /**
   * The client's bytes on a connection grouped into "flights": everything the client sent between two server
   * chunks. `["EHLO x\r\n", "MAIL ...\r\nRCPT ...\r\nDATA\r\n", ...]` shows a pipelined transaction.
   */
  readonly clientFlights: (connection?: number) => ReadonlyArray<string>
}

/** Options of `recordingProxy`. */
export interface ProxyOptions {
  /**
   * Rewrites each chunk from the server before the client sees it (the recording keeps the original), e.g. to
   * hide an EHLO keyword. Works on chunks, not lines: fine for the short replies of a loopback server.
   */
  readonly rewriteServer?: ((data: Buffer) => Buffer) | undefined
}

/** Starts a proxy to `target` on 127.0.0.1 (port 0), closed with the Scope. */
export const recordingProxy = (
  target: { readonly host: string; readonly port: number },
  options: ProxyOptions = {}
): Effect.Effect<RecordingProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: net.Server; readonly sockets: Set<net.Socket>; readonly proxy: RecordingProxy }>(
      (resume) => {
        const entries: Array<ProxyEntry> = []
        const sockets = new Set<net.Socket>()
        let connections = 0
        const server = net.createServer((client) => {
          const connection = connections++
          const upstream = net.connect({ host: target.host, port: target.port })
          for (const s of [client, upstream]) {
            sockets.add(s)
            s.on("close", () => sockets.delete(s))
          }
          client.on("data", (data) => {
            entries.push({ connection, from: "client", data: Buffer.from(data) })
            upstream.write(data)
          })
          upstream.on("data", (data) => {
            entries.push({ connection, from: "server", data: Buffer.from(data) })
            client.write(options.rewriteServer === undefined ? data : options.rewriteServer(data))
          })
          client.on("end", () => upstream.end())
          upstream.on("end", () => client.end())
          client.on("error", () => upstream.destroy())
          upstream.on("error", () => client.destroy())
          client.on("close", () => upstream.destroy())
          upstream.on("close", () => client.destroy())
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address() as net.AddressInfo
          const of = (connection: number) => entries.filter((e) => e.connection === connection)
          const proxy: RecordingProxy = {
            host: "127.0.0.1",
            port: address.port,
            entries: () => entries.slice(),
            clientText: (connection = 0) =>
              Buffer.concat(of(connection).filter((e) => e.from === "client").map((e) => e.data)).toString("latin1"),
            clientFlights: (connection = 0) => {
              const flights: Array<string> = []
              let current: string | undefined
              for (const e of of(connection)) {
                if (e.from === "server") {
                  if (current !== undefined) flights.push(current)
                  current = undefined
                } else {
                  current = (current ?? "") + e.data.toString("latin1")
                }
              }
              if (current !== undefined) flights.push(current)
              return flights
            }
          }
          resume(Effect.succeed({ server, sockets, proxy }))
        })
      }
    ),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))
