/**
 * What the adapters of the test server share: its captures as Effects, decoded once each.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as TestServer from "../testing/TestServer.js"
import type * as TestTransport from "../testing/TestTransport.js"
import type * as Protocol from "./testServer.js"

/** The captured messages of a test server as Effects: shared by its adapters. */
export const inspect = (server: Protocol.Server): Omit<TestTransport.Service, "transport"> => {
  const decoded = new WeakMap<TestServer.Received, TestServer.Captured>()
  const decode = (received: TestServer.Received) => {
    const cached = decoded.get(received)
    return cached !== undefined ?
      Effect.succeed(cached) :
      Effect.tap(TestServer.decode(received), (captured) => Effect.sync(() => decoded.set(received, captured)))
  }
  const messages = Effect.suspend(() => Effect.forEach(server.received.slice(), decode))
  const awaitMessages = (n: number) =>
    Effect.zipRight(
      Effect.async<void>((resume) => {
        if (server.received.length >= n) return resume(Effect.void)
        const remove = server.onCapture(() => {
          if (server.received.length >= n) {
            remove()
            resume(Effect.void)
          }
        })
        return Effect.sync(remove)
      }),
      messages
    )
  return {
    received: Effect.sync(() => server.received.slice()),
    messages,
    awaitMessages,
    transcript: (i) => (server.transcripts[i ?? server.transcripts.length - 1] ?? []).slice(),
    connections: () => server.connections,
    clear: Effect.sync(() => {
      server.received.length = 0
    })
  }
}
