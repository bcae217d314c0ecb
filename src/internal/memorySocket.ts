/**
 * An in-memory `Socket` whose other end is a server object in this process: what the client
 * writes goes to `peer.receive` at once, what the server sends is queued in `outbox` and read by
 * `run`. It behaves as `NodeSocket.fromDuplex` does where the engine can tell.
 *
 * @internal
 */
import * as Socket from "@effect/platform/Socket"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"

/** A chunk from the server, or the server's close. */
export type Event = Uint8Array | "close"

/** The server end. */
export interface Peer {
  /** Whether the server closed the connection (writes then fail, as EPIPE). */
  readonly isClosed: () => boolean
  readonly receive: (chunk: Uint8Array) => void
  /** The client closed its side. */
  readonly clientEnd: () => void
}

const encoder = new TextEncoder()

export const make = (outbox: Queue.Queue<Event>, peer: Peer): Socket.Socket => {
  // like NodeSocket.fromDuplex: closing the writer ends the connection only while a run is active
  let running = 0
  const run = <_, E, R>(handler: (_: Uint8Array) => Effect.Effect<_, E, R> | void) =>
    Effect.gen(function*() {
      for (;;) {
        const event = yield* Queue.take(outbox)
        if (event === "close") {
          // a closed peer stays closed for the next reader too
          Queue.unsafeOffer(outbox, "close")
          return
        }
        const result = handler(event)
        if (Effect.isEffect(result)) yield* result
      }
    }).pipe(
      Effect.ensuring(Effect.sync(() => running--)),
      (effect) => Effect.zipRight(Effect.sync(() => running++), effect)
    )
  const write = (chunk: Uint8Array | string | Socket.CloseEvent): Effect.Effect<void, Socket.SocketError> =>
    Effect.suspend(() => {
      if (Socket.isCloseEvent(chunk)) {
        peer.clientEnd()
        return Effect.void
      }
      if (peer.isClosed()) {
        return Effect.fail(
          new Socket.SocketGenericError({
            reason: "Write",
            cause: new Error("EPIPE (the server closed the connection)")
          })
        )
      }
      peer.receive(typeof chunk === "string" ? encoder.encode(chunk) : chunk)
      return Effect.void
    })
  return Socket.Socket.of({
    [Socket.TypeId]: Socket.TypeId,
    run,
    runRaw: run,
    writer: Effect.acquireRelease(Effect.succeed(write), () =>
      Effect.sync(() => {
        if (running > 0) peer.clientEnd()
      }))
  })
}
