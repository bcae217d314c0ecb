import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, type Scope, Stream } from "effect"
import { SmtpClient, type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as EmbeddedServer from "../support/smtpServer.js"

const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped)

const message = "From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n"

describe("in-process smtp-server", () => {
  for (const pipelining of [true, false]) {
    describe(pipelining ? "pipelined" : "unpipelined", () => {
      it.live("delivers to several recipients, byte for byte, reporting the refused one", () =>
        live(Effect.gen(function*() {
          const server = yield* EmbeddedServer.make({
            hidePIPELINING: !pipelining,
            onRcptTo(address, _session, callback) {
              if (address.address.startsWith("nobody")) {
                const err = Object.assign(new Error("5.1.1 No such user"), { responseCode: 550 })
                return callback(err)
              }
              callback()
            }
          })
          const refused = yield* Effect.scoped(Effect.gen(function*() {
            const smtp = yield* SmtpClient.connect({
              host: server.host,
              port: server.port,
              localHostname: "client.test",
              security: "none"
            })
            assert.strictEqual(yield* smtp.hasExtn("PIPELINING"), false, "nothing is known before EHLO")
            const refused = yield* smtp.sendmail("a@example.test", [
              "b@example.test",
              "nobody@example.test",
              "c@example.test"
            ], message)
            assert.strictEqual(yield* smtp.hasExtn("pipelining"), pipelining)
            return refused
          }))
          assert.deepStrictEqual(Object.keys(refused), ["nobody@example.test"])
          assert.strictEqual(refused["nobody@example.test"].code, 550)
          const [received] = yield* server.waitFor(1)
          assert.strictEqual(received.from, "a@example.test")
          assert.deepStrictEqual(received.to, ["b@example.test", "c@example.test"])
          assert.strictEqual(received.data.toString("utf8"), message)
          assert.strictEqual(received.helo, "client.test")
          assert.deepStrictEqual(received.mailParams, { SIZE: String(Buffer.byteLength(message)) })
        })))

      it.live("all recipients refused is SmtpRecipientsRefused and the session stays usable", () =>
        live(Effect.gen(function*() {
          const server = yield* EmbeddedServer.make({
            hidePIPELINING: !pipelining,
            onRcptTo(_address, _session, callback) {
              callback(Object.assign(new Error("No thanks"), { responseCode: 550 }))
            }
          })
          const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port })
          const error = yield* Effect.flip(
            smtp.sendmail("a@example.test", ["x@example.test", "y@example.test"], message)
          )
          assert.strictEqual(error._tag, "SmtpRecipientsRefused")
          if (error._tag === "SmtpRecipientsRefused") {
            assert.deepStrictEqual(Object.keys(error.recipients), ["x@example.test", "y@example.test"])
          }
          const noop = yield* smtp.noop
          assert.strictEqual(noop.code, 250)
        })))

      it.live("sender refused is SmtpSenderRefused", () =>
        live(Effect.gen(function*() {
          const server = yield* EmbeddedServer.make({
            hidePIPELINING: !pipelining,
            onMailFrom(_address, _session, callback) {
              callback(Object.assign(new Error("Sender blocked"), { responseCode: 553 }))
            }
          })
          const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port })
          const error = yield* Effect.flip(smtp.sendmail("bad@example.test", "b@example.test", message))
          assert.strictEqual(error._tag, "SmtpSenderRefused")
          if (error._tag === "SmtpSenderRefused") {
            assert.strictEqual(error.code, 553)
            assert.strictEqual(error.sender, "bad@example.test")
          }
          assert.strictEqual((yield* smtp.noop).code, 250)
        })))
    })
  }

  it.live("a 20 MB stream message arrives intact (streamed, not copied whole)", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make({ size: 64 * 1024 * 1024 })
      const line = ".line of the big message, with a leading dot to be stuffed on the wire\r\n"
      const chunk = new TextEncoder().encode(line.repeat(1000))
      const chunks = Math.ceil(20_000_000 / chunk.length)
      const header = new TextEncoder().encode("Subject: big\r\n\r\n")
      const body = Stream.concat(Stream.succeed(header), Stream.repeatValue(chunk).pipe(Stream.take(chunks)))
      const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port })
      const refused = yield* smtp.sendmail("a@example.test", "b@example.test", body, {
        size: header.length + chunks * chunk.length
      })
      assert.deepStrictEqual(refused, {})
      const [received] = yield* server.waitFor(1)
      assert.strictEqual(received.data.length, header.length + chunks * chunk.length)
      assert.strictEqual(
        received.data.subarray(header.length, header.length + chunk.length).toString(),
        line.repeat(1000)
      )
      assert.strictEqual(received.data.subarray(received.data.length - line.length).toString(), line)
    })))

  it.live("several messages over one connection, and the helpers around them", () =>
    live(Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const smtp = yield* SmtpClient.connect({ host: `${server.host}:${server.port}` })
      yield* smtp.ehloOrHeloIfNeeded
      assert.isTrue(yield* smtp.doesEsmtp)
      assert.isTrue(yield* smtp.hasExtn("8bitmime"))
      for (let i = 0; i < 5; i++) {
        yield* smtp.sendmail(
          "a@example.test",
          "b@example.test",
          new TextEncoder().encode(`Subject: ${i}\r\n\r\nmessage ${i}\r\n`)
        )
      }
      const received = yield* server.waitFor(5)
      assert.deepStrictEqual(
        received.map((r) => r.data.toString()),
        [0, 1, 2, 3, 4].map((i) => `Subject: ${i}\r\n\r\nmessage ${i}\r\n`)
      )
      const quit = yield* smtp.quit
      assert.strictEqual(quit.code, 221)
      assert.isTrue(yield* smtp.isClosed)
      const after = yield* Effect.flip(smtp.noop)
      assert.strictEqual(after._tag, "SmtpServerDisconnected")
      void Chunk.empty
    })))
})
