/**
 * An SMTP server in this process (the `smtp-server` package, a dev dependency) on 127.0.0.1 with
 * an ephemeral port: the in-process server of the tests (a third-party implementation, unlike the
 * package's own TestSmtpServer). It keeps every message it receives, byte for byte.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { AddressInfo } from "node:net"
import { SMTPServer, type SMTPServerOptions } from "smtp-server"

export interface Received {
  readonly from: string | false
  readonly to: ReadonlyArray<string>
  readonly mailParams: Readonly<Record<string, unknown>>
  readonly data: Buffer
  readonly secure: boolean
  readonly user: string | undefined
  readonly protocol: string
  readonly helo: string
}

export interface EmbeddedServer {
  readonly port: number
  readonly host: string
  readonly received: ReadonlyArray<Received>
  /** Resolves when `n` messages have been received. */
  readonly waitFor: (n: number) => Effect.Effect<ReadonlyArray<Received>>
  readonly server: SMTPServer
}

export const make = (
  options: SMTPServerOptions = {}
): Effect.Effect<EmbeddedServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<EmbeddedServer>((resume) => {
      const received: Array<Received> = []
      const waiters: Array<{ n: number; resolve: () => void }> = []
      const server = new SMTPServer({
        name: "mx.embedded.test",
        authOptional: true,
        disabledCommands: ["STARTTLS"],
        logger: false,
        size: 10 * 1024 * 1024,
        onData(stream, session, callback) {
          const chunks: Array<Buffer> = []
          stream.on("data", (c: Buffer) => chunks.push(c))
          stream.on("end", () => {
            const data = Buffer.concat(chunks)
            received.push({
              from: session.envelope.mailFrom === false ? false : session.envelope.mailFrom.address,
              to: session.envelope.rcptTo.map((r) => r.address),
              mailParams: session.envelope.mailFrom === false ? {} : session.envelope.mailFrom.args || {},
              data,
              secure: session.secure,
              user: session.user === undefined ? undefined : String(session.user),
              protocol: session.transmissionType,
              helo: session.hostNameAppearsAs
            })
            for (const w of waiters.splice(0)) {
              if (received.length >= w.n) w.resolve()
              else waiters.push(w)
            }
            callback(null, "Message queued as embedded-" + received.length)
          })
        },
        ...options
      })
      server.on("error", () => {})
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.server.address() as AddressInfo
        resume(Effect.succeed({
          port,
          host: "127.0.0.1",
          received,
          server,
          waitFor: (n) =>
            Effect.async<ReadonlyArray<Received>>((resume) => {
              if (received.length >= n) return resume(Effect.succeed(received))
              waiters.push({ n, resolve: () => resume(Effect.succeed(received)) })
            })
        }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => server.close(() => resume(Effect.void)))
  )
