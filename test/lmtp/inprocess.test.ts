/**
 * LMTP against smtp-server in LMTP mode (`lmtp: true`) in this process, over TCP (through
 * EmbeddedServer) and over a Unix domain socket (an SMTPServer listening on a path). smtp-server
 * refuses EHLO and HELO in LMTP mode, so every delivery here also shows that LHLO was sent; its
 * `onData` callback takes an array with one response per accepted recipient, which it sends as the
 * per-recipient replies after the data.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope, Stream } from "effect"
import { Message, SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from "smtp-server"
import * as EmbeddedServer from "../support/smtpServer.js"
import { failureOf, plainDelivery } from "./support.js"

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

const MESSAGE = "From: a@example.test\r\nTo: alice@example.test\r\nSubject: lmtp\r\n\r\n.leading dot\r\nbody\r\n"

interface Received {
  readonly from: string | false
  readonly to: ReadonlyArray<string>
  readonly data: Buffer
  readonly helo: string
  readonly protocol: string
}

/**
 * The behaviour of a small delivery agent: `ghost@` does not exist (550 at RCPT), `full@` is
 * over quota (552 after the data), everyone else gets the message.
 */
const deliveryAgent = (received: Array<Received>): Pick<SMTPServerOptions, "onRcptTo" | "onData"> => ({
  onRcptTo(address, _session, callback) {
    if (address.address.startsWith("ghost@")) {
      return callback(Object.assign(new Error(`<${address.address}> User doesn't exist`), { responseCode: 550 }))
    }
    callback()
  },
  onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
    const chunks: Array<Buffer> = []
    stream.on("data", (c: Buffer) => chunks.push(c))
    stream.on("end", () => {
      received.push({
        from: session.envelope.mailFrom === false ? false : session.envelope.mailFrom.address,
        to: session.envelope.rcptTo.map((r) => r.address),
        data: Buffer.concat(chunks),
        helo: session.hostNameAppearsAs,
        protocol: session.transmissionType
      })
      // one response per accepted recipient, in RCPT order
      callback(
        null,
        session.envelope.rcptTo.map((r) =>
          r.address.startsWith("full@") ?
            Object.assign(new Error(`<${r.address}> Quota exceeded (mailbox for user is full)`), {
              responseCode: 552
            }) :
            `<${r.address}> saved`
        ) as any
      )
    })
  }
})

/** smtp-server in LMTP mode on a Unix socket in a fresh temporary folder. */
const unixLmtpServer = (options: SMTPServerOptions) =>
  Effect.acquireRelease(
    Effect.async<{ readonly socketPath: string; readonly dir: string; readonly server: SMTPServer }>((resume) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-smtp-lmtp-"))
      const socketPath = path.join(dir, "lmtp.sock")
      const server = new SMTPServer({
        name: "lmtp.embedded.test",
        lmtp: true,
        authOptional: true,
        disabledCommands: ["STARTTLS", "AUTH"],
        logger: false,
        ...options
      })
      server.on("error", () => {})
      server.listen(socketPath, () => resume(Effect.succeed({ socketPath, dir, server })))
    }),
    ({ dir, server }) =>
      Effect.async<void>((resume) =>
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true })
          resume(Effect.void)
        })
      )
  )

const alice = "alice@example.test"
const ghost = "ghost@example.test"
const full = "full@example.test"

/** What every mixed delivery below must report (texts as smtp-server words them). */
const assertMixed = (delivery: ReturnType<typeof plainDelivery>) => {
  assert.deepStrictEqual(
    delivery.recipients.map((r) => [r.recipient, r.status, r.stage, r.reply?.code]),
    [
      [alice, "delivered", "data", 250],
      [ghost, "refused", "rcpt", 550],
      [full, "refused", "data", 552]
    ]
  )
  assert.include(delivery.recipients[0].reply?.text, `<${alice}> saved`)
  assert.include(delivery.recipients[1].reply?.text, "User doesn't exist")
  assert.include(delivery.recipients[2].reply?.text, "Quota exceeded")
  assert.deepStrictEqual(Object.keys(delivery.delivered), [alice])
  assert.deepStrictEqual(Object.keys(delivery.refused).sort(), [full, ghost])
  assert.deepStrictEqual(delivery.unknown, [])
  assert.isUndefined(delivery.interruption)
}

describe("LMTP against smtp-server (lmtp: true) over TCP", () => {
  for (const pipelining of [true, false]) {
    describe(pipelining ? "pipelined" : "unpipelined", () => {
      it.live("LHLO; delivered, refused at RCPT (550) and refused after the data (552), in RCPT order", () =>
        live(Effect.gen(function*() {
          const received: Array<Received> = []
          const server = yield* EmbeddedServer.make({
            lmtp: true,
            hidePIPELINING: !pipelining,
            ...deliveryAgent(received)
          })
          const { delivery, pipeliningSeen } = yield* Effect.scoped(Effect.gen(function*() {
            const lmtp = yield* SmtpClient.connect({
              protocol: "lmtp",
              host: server.host,
              port: server.port,
              localHostname: "client.test",
              security: "none"
            })
            const delivery = yield* lmtp.sendmail("a@example.test", [alice, ghost, full], MESSAGE)
            return { delivery, pipeliningSeen: yield* lmtp.hasExtn("pipelining") }
          }))
          assert.strictEqual(pipeliningSeen, pipelining)
          assertMixed(plainDelivery(delivery))
          assert.strictEqual(received.length, 1)
          assert.strictEqual(received[0].from, "a@example.test")
          assert.deepStrictEqual(received[0].to, [alice, full])
          assert.strictEqual(received[0].data.toString("latin1"), MESSAGE)
          assert.strictEqual(received[0].helo, "client.test")
          assert.match(received[0].protocol, /^LMTP/)
        })))

      it.live("all refused after the data: SmtpRecipientsRefused with every reply; the session stays usable", () =>
        live(Effect.gen(function*() {
          const received: Array<Received> = []
          const server = yield* EmbeddedServer.make({
            lmtp: true,
            hidePIPELINING: !pipelining,
            ...deliveryAgent(received)
          })
          const lmtp = yield* SmtpClient.connect({ protocol: "lmtp", host: server.host, port: server.port })
          const error = yield* Effect.flip(lmtp.sendmail("a@example.test", [full, ghost, "full@other.test"], MESSAGE))
          assert.strictEqual(error._tag, "SmtpRecipientsRefused")
          if (error._tag === "SmtpRecipientsRefused") {
            assert.deepStrictEqual(
              Object.entries(error.recipients).map(([r, reply]) => [r, reply.code]).sort(),
              [["full@example.test", 552], ["full@other.test", 552], ["ghost@example.test", 550]]
            )
          }
          assert.strictEqual((yield* lmtp.noop).code, 250)
          // and the next delivery on the same connection gets its own replies
          const next = yield* lmtp.sendmail("a@example.test", [alice], MESSAGE)
          assert.deepStrictEqual(Object.keys(next.delivered), [alice])
        })))

      it.live("an onData error is one refusal per recipient (smtp-server repeats it): SmtpRecipientsRefused", () =>
        live(Effect.gen(function*() {
          const server = yield* EmbeddedServer.make({
            lmtp: true,
            hidePIPELINING: !pipelining,
            onData(stream, _session, callback) {
              stream.resume()
              stream.on("end", () => callback(Object.assign(new Error("Temporary failure"), { responseCode: 451 })))
            }
          })
          const lmtp = yield* SmtpClient.connect({ protocol: "lmtp", host: server.host, port: server.port })
          const exit = yield* Effect.exit(lmtp.sendmail("a@example.test", [alice, "bob@example.test"], MESSAGE))
          const error = failureOf(exit) as { _tag: string; recipients: Record<string, { code: number }> }
          assert.strictEqual(error._tag, "SmtpRecipientsRefused")
          assert.deepStrictEqual(Object.keys(error.recipients), [alice, "bob@example.test"])
          assert.deepStrictEqual(Object.values(error.recipients).map((r) => r.code), [451, 451])
        })))
    })
  }

  it.live("sendMessage returns a Delivery; a Stream message works too", () =>
    live(Effect.gen(function*() {
      const received: Array<Received> = []
      const server = yield* EmbeddedServer.make({ lmtp: true, ...deliveryAgent(received) })
      const lmtp = yield* SmtpClient.connect({ protocol: "lmtp", host: server.host, port: server.port })
      const message = yield* Message.parse(
        `From: a@example.test\r\nTo: ${alice}, ${ghost}\r\nCc: ${full}\r\nSubject: s\r\n\r\nHello\r\n`
      )
      const delivery = plainDelivery(yield* lmtp.sendMessage(message))
      assertMixed(delivery)
      const streamed = yield* lmtp.sendmail(
        "a@example.test",
        [alice],
        Stream.fromIterable(MESSAGE.split("\r\n").map((l, i, all) => Buffer.from(i < all.length - 1 ? `${l}\r\n` : l)))
      )
      assert.deepStrictEqual(Object.keys(streamed.delivered), [alice])
      assert.strictEqual(received.length, 2)
      assert.strictEqual(received[1].data.toString("latin1"), MESSAGE)
    })))

  it.live("plain SMTP to an LMTP server fails at EHLO and HELO (the server refuses both): LMTP needs protocol: lmtp", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make({ lmtp: true })
      const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port, security: "none" })
      const error = yield* Effect.flip(smtp.sendmail("a@example.test", [alice], MESSAGE))
      assert.strictEqual(error._tag, "SmtpHeloError")
    })))
})

describe("LMTP against smtp-server over a Unix domain socket", () => {
  it.live("an absolute path as host: the mixed results", () =>
    live(Effect.gen(function*() {
      const received: Array<Received> = []
      const { socketPath } = yield* unixLmtpServer(deliveryAgent(received))
      const lmtp = yield* SmtpClient.connect({ protocol: "lmtp", host: socketPath, localHostname: "client.test" })
      assert.isFalse(yield* lmtp.isSecure)
      assertMixed(plainDelivery(yield* lmtp.sendmail("a@example.test", [alice, ghost, full], MESSAGE)))
      assert.strictEqual(received.length, 1)
      assert.strictEqual(received[0].data.toString("latin1"), MESSAGE)
      assert.strictEqual(received[0].helo, "client.test")
    })))

  it.live("the path option: the same, unpipelined", () =>
    live(Effect.gen(function*() {
      const received: Array<Received> = []
      const { socketPath } = yield* unixLmtpServer({ hidePIPELINING: true, ...deliveryAgent(received) })
      const lmtp = yield* SmtpClient.connect({ protocol: "lmtp", path: socketPath })
      assertMixed(plainDelivery(yield* lmtp.sendmail("a@example.test", [alice, ghost, full], MESSAGE)))
      assert.isFalse(yield* lmtp.hasExtn("pipelining"))
      assert.deepStrictEqual(received[0].to, [alice, full])
    })))

  it.live("a socket path nobody listens on: SmtpConnectError naming the path", () =>
    live(Effect.gen(function*() {
      const missing = path.join(os.tmpdir(), `effect-smtp-no-such-${process.pid}-${Date.now()}.sock`)
      const error = yield* Effect.flip(SmtpClient.connect({ protocol: "lmtp", host: missing }))
      assert.strictEqual(error._tag, "SmtpConnectError")
      if (error._tag === "SmtpConnectError") assert.strictEqual(error.address, missing)
    })))
})
