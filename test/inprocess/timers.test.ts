/**
 * Timeouts under Effect's own clock, over real sockets: the connect timeout and the reply
 * watchdog are host timers in the connection's callbacks, not races between fibers (a TestClock
 * drives the fiber form: the scripted and fault tests). Each still fires at its deadline, and
 * nothing of them is left once the Scope closes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, RuntimeFlags, RuntimeFlagsPatch, Stream, Supervisor } from "effect"
import { SmtpClient, SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import { testPki } from "../support/certs.js"
import { resources } from "../support/resources.js"
import * as EmbeddedServer from "../support/smtpServer.js"

/** A pause that ends from a promise (an Effect.sleep's own timer would still be listed). */
const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 50)))

/**
 * A line server: greets (unless `greet` is false) and writes what `answer` gives for each line
 * (nothing when it gives undefined).
 */
const lineServer = (answer: (line: string) => string | undefined, greet = true) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Net.Server; readonly sockets: Set<Net.Socket> }>((resume) => {
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((socket) => {
        sockets.add(socket)
        socket.on("error", () => {})
        socket.on("close", () => sockets.delete(socket))
        if (greet) socket.write("220 ready\r\n")
        socket.on("data", (data) => {
          for (const line of data.toString().split("\r\n").filter((l) => l !== "")) {
            const reply = answer(line)
            if (reply !== undefined) socket.write(`${reply}\r\n`)
          }
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  )

/**
 * A listening socket that never accepts, its queue (backlog 0) filled by one connection: a dial
 * to it stays in SYN_SENT until the client gives up. (Node's own servers accept at once:
 * Python's socket module holds the listener.)
 */
const unacceptingPort = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly child: ChildProcess.ChildProcess; readonly filler: Net.Socket }>(
    (resume) => {
      const child = ChildProcess.spawn("python3", [
        "-c",
        "import socket, sys\n" +
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)\n" +
        "print(s.getsockname()[1], flush=True)\n" +
        "sys.stdin.read()\n"
      ], { stdio: ["pipe", "pipe", "inherit"] })
      child.stdout.once("data", (data: Buffer) => {
        const port = Number(data.toString().trim())
        const filler = Net.connect({ host: "127.0.0.1", port })
        filler.on("error", () => {})
        filler.once("connect", () => resume(Effect.succeed({ port, child, filler })))
      })
    }
  ),
  ({ child, filler }) =>
    Effect.async<void>((resume) => {
      filler.destroy()
      child.once("exit", () => resume(Effect.void))
      child.stdin?.end()
    })
)

/**
 * Tracks the host timers made while in scope (`setTimeout` wrapped): `pending` lists the delays of
 * those neither cancelled nor fired.
 */
const trackTimers = Effect.acquireRelease(
  Effect.sync(() => {
    const set = globalThis.setTimeout
    const clear = globalThis.clearTimeout
    const live = new Map<unknown, number>()
    globalThis.setTimeout = ((callback: (...args: Array<unknown>) => void, ms?: number, ...args: Array<unknown>) => {
      const handle = set(
        (...a: Array<unknown>) => {
          live.delete(handle)
          callback(...a)
        },
        ms,
        ...args
      )
      live.set(handle, ms ?? 0)
      return handle
    }) as typeof setTimeout
    globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
      live.delete(handle)
      clear(handle)
    }) as typeof clearTimeout
    return {
      pending: () => [...live.values()],
      restore: () => Object.assign(globalThis, { setTimeout: set, clearTimeout: clear })
    }
  }),
  (tracker) => Effect.sync(tracker.restore)
)

/** Counts the fibers started inside `effect` (a Supervisor on every fiber it forks). */
class Forks extends Supervisor.AbstractSupervisor<void> {
  started = 0
  value = Effect.void
  override onStart() {
    this.started++
  }
}

describe("timeouts under Effect's clock (host timers)", () => {
  it.live("a dial that never completes ends at the connect timeout, and leaves no socket or timer", () =>
    Effect.gen(function*() {
      const { port } = yield* unacceptingPort
      yield* settle
      const before = resources()
      const started = Date.now()
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({ host: "127.0.0.1", port, timeout: "300 millis", localHostname: "c.test" }))
      )
      const elapsed = Date.now() - started
      assert.strictEqual(error._tag, "SmtpTimeout")
      assert.strictEqual(error.message, `Timed out after 300 ms: connecting to 127.0.0.1:${port}`)
      assert.isAtLeast(elapsed, 290)
      assert.isBelow(elapsed, 3000)
      yield* settle
      assert.deepStrictEqual(resources(), before)
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  it.live("a reply timeout shorter than the watchdog's period (1 s) ends the wait at its own deadline", () =>
    Effect.gen(function*() {
      // greets and answers EHLO, then never answers again
      const { server, sockets } = yield* lineServer((line) => (line.startsWith("EHLO") ? "250 ok" : undefined))
      const port = (server.address() as Net.AddressInfo).port
      yield* settle
      const before = resources()
      const error = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({
          host: "127.0.0.1",
          port,
          timeout: "150 millis",
          closeTimeout: "100 millis",
          localHostname: "c.test"
        })
        // idle past the greeting's deadline: the watchdog's next check is now a second away, and
        // the NOOP's deadline, nearer, must bring it forward
        yield* Effect.sleep("200 millis")
        const started = Date.now()
        const error = yield* Effect.flip(smtp.noop)
        return { error, elapsed: Date.now() - started }
      }))
      assert.strictEqual(error.error._tag, "SmtpTimeout")
      assert.strictEqual(error.error.message, "Timed out after 150 ms: waiting for the reply to NOOP")
      assert.isAtLeast(error.elapsed, 140)
      assert.isBelow(error.elapsed, 700)
      for (const socket of sockets) socket.destroy()
      yield* settle
      // (a timer of Effect's scheduler may be listed in either snapshot: none may be added)
      const { Timeout: timersAfter = 0, ...after } = resources()
      const { Timeout: timersBefore = 0, ...rest } = before
      assert.deepStrictEqual(after, rest)
      assert.isAtMost(timersAfter, timersBefore)
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  it.live("a greeting that never comes ends at the reply timeout", () =>
    Effect.gen(function*() {
      const { server } = yield* lineServer(() => undefined, false)
      const port = (server.address() as Net.AddressInfo).port
      const started = Date.now()
      const error = yield* Effect.flip(
        Effect.scoped(SmtpClient.connect({ host: "127.0.0.1", port, timeout: "150 millis", localHostname: "c.test" }))
      )
      assert.strictEqual(error.message, "Timed out after 150 ms: waiting for the reply to <greeting>")
      assert.isAtLeast(Date.now() - started, 140)
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  it.live("a connect interrupted before its watchdog starts leaves no timer (a writer that takes a moment to open)", () =>
    Effect.gen(function*() {
      const { server } = yield* lineServer(() => undefined, false)
      const port = (server.address() as Net.AddressInfo).port
      const node = yield* SmtpTransport.SmtpTransport.pipe(Effect.provide(NodeSmtpTransport.layer))
      const opening = yield* Deferred.make<void>()
      // the greeting's wait is registered, then the engine waits for the socket's writer
      const slowWriter = Layer.succeed(SmtpTransport.SmtpTransport, {
        ...node,
        connect: (options) =>
          Effect.map(node.connect(options), (connection) => ({
            ...connection,
            socket: {
              ...connection.socket,
              writer: Effect.zipRight(
                Deferred.succeed(opening, undefined),
                Effect.zipRight(Effect.sleep("50 millis"), connection.socket.writer)
              )
            }
          }))
      })
      const timers = yield* trackTimers
      const fiber = yield* Effect.fork(
        Effect.scoped(SmtpClient.connect({ host: "127.0.0.1", port, timeout: "200 millis", localHostname: "c.test" }))
          .pipe(Effect.provide(slowWriter))
      )
      yield* Deferred.await(opening)
      yield* Fiber.interrupt(fiber)
      yield* settle
      // every timer made since is cancelled or has fired (the greeting's, left armed, would fire
      // into a half-made engine)
      assert.deepStrictEqual(timers.pending(), [])
    }).pipe(Effect.scoped))

  it.live("a connection forks only its reader: the watchdog and the connect timeout are no fibers", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const forks = new Forks()
      const counted = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(
          Effect.supervised(forks),
          Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
        )
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* counted(SmtpClient.connect({ host: server.host, port: server.port, timeout: "5 seconds" }))
        assert.strictEqual(forks.started, 1)
        yield* counted(smtp.sendmail("a@example.test", "b@example.test", "Subject: x\r\n\r\ny\r\n"))
        assert.strictEqual(forks.started, 1)
      }))
      yield* server.waitFor(1)
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  // (the close's QUIT is bounded by a race, Effect.timeout: it may wait for the session held by
  // another fiber, which only an interruption ends)
  it.live("the close against a server that never answers QUIT ends at closeTimeout, and closes the socket", () =>
    Effect.gen(function*() {
      const { server, sockets } = yield* lineServer((line) => (line === "QUIT" ? undefined : "250 ok"))
      const port = (server.address() as Net.AddressInfo).port
      const timers = yield* trackTimers
      let closing = 0
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({
          host: "127.0.0.1",
          port,
          closeTimeout: "200 millis",
          localHostname: "c.test"
        })
        yield* smtp.noop
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            closing = Date.now()
          })
        )
      }))
      const elapsed = Date.now() - closing
      assert.isAtLeast(elapsed, 190)
      assert.isBelow(elapsed, 2000)
      yield* settle
      assert.strictEqual(sockets.size, 0, "the server saw the client close")
      assert.deepStrictEqual(timers.pending(), [])
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  it.live("the close while another fiber holds the session (a message Stream that never ends) gives up its wait at closeTimeout", () =>
    Effect.gen(function*() {
      const { server } = yield* lineServer((
        line
      ) => (line === "DATA" ? "354 go" : line === "QUIT" ? "221 bye" : "250 ok"))
      const port = (server.address() as Net.AddressInfo).port
      const timers = yield* trackTimers
      const started = yield* Deferred.make<void>()
      let closing = 0
      const stuck = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({
          host: "127.0.0.1",
          port,
          closeTimeout: "200 millis",
          localHostname: "c.test"
        })
        // holds the session while it waits for a body that never comes (outside this Scope)
        const stuck = yield* Effect.forkDaemon(
          smtp.sendmail(
            "a@example.test",
            "b@example.test",
            Stream.concat(
              Stream.fromEffect(Deferred.succeed(started, undefined).pipe(Effect.as(new Uint8Array([104, 105])))),
              Stream.never
            )
          )
        )
        yield* Deferred.await(started)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            closing = Date.now()
          })
        )
        return stuck
      }))
      const elapsed = Date.now() - closing
      assert.isAtLeast(elapsed, 190)
      assert.isBelow(elapsed, 2000)
      yield* Fiber.interrupt(stuck)
      yield* settle
      assert.deepStrictEqual(timers.pending(), [])
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))

  it.live("so does one over TLS: the handshake's timeout is a timer too (implicit TLS, then STARTTLS: a reader each)", () =>
    Effect.gen(function*() {
      const { ca, server: cert } = yield* Effect.promise(() => testPki())
      const forks = new Forks()
      const counted = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(
          Effect.supervised(forks),
          Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
        )
      for (const secure of [true, false]) {
        const server = yield* EmbeddedServer.make({ disabledCommands: [], key: cert.key, cert: cert.cert, secure })
        forks.started = 0
        yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* counted(SmtpClient.connect({
            host: "127.0.0.1",
            port: server.port,
            security: secure ? "tls" : "starttls",
            tls: { ca: ca.cert, servername: "localhost", handshakeTimeout: "5 seconds" }
          }))
          assert.isTrue(yield* smtp.isSecure)
          // STARTTLS stops the plaintext reader and starts one over TLS
          assert.strictEqual(forks.started, secure ? 1 : 2)
        }))
      }
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))
})
