import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck as fc, Stream } from "effect"
import * as Message from "../../src/Message.js"

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The reference: every CRLF, lone CR and lone LF becomes CRLF. */
const reference = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => String.fromCharCode(b)).join("").replace(/\r\n|\r|\n/g, "\r\n")

const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("")

const collect = <E>(stream: Stream.Stream<Uint8Array, E>) =>
  Effect.map(Stream.runCollect(stream), (chunks) => Chunk.toReadonlyArray(chunks).map(latin1).join(""))

const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const p of points) {
    out.push(bytes.subarray(from, p))
    from = p
  }
  out.push(bytes.subarray(from))
  return out
}

const bodyArbitrary = fc.uint8Array({ maxLength: 200 }).map((a) =>
  a.map((b) => [13, 10, 13, 10, 65, 46, 0, 200][b % 8]!)
)

describe("Message.toStream", () => {
  it.effect("LF-only headers and body go out with CRLF", () =>
    Effect.gen(function*() {
      const m = Either.getOrThrow(Message.parse("Subject: a\n b\nFrom: x@example.com\n\nline 1\nline 2\rline 3\r\n"))
      const wire = yield* collect(Message.toStream(m))
      assert.strictEqual(wire, "Subject: a\r\n b\r\nFrom: x@example.com\r\n\r\nline 1\r\nline 2\r\nline 3\r\n")
    }))

  it.effect("CRLF input goes out byte for byte", () =>
    Effect.gen(function*() {
      const text = "From: x@example.com\r\nSubject: s\r\n\r\n.leading dot\r\nFrom a line\r\n\r\n"
      const m = Either.getOrThrow(Message.parse(text))
      assert.strictEqual(dec.decode(yield* Message.toBytes(m)), text)
    }))

  it.effect("a CR at the end of one chunk and an LF at the start of the next are one line break", () =>
    Effect.gen(function*() {
      const m: Message.Message = {
        headers: [{ name: "A", value: " 1" }],
        body: Stream.make(enc.encode("x\r"), enc.encode("\ny\r"), enc.encode("z\r"), enc.encode("\r"), enc.encode("\n"))
      }
      assert.strictEqual(yield* collect(Message.toStream(m)), "A: 1\r\n\r\nx\r\ny\r\nz\r\n\r\n")
    }))

  it.effect.prop(
    "a Stream body is normalised as the whole body would be, however it is chunked",
    [bodyArbitrary, fc.array(fc.nat(), { maxLength: 20 })],
    ([body, cuts]) =>
      Effect.gen(function*() {
        const whole = yield* Message.toBytes({ headers: [], body })
        assert.strictEqual(latin1(whole), "\r\n" + reference(body))
        const streamed = yield* collect(Message.toStream({ headers: [], body: Stream.fromIterable(split(body, cuts)) }))
        assert.strictEqual(streamed, "\r\n" + reference(body))
      })
  )

  it.effect("a Stream body is not collected: a large body streams chunk by chunk", () =>
    Effect.gen(function*() {
      const chunk = enc.encode("a line of text\nanother\r\n".repeat(1000))
      let chunks = 0
      let size = 0
      yield* Stream.runForEach(
        Message.toStream({
          headers: [{ name: "A", value: " 1" }],
          body: Stream.repeatValue(chunk).pipe(Stream.take(500))
        }),
        (c) =>
          Effect.sync(() => {
            chunks++
            size += c.length
          })
      )
      assert.strictEqual(chunks, 501)
      assert.strictEqual(size, 8 + 500 * (chunk.length + 1000))
    }))

  it.effect("a field with a line break that is not a fold fails before anything is emitted", () =>
    Effect.gen(function*() {
      let emitted = 0
      const r = yield* Effect.either(
        Stream.runForEach(
          Message.toStream({ headers: [{ name: "Subject", value: " a\nBcc: x@y.z" }], body: new Uint8Array(0) }),
          () => Effect.sync(() => emitted++)
        )
      )
      assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput")
      assert.strictEqual(emitted, 0)
    }))

  it("needsSmtpUtf8 looks at transmitted fields only", () => {
    assert.isFalse(
      Message.needsSmtpUtf8(Either.getOrThrow(Message.parse("Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n")))
    )
    assert.isTrue(Message.needsSmtpUtf8(Either.getOrThrow(Message.parse("Subject: Grüße\r\n\r\n"))))
    assert.isFalse(Message.needsSmtpUtf8(Either.getOrThrow(Message.parse("Bcc: Zoë <z@example.com>\r\n\r\n"))))
  })
})
