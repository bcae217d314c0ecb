import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as Net from "node:net"
import { resources } from "../support/resources.js"

/** A tiny line server: greets with `greeting`, answers NOOP and QUIT. */
const lineServer = (greeting: string) =>
  Effect.acquireRelease(
    Effect.async<Net.Server>((resume) => {
      const server = Net.createServer((socket) => {
        socket.on("error", () => {})
        socket.write(`${greeting}\r\n`)
        socket.on("data", (data) => {
          for (const line of data.toString().split("\r\n").filter((l) => l !== "")) {
            if (line === "QUIT") socket.end("221 bye\r\n")
            else socket.write("250 ok\r\n")
          }
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )

const portOf = (server: Net.Server) => (server.address() as Net.AddressInfo).port

const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 200)))

describe("resource safety", () => {
  it.live("1000 connect / fail / close cycles leave no socket or timer behind", () =>
    Effect.gen(function*() {
      const good = yield* lineServer("220 ready")
      const bad = yield* lineServer("554 go away")
      const closed = yield* lineServer("220 ready")
      const closedPort = portOf(closed)
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.close(() => resolve())))
      yield* settle
      const before = resources()
      for (let i = 0; i < 1000; i++) {
        switch (i % 4) {
          case 0: {
            // connect, talk, close (QUIT from the finalizer)
            const reply = yield* Effect.scoped(
              Effect.flatMap(
                SmtpClient.connect({ host: "127.0.0.1", port: portOf(good), localHostname: "c.test" }),
                (s) => s.noop
              )
            )
            assert.strictEqual(reply.code, 250)
            break
          }
          case 1: {
            const error = yield* Effect.flip(
              Effect.scoped(SmtpClient.connect({ host: "127.0.0.1", port: portOf(bad) }))
            )
            assert.strictEqual(error._tag, "SmtpConnectError")
            break
          }
          case 2: {
            const error = yield* Effect.flip(Effect.scoped(SmtpClient.connect({ host: "127.0.0.1", port: closedPort })))
            assert.strictEqual(error._tag, "SmtpConnectError")
            break
          }
          case 3: {
            // interrupted half-way: the scope still closes the socket
            yield* Effect.scoped(
              Effect.flatMap(
                SmtpClient.connect({ host: "127.0.0.1", port: portOf(good), localHostname: "c.test" }),
                (s) => Effect.interrupt.pipe(Effect.zipRight(s.noop))
              )
            ).pipe(Effect.exit)
            break
          }
        }
      }
      yield* settle
      const after = resources()
      assert.deepStrictEqual(after, before)
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped), { timeout: 120_000 })
})
