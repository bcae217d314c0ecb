/**
 * A message from `Message.parseStream` sent again (a `Mailer` retry, `Message.toBytes` twice):
 * its body reads the source again and skips the header section, so the second run gives the
 * whole message; a source that cannot be read again (or reads differently) fails that run with
 * `SmtpInvalidInput`. A second run used to give the body's first piece and nothing more, and a
 * Mailer retry after a greylisting 451 delivered that truncated message.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Option, Schedule, Stream } from "effect"
import { Mailer, Message } from "effect-smtp"
import { TestTransport } from "effect-smtp/testing"

const enc = new TextEncoder()
const dec = new TextDecoder()
const pieces = ["From: a@x.test\r\nTo: b@x.test\r\n\r\nfirst ", "second ", "third\r\n"]
const whole = pieces.join("")
/** A source that can be read any number of times, one byte a chunk. */
const rereadable = () => Stream.fromIterable(pieces.map((p) => enc.encode(p))).pipe(Stream.rechunk(1))
/** A source that can be read once (a generator). */
const readOnce = () => {
  const chunks = (function*() {
    for (const p of pieces) yield enc.encode(p)
  })()
  return Stream.fromIterable(chunks)
}
const failureTag = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ?
    Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e) => (e as { _tag: string })._tag)) :
    undefined

describe("a message from Message.parseStream, run again", () => {
  it.scoped("Message.toBytes twice: the whole message both times", () =>
    Effect.gen(function*() {
      const message = yield* Message.parseStream(rereadable())
      assert.strictEqual(dec.decode(yield* Message.toBytes(message)), whole)
      assert.strictEqual(dec.decode(yield* Message.toBytes(message)), whole)
    }))

  it.scoped("a source that can be read only once: the second run fails with SmtpInvalidInput", () =>
    Effect.gen(function*() {
      const message = yield* Message.parseStream(readOnce())
      assert.strictEqual(dec.decode(yield* Message.toBytes(message)), whole)
      assert.strictEqual(failureTag(yield* Effect.exit(Message.toBytes(message))), "SmtpInvalidInput")
    }))

  it.scoped("a source that reads differently the second time: SmtpInvalidInput, not another message", () =>
    Effect.gen(function*() {
      let reads = 0
      const source = Stream.suspend(() =>
        Stream.make(enc.encode(reads++ === 0 ? whole : whole.replace("b@x.test", "c@x.test")))
      )
      const message = yield* Message.parseStream(source)
      assert.strictEqual(dec.decode(yield* Message.toBytes(message)), whole)
      assert.strictEqual(failureTag(yield* Effect.exit(Message.toBytes(message))), "SmtpInvalidInput")
    }))

  /** A server that greylists the first end of data (451), and a Mailer that retries once. */
  const greylisted = (chunking: boolean) =>
    Effect.gen(function*() {
      let finals = 0
      const server = yield* TestTransport.make({
        respond: (e) => (e.stage === "message" && finals++ === 0 ? "451 4.7.1 greylisted, try again" : undefined)
      })
      const mailer = yield* Mailer.make({ host: "mx.test", security: "none", chunking, retry: Schedule.recurs(1) })
        .pipe(Effect.provide(server.layer))
      return { server, mailer }
    })

  for (const chunking of [false, true]) {
    const how = chunking ? "BDAT" : "DATA"
    it.scoped(`${how}: a Mailer retry after a 451 at the end of the data delivers the whole message`, () =>
      Effect.gen(function*() {
        const { mailer, server } = yield* greylisted(chunking)
        yield* mailer.sendMessage(yield* Message.parseStream(rereadable()))
        const received = yield* server.received
        assert.deepStrictEqual(received.map((m) => dec.decode(m.raw)), [whole])
      }))

    it.scoped(`${how}: a retry of a source read once fails with SmtpInvalidInput; nothing short is delivered`, () =>
      Effect.gen(function*() {
        const { mailer, server } = yield* greylisted(chunking)
        const exit = yield* Effect.exit(mailer.sendMessage(yield* Message.parseStream(readOnce())))
        assert.strictEqual(failureTag(exit), "SmtpInvalidInput")
        assert.deepStrictEqual(yield* server.received, [])
      }))
  }
})
