/**
 * The Cloudflare transport's logic against an in-memory stand-in for a `cloudflare:sockets`
 * Socket (web streams the test drives), so that it runs without workerd: the Socket adapter, the
 * write buffer, the STARTTLS hand-over (the stand-in refuses `startTls` on a locked stream, as
 * workerd does), the mapping of failures to typed errors, and the timeouts. workerd.test.ts runs
 * the same code in the real runtime.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Scope, TestClock } from "effect"
import type * as SmtpTransport from "effect-smtp/SmtpTransport"
import * as Internal from "../../src/internal/cloudflareTransport.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface Deferred<A> {
  readonly promise: Promise<A>
  readonly resolve: (value: A) => void
  readonly reject: (error: unknown) => void
}
const deferred = <A>(): Deferred<A> => {
  let resolve!: (value: A) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<A>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A stand-in for a `cloudflare:sockets` Socket. */
class FakeSocket implements Internal.CloudflareSocket {
  readonly readable: ReadableStream<Uint8Array>
  readonly writable: WritableStream<Uint8Array>
  readonly opened: Promise<unknown>
  readonly closed: Promise<unknown>
  readonly written: Array<string> = []
  /** Writes not yet acknowledged (`holdWrites`): ack them with `flush`. */
  readonly held: Array<Deferred<void>> = []
  holdWrites = false
  cancelled = false
  closes = 0
  /** The socket `startTls()` returns; made on demand. */
  upgraded: FakeSocket | undefined
  private reader!: ReadableStreamDefaultController<Uint8Array>
  private writer!: WritableStreamDefaultController

  constructor(
    readonly options: { readonly opened?: Promise<unknown>; readonly upgradeOpened?: Promise<unknown> } = {}
  ) {
    this.opened = options.opened ?? Promise.resolve({})
    this.closed = new Promise(() => {})
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.reader = controller
      },
      cancel: () => {
        this.cancelled = true
      }
    })
    this.writable = new WritableStream<Uint8Array>({
      start: (controller) => {
        this.writer = controller
      },
      write: (chunk) => {
        this.written.push(decoder.decode(chunk))
        if (!this.holdWrites) return
        const ack = deferred<void>()
        this.held.push(ack)
        return ack.promise
      }
    })
  }
  push(text: string) {
    this.reader.enqueue(encoder.encode(text))
  }
  end() {
    this.reader.close()
  }
  flush() {
    for (const ack of this.held.splice(0)) ack.resolve()
  }
  failWrites(error: Error) {
    for (const ack of this.held.splice(0)) ack.reject(error)
  }
  close() {
    this.closes++
    try {
      this.reader.error(new Error("This socket has been closed."))
    } catch {
      // already cancelled
    }
    this.writer.error(new Error("This socket has been closed."))
    return Promise.resolve()
  }
  startTls() {
    // workerd refuses (asynchronously, leaving the new socket unopened) a locked stream
    if (this.readable.locked) throw new TypeError("The ReadableStream has been locked to a reader.")
    if (this.writable.locked) throw new TypeError("This WritableStream is currently locked to a writer.")
    this.upgraded ??= new FakeSocket({ opened: this.options.upgradeOpened ?? Promise.resolve({}) })
    return this.upgraded
  }
}

const connectOptions = (options: Partial<SmtpTransport.ConnectOptions> = {}): SmtpTransport.ConnectOptions => ({
  host: "mx.example.test",
  port: 587,
  timeout: Duration.seconds(5),
  ...options
})

/** A transport whose connections are the given stand-ins, and the addresses it was asked for. */
const transport = (...sockets: Array<FakeSocket | Error>) => {
  const calls: Array<{ readonly hostname: string; readonly port: number; readonly secureTransport: string }> = []
  const service = Internal.make((address, options) => {
    calls.push({ ...address, secureTransport: options.secureTransport })
    const next = sockets.shift()
    if (next === undefined || next instanceof Error) throw next ?? new Error("no more sockets")
    return next
  })
  return { service, calls }
}

/** Reads from a Connection's socket into `chunks` in a forked fiber. */
const reading = (connection: SmtpTransport.Connection) =>
  Effect.gen(function*() {
    const chunks: Array<string> = []
    const fiber = yield* Effect.fork(connection.socket.run((chunk) => {
      chunks.push(decoder.decode(chunk))
    }))
    return { chunks, fiber }
  })

const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))

describe("CloudflareSmtpTransport (stand-in socket)", () => {
  it.scoped("reads chunks, writes bytes, and a server's end of stream ends run cleanly", () =>
    Effect.gen(function*() {
      const socket = new FakeSocket()
      const { calls, service } = transport(socket)
      const connection = yield* service.connect(connectOptions())
      assert.isFalse(connection.secure)
      assert.deepStrictEqual(calls, [{ hostname: "mx.example.test", port: 587, secureTransport: "starttls" }])
      const { chunks, fiber } = yield* reading(connection)
      socket.push("220 hello\r\n")
      yield* settle
      assert.deepStrictEqual(chunks, ["220 hello\r\n"])
      assert.strictEqual(connection.write!(encoder.encode("EHLO x\r\n")), Effect.void)
      const write = yield* Effect.scoped(connection.socket.writer)
      yield* write("NOOP\r\n")
      assert.deepStrictEqual(socket.written, ["EHLO x\r\n", "NOOP\r\n"])
      socket.end()
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
      assert.isUndefined(connection.tls?.())
    }))

  it.scoped("the fast write waits only while more than the buffer limit is being written", () =>
    Effect.gen(function*() {
      const socket = new FakeSocket()
      socket.holdWrites = true
      const connection = yield* transport(socket).service.connect(connectOptions())
      const half = new Uint8Array(Internal.WRITE_BUFFER_LIMIT / 2)
      assert.strictEqual(connection.write!(half), Effect.void)
      assert.strictEqual(connection.write!(half), Effect.void)
      // over the limit: handed over now, the Effect waits for the runtime to write
      const waiting = yield* Effect.fork(connection.write!(new Uint8Array(1)))
      yield* settle
      assert.isNull(waiting.unsafePoll())
      // the first is written: under the limit again
      socket.flush()
      yield* settle
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(waiting)))
      socket.flush()
      yield* settle
      socket.flush()
      yield* settle
      assert.deepStrictEqual(socket.written.map((w) => w.length), [half.length, half.length, 1])
    }))

  it.scoped("a failed write fails the waiting write and later ones, closes the socket and ends run with an error", () =>
    Effect.gen(function*() {
      const socket = new FakeSocket()
      socket.holdWrites = true
      const connection = yield* transport(socket).service.connect(connectOptions())
      const { fiber } = yield* reading(connection)
      const waiting = yield* Effect.fork(connection.write!(new Uint8Array(Internal.WRITE_BUFFER_LIMIT + 1)))
      yield* settle
      socket.failWrites(new Error("connection reset"))
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isFailure(exit))
      const later = yield* Effect.exit(connection.write!(encoder.encode("QUIT\r\n")))
      assert.isTrue(Exit.isFailure(later))
      assert.strictEqual(socket.closes, 1)
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
    }))

  it.scoped("STARTTLS: the reader is stopped with a read pending, both streams unlocked before startTls()", () =>
    Effect.gen(function*() {
      const plain = new FakeSocket()
      const connection = yield* transport(plain).service.connect(connectOptions())
      const first = yield* reading(connection)
      plain.push("220 go ahead\r\n")
      yield* settle
      assert.strictEqual(connection.write!(encoder.encode("STARTTLS\r\n")), Effect.void)
      // what the engine does: interrupt the reader (its read is pending), close the writer scope
      yield* Fiber.interrupt(first.fiber)
      const upgraded = yield* connection.upgradeTls({ servername: "MX.example.test", handshakeTimeout: "1 second" })
      assert.isTrue(plain.cancelled)
      assert.isTrue(upgraded.secure)
      assert.deepStrictEqual(upgraded.tls?.(), {
        protocol: undefined,
        cipher: undefined,
        certificate: undefined,
        authorized: true
      })
      const tls = plain.upgraded!
      const second = yield* reading(upgraded)
      tls.push("250 secure\r\n")
      yield* settle
      assert.deepStrictEqual(first.chunks, ["220 go ahead\r\n"])
      assert.deepStrictEqual(second.chunks, ["250 secure\r\n"])
      assert.strictEqual(upgraded.write!(encoder.encode("EHLO x\r\n")), Effect.void)
      yield* settle
      assert.deepStrictEqual(tls.written, ["EHLO x\r\n"])
      // the second upgrade is refused
      const again = yield* Effect.flip(upgraded.upgradeTls({}))
      assert.strictEqual(again._tag, "SmtpTlsError")
    }))

  it.effect("the scope closes the socket the connection is on (the TLS one after STARTTLS)", () =>
    Effect.gen(function*() {
      const plain = new FakeSocket()
      const scope = yield* Scope.make()
      const connection = yield* Scope.extend(transport(plain).service.connect(connectOptions()), scope)
      yield* connection.upgradeTls({})
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(plain.upgraded!.closes, 1)
    }))

  it.effect("a failed handshake is SmtpTlsError (reason other); a slow one is handshake-timeout", () =>
    Effect.gen(function*() {
      const refused = new FakeSocket({ upgradeOpened: Promise.reject(new Error("internal error; reference = x")) })
      const failed = yield* Effect.scoped(
        Effect.flatMap(transport(refused).service.connect(connectOptions()), (c) => Effect.flip(c.upgradeTls({})))
      )
      if (failed._tag !== "SmtpTlsError") return assert.fail(failed.message)
      assert.strictEqual(failed.reason, "other")
      assert.include(failed.message, "the TLS handshake failed")
      assert.strictEqual(refused.upgraded!.closes, 1)

      const slow = new FakeSocket({ upgradeOpened: new Promise(() => {}) })
      const fiber = yield* Effect.fork(Effect.scoped(
        Effect.flatMap(
          transport(slow).service.connect(connectOptions()),
          (c) => Effect.flip(c.upgradeTls({ handshakeTimeout: "2 seconds" }))
        )
      ))
      yield* TestClock.adjust("3 seconds")
      const timedOut = yield* Fiber.join(fiber)
      if (timedOut._tag !== "SmtpTlsError") return assert.fail(timedOut.message)
      assert.strictEqual(timedOut.reason, "handshake-timeout")
    }))

  it.effect("implicit TLS: a plaintext connection upgraded before any byte is read", () =>
    Effect.gen(function*() {
      const plain = new FakeSocket()
      const { calls, service } = transport(plain)
      const connection = yield* Effect.scoped(service.connect(connectOptions({ port: 465, tls: {} })))
      assert.isTrue(connection.secure)
      assert.strictEqual(calls[0].secureTransport, "starttls")
      assert.isDefined(plain.upgraded)
    }))

  it.effect("connect failures: thrown, refused (opened rejected), too slow, Unix socket, sourceAddress", () =>
    Effect.gen(function*() {
      const connect = (socket: FakeSocket | Error, options: Partial<SmtpTransport.ConnectOptions> = {}) =>
        Effect.flip(Effect.scoped(transport(socket).service.connect(connectOptions(options))))
      const thrown = yield* connect(new TypeError("Specified address could not be parsed."))
      assert.strictEqual(thrown._tag, "SmtpConnectError")
      const refused = new FakeSocket({
        opened: Promise.reject(new Error("proxy request failed, cannot connect to the specified address"))
      })
      const refusal = yield* connect(refused)
      assert.strictEqual(refusal._tag, "SmtpConnectError")
      assert.include(refusal.message, "mx.example.test:587")
      assert.strictEqual(refused.closes, 1)

      const fiber = yield* Effect.fork(connect(new FakeSocket({ opened: new Promise(() => {}) })))
      yield* TestClock.adjust("6 seconds")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "SmtpTimeout")

      const unix = yield* connect(new FakeSocket(), { path: "/run/smtp.sock" })
      assert.strictEqual(unix._tag, "SmtpConnectError")
      const bound = yield* connect(new FakeSocket(), { sourceAddress: { host: "192.0.2.1" } })
      assert.strictEqual(bound._tag, "SmtpConnectError")
    }))

  it.effect("an IPv6 literal keeps its brackets for the runtime", () =>
    Effect.gen(function*() {
      const { calls, service } = transport(new FakeSocket())
      yield* Effect.scoped(service.connect(connectOptions({ host: "[2001:db8::25]" })))
      assert.strictEqual(calls[0].hostname, "[2001:db8::25]")
    }))

  it.effect("TLS options Workers cannot honour fail before anything is opened", () =>
    Effect.gen(function*() {
      const cases: Array<[SmtpTransport.TlsOptions, string]> = [
        [{ ca: "-----BEGIN CERTIFICATE-----" }, "tls.ca"],
        [{ cert: "-----BEGIN CERTIFICATE-----" }, "tls.cert"],
        [{ minVersion: "TLSv1.2" }, "tls.minVersion"],
        [{ rejectUnauthorized: false }, "tls.rejectUnauthorized"],
        [{ servername: "other.example.test" }, "tls.servername"]
      ]
      for (const [tls, option] of cases) {
        const { calls, service } = transport(new FakeSocket())
        const error = yield* Effect.flip(Effect.scoped(service.connect(connectOptions({ tls }))))
        assert.strictEqual(error._tag, "SmtpTlsError")
        assert.include(error.message, option)
        assert.lengthOf(calls, 0)
        // STARTTLS: refused before startTls()
        const plain = new FakeSocket()
        const upgrade = yield* Effect.scoped(
          Effect.flatMap(transport(plain).service.connect(connectOptions()), (c) => Effect.flip(c.upgradeTls(tls)))
        )
        assert.strictEqual(upgrade._tag, "SmtpTlsError")
        assert.isUndefined(plain.upgraded)
      }
      // what it can honour passes
      assert.isUndefined(
        Internal.unsupportedTls({ servername: "MX.Example.Test", rejectUnauthorized: true }, "mx.example.test")
      )
    }))

  it.effect("localHostname: an address literal unless given", () =>
    Effect.gen(function*() {
      const connect: Internal.Connect = () => new FakeSocket()
      assert.strictEqual(yield* Internal.make(connect).localHostname, "[127.0.0.1]")
      assert.strictEqual(
        yield* Internal.make(connect, { localHostname: "worker.example" }).localHostname,
        "worker.example"
      )
    }))
})
