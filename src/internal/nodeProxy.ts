/**
 * The proxy handshake over a connected `node:net` socket: writes the codec's bytes, feeds it what
 * the proxy sends, and hands the socket back positioned at the first byte of the tunnel.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Net from "node:net"
import * as Proxy from "./proxy.js"

/**
 * Runs `handshake` on `socket` (connected to the proxy). On success, bytes the proxy sent after
 * its answer are put back (`unshift`) and the socket is left neither flowing nor paused, so the
 * next `data` listener receives them first. Interruption (the connect timeout) only detaches the
 * listeners: the caller owns the socket and destroys it.
 */
export const tunnel = (
  socket: Net.Socket,
  handshake: Proxy.Handshake,
  proxy: string
): Effect.Effect<void, Proxy.ProxyError> =>
  Effect.async<void, Proxy.ProxyError>((resume) => {
    let finished = false
    const cleanup = () => {
      socket.off("readable", onReadable)
      socket.off("end", onEnd)
      socket.off("close", onEnd)
      socket.off("error", onError)
    }
    const failWith = (reason: Proxy.ProxyFailureReason, detail: string, code?: number) => {
      if (finished) return
      finished = true
      cleanup()
      resume(Effect.fail(new Proxy.ProxyError({ proxy, reason, detail, ...(code === undefined ? {} : { code }) })))
    }
    function onReadable() {
      let chunk: Buffer | null
      while (!finished && (chunk = socket.read() as Buffer | null) !== null) {
        const step = handshake.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        switch (step._tag) {
          case "Continue":
            if (step.write !== undefined) socket.write(step.write)
            break
          case "Failed":
            failWith(step.failure.reason, step.failure.detail, step.failure.code)
            break
          case "Done":
            finished = true
            // removing the last 'readable' listener resets the stream to "no mode yet" (on the next
            // tick): a 'data' listener added later resumes it and gets the unshifted bytes first
            cleanup()
            if (step.rest.length > 0) socket.unshift(Buffer.from(step.rest))
            resume(Effect.void)
        }
      }
    }
    function onEnd() {
      failWith("closed", "closed the connection during the handshake")
    }
    function onError(error: Error) {
      failWith("closed", `failed during the handshake: ${error.message}`)
    }
    socket.on("readable", onReadable)
    socket.on("end", onEnd)
    socket.on("close", onEnd)
    socket.on("error", onError)
    socket.write(handshake.start)
    return Effect.sync(() => {
      finished = true
      cleanup()
    })
  })
