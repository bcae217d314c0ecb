import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Option, pipe, Stream } from "effect"
import * as Message from "../../src/Message.js"

const enc = new TextEncoder()
const dec = new TextDecoder()

const parseOk = (input: string | Uint8Array) => {
  const parsed = Message.parse(input)
  if (Either.isLeft(parsed)) throw new Error(parsed.left.message)
  return parsed.right
}

const bodyBytes = (message: Message.Message<any, any>) =>
  message.body instanceof Uint8Array
    ? Effect.succeed(message.body)
    : Effect.map(Stream.runCollect(message.body), (chunks) => {
      const parts = Chunk.toReadonlyArray(chunks)
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
      let at = 0
      for (const p of parts) {
        out.set(p, at)
        at += p.length
      }
      return out
    })

/** A source stream that counts how many times it is pulled. */
const countingSource = (chunks: ReadonlyArray<Uint8Array>) => {
  let pulls = 0
  let i = 0
  const stream = Stream.repeatEffectChunkOption(
    Effect.suspend(() => {
      pulls++
      return i < chunks.length ? Effect.succeed(Chunk.of(chunks[i++]!)) : Effect.fail(Option.none())
    })
  )
  return { stream, pulls: () => pulls }
}

const splitEvery = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size))
  return out
}

const sample = "From: Ann <ann@example.com>\r\n" +
  "To: bob@example.com,\r\n carol@example.com\r\n" +
  "Subject: a folded\r\n\tsubject line\r\n" +
  "Received: one\r\n" +
  "received: two\r\n" +
  "\r\n" +
  "Body line 1\r\n\r\nBody line 3\r\n"

describe("Message.parse", () => {
  it("keeps fields in order, raw, and the body as bytes", () => {
    const m = parseOk(sample)
    assert.deepStrictEqual(m.headers.map((h) => h.name), ["From", "To", "Subject", "Received", "received"])
    assert.strictEqual(m.headers[1]!.value, " bob@example.com,\r\n carol@example.com")
    assert.strictEqual(dec.decode(m.body as Uint8Array), "Body line 1\r\n\r\nBody line 3\r\n")
  })

  it("get unfolds and trims; names are case-insensitive", () => {
    const m = parseOk(sample)
    assert.deepStrictEqual(Message.get(m, "subject"), Option.some("a folded\tsubject line"))
    assert.deepStrictEqual(Message.get(m, "TO"), Option.some("bob@example.com, carol@example.com"))
    assert.deepStrictEqual(Message.get(m, "X-Missing"), Option.none())
    assert.deepStrictEqual(pipe(m, Message.getAll("RECEIVED")), ["one", "two"])
    assert.isTrue(Message.has(m, "from"))
  })

  it("trims only folding white space: a raw UTF-8 value keeps U+2029 and U+00A0 at its ends", () => {
    const m = parseOk("X-Note: \u2029note\u00a0 \t\r\nX-Other:\t \u00a0x\r\n\r\n")
    assert.deepStrictEqual(Message.get(m, "X-Note"), Option.some("\u2029note\u00a0"))
    assert.deepStrictEqual(Message.getDecoded(m, "X-Other"), Option.some("\u00a0x"))
  })

  it("accepts LF-only input and an LF LF end of headers", () => {
    const m = parseOk("Subject: hi\n there\nFrom: a@b.c\n\nbody\nmore\n")
    assert.deepStrictEqual(Message.get(m, "Subject"), Option.some("hi there"))
    assert.strictEqual(m.headers[0]!.value, " hi\r\n there")
    assert.strictEqual(dec.decode(m.body as Uint8Array), "body\nmore\n")
  })

  it("a message with no blank line is all headers; one starting with a blank line has none", () => {
    const a = parseOk("Subject: only headers\r\n")
    assert.strictEqual(a.headers.length, 1)
    assert.strictEqual((a.body as Uint8Array).length, 0)
    const b = parseOk("\r\nBody: not a header\r\n")
    assert.strictEqual(b.headers.length, 0)
    assert.strictEqual(dec.decode(b.body as Uint8Array), "Body: not a header\r\n")
  })

  it("drops a leading mbox From_ line", () => {
    const m = parseOk("From sender@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody")
    assert.deepStrictEqual(m.headers.map((h) => h.name), ["Subject"])
  })

  it("the body is a view of the input bytes, not a copy", () => {
    const bytes = enc.encode(sample)
    const m = parseOk(bytes)
    assert.strictEqual((m.body as Uint8Array).buffer, bytes.buffer)
  })

  it("reads non-UTF-8 header bytes as Latin-1, UTF-8 as UTF-8", () => {
    const latin = parseOk(new Uint8Array([...enc.encode("Subject: caf"), 0xe9, 13, 10, 13, 10]))
    assert.deepStrictEqual(Message.get(latin, "Subject"), Option.some("café"))
    const utf8 = parseOk(enc.encode("Subject: café\r\n\r\n"))
    assert.deepStrictEqual(Message.get(utf8, "Subject"), Option.some("café"))
  })

  it("rejects a line that is neither a field nor a fold, and a leading fold", () => {
    assert.isTrue(Either.isLeft(Message.parse("Subject: x\r\nnot a header\r\n\r\nbody")))
    assert.isTrue(Either.isLeft(Message.parse(" leading fold\r\nSubject: x\r\n\r\n")))
    assert.isTrue(Either.isLeft(Message.parse(": empty name\r\n\r\n")))
    assert.isTrue(Either.isLeft(Message.parse("A: 1\r\r\nB: 2\r\n\r\nbody")))
  })

  it("accepts white space before the colon (obsolete syntax)", () => {
    const m = parseOk("Subject : old style\r\n\r\n")
    assert.deepStrictEqual(Message.get(m, "subject"), Option.some("old style"))
  })

  it("bounds the header section", () => {
    const big = "X-Big: " + "a".repeat(2000) + "\r\n\r\nbody"
    const r = Message.parse(big, { maxHeaderBytes: 1000 })
    assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput")
    assert.isTrue(Either.isRight(Message.parse(big, { maxHeaderBytes: 4000 })))
  })
})

describe("Message header updates", () => {
  const m = parseOk("A: 1\r\nB: 2\r\nA: 3\r\nC: 4\r\n\r\nbody")

  it("setHeader replaces the first field in place and removes the others", () => {
    const r = Either.getOrThrow(Message.setHeader(m, "a", "new"))
    assert.deepStrictEqual(r.headers.map((h) => `${h.name}:${h.value}`), ["a: new", "B: 2", "C: 4"])
    const appended = Either.getOrThrow(Message.setHeader(m, "D", "5"))
    assert.deepStrictEqual(appended.headers.map((h) => h.name), ["A", "B", "A", "C", "D"])
  })

  it("appendHeader and removeHeader", () => {
    const r = Either.getOrThrow(pipe(m, Message.appendHeader("Received", "x")))
    assert.deepStrictEqual(r.headers.map((h) => h.name), ["A", "B", "A", "C", "Received"])
    assert.deepStrictEqual(Message.removeHeader(m, "a").headers.map((h) => h.name), ["B", "C"])
    assert.strictEqual(Message.removeHeader(m, "a").body, m.body)
  })

  it("refuses CR or LF in a value and invalid names", () => {
    for (const value of ["a\r\nBcc: x@y.z", "a\nb", "a\rb"]) {
      const r = Message.setHeader(m, "Subject", value)
      assert.isTrue(Either.isLeft(r) && r.left.reason.includes("header injection"))
      assert.isTrue(Either.isLeft(Message.appendHeader(m, "Subject", value)))
    }
    for (const value of ["a\u0000b", "a\u001bb", "a\u007f"]) {
      const r = Message.setHeader(m, "X-T", value)
      assert.isTrue(Either.isLeft(r) && r.left.reason.includes("control character"), JSON.stringify(value))
      assert.isTrue(Either.isLeft(Message.appendHeader(m, "X-T", value)))
    }
    assert.isTrue(Either.isRight(Message.setHeader(m, "X-T", "a\tb")), "a tab is white space")
    // from JavaScript: a value that is not a string is refused, not thrown
    const notString = Message.setHeader(m, "X-T", 5 as any)
    assert.isTrue(Either.isLeft(notString) && notString.left.reason.includes("not a string"))
    const notInput = Message.parse(123 as any)
    assert.isTrue(Either.isLeft(notInput) && notInput.left.reason.includes("a string or bytes"))
    for (const name of ["Bad Name", "Bad:Name", "", "Bad\r\nName"]) {
      assert.isTrue(Either.isLeft(Message.setHeader(m, name, "v")))
    }
  })

  it("folds long values so that unfolding gives them back", () => {
    const value = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ")
    const r = Either.getOrThrow(Message.setHeader(m, "Subject", value))
    const field = r.headers.find((h) => h.name === "Subject")!
    assert.isTrue(field.value.includes("\r\n "))
    for (const line of `Subject:${field.value}`.split("\r\n")) assert.isAtMost(line.length, 78)
    assert.deepStrictEqual(Message.get(r, "Subject"), Option.some(value))
    const tooLong = Message.setHeader(m, "X", "a".repeat(1200))
    assert.isTrue(Either.isLeft(tooLong))
  })
})

describe("Message.addresses", () => {
  const m = parseOk(
    "From: =?UTF-8?Q?J=C3=B6rg?= <jorg@example.com>\r\n" +
      "To: \"Doe, John\" <john@example.com>, ann@example.com (Ann),\r\n Friends: x@example.com, \"Y\" <y@example.com>;\r\n" +
      "Cc: undisclosed-recipients:;\r\n" +
      "Bcc:\r\n" +
      "Reply-To: broken <<\r\n" +
      "To: second@example.com\r\n" +
      "X-Utf8: \"Zoë\" <zoë@exämple.com>\r\n\r\n"
  )

  it("parses display names, quoted strings, comments and groups (flattened)", () => {
    assert.deepStrictEqual(Either.getOrThrow(Message.addresses(m, "from")), [
      { name: "Jörg", address: "jorg@example.com" }
    ])
    assert.deepStrictEqual(Either.getOrThrow(Message.addresses(m, "To")), [
      { name: "Doe, John", address: "john@example.com" },
      { name: undefined, address: "ann@example.com" },
      { name: undefined, address: "x@example.com" },
      { name: "Y", address: "y@example.com" },
      { name: undefined, address: "second@example.com" }
    ])
  })

  it("an empty group, an empty field or no field is an empty list", () => {
    assert.deepStrictEqual(Either.getOrThrow(Message.addresses(m, "Cc")), [])
    assert.deepStrictEqual(Either.getOrThrow(Message.addresses(m, "Bcc")), [])
    assert.deepStrictEqual(Either.getOrThrow(Message.addresses(m, "Resent-To")), [])
  })

  it("an unparsable field is SmtpInvalidInput", () => {
    const r = Message.addresses(m, "Reply-To")
    assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput")
  })

  it("UTF-8 addresses (RFC 6532)", () => {
    assert.deepStrictEqual(Either.getOrThrow(Message.addresses(m, "X-Utf8")), [
      { name: "Zoë", address: "zoë@exämple.com" }
    ])
  })
})

describe("Message.parseStream", () => {
  it.scoped("a header split across chunks; the body passes through untouched", () =>
    Effect.gen(function*() {
      const bytes = enc.encode(sample)
      for (const size of [1, 2, 3, 5, 7, 16, 1000]) {
        const m = yield* Message.parseStream(Stream.fromIterable(splitEvery(bytes, size)))
        assert.deepStrictEqual(m.headers, parseOk(sample).headers)
        assert.strictEqual(dec.decode(yield* bodyBytes(m)), "Body line 1\r\n\r\nBody line 3\r\n")
      }
    }))

  it.scoped("CR LF CR LF split at every position", () =>
    Effect.gen(function*() {
      const text = "A: 1\r\nB: 2\r\n\r\n\r\nbody\r\n"
      const bytes = enc.encode(text)
      for (let cut = 1; cut < bytes.length; cut++) {
        const m = yield* Message.parseStream(Stream.make(bytes.subarray(0, cut), bytes.subarray(cut)))
        assert.deepStrictEqual(m.headers.map((h) => h.name), ["A", "B"])
        assert.strictEqual(dec.decode(yield* bodyBytes(m)), "\r\nbody\r\n")
      }
    }))

  it.scoped("several byte arrays in one pull: the rest of them are the start of the body", () =>
    Effect.gen(function*() {
      const source = Stream.fromChunk(Chunk.make(enc.encode("A: 1\r\n"), enc.encode("\r\nb1"), enc.encode("b2")))
      const m = yield* Message.parseStream(source)
      assert.strictEqual(dec.decode(yield* bodyBytes(m)), "b1b2")
    }))

  it.scoped("pulls the source only until the end of the headers, then streams a large body", () =>
    Effect.gen(function*() {
      const head = enc.encode("Subject: big\r\nFrom: a@example.com\r\n\r\n")
      const bodyChunk = new Uint8Array(64 * 1024)
      for (let i = 0; i < bodyChunk.length; i++) bodyChunk[i] = i % 251
      const chunks = [...splitEvery(head, 10), ...Array.from({ length: 200 }, () => bodyChunk)]
      const source = countingSource(chunks)
      const m = yield* Message.parseStream(source.stream)
      const headPulls = Math.ceil(head.length / 10)
      assert.strictEqual(source.pulls(), headPulls)
      assert.deepStrictEqual(Message.get(m, "subject"), Option.some("big"))
      assert.isFalse(m.body instanceof Uint8Array)
      // the body is streamed, chunk by chunk, and its bytes are unchanged
      let total = 0
      let same = true
      yield* Stream.runForEach(m.body as Stream.Stream<Uint8Array>, (chunk) =>
        Effect.sync(() => {
          total += chunk.length
          if (chunk.length === bodyChunk.length && chunk[1000] !== bodyChunk[1000]) same = false
        }))
      assert.isTrue(same)
      assert.strictEqual(total, 200 * bodyChunk.length)
      assert.strictEqual(source.pulls(), chunks.length + 1)
    }))

  it.scoped("a stream that ends inside the headers gives an empty body", () =>
    Effect.gen(function*() {
      const m = yield* Message.parseStream(Stream.make(enc.encode("A: 1\r\nB: 2")))
      assert.deepStrictEqual(m.headers.map((h) => h.name), ["A", "B"])
      assert.strictEqual((yield* bodyBytes(m)).length, 0)
    }))

  it.scoped("bounds the header section, without reading the whole source", () =>
    Effect.gen(function*() {
      const source = countingSource(
        Array.from({ length: 1000 }, () => enc.encode("X-Long: " + "a".repeat(1000) + "\r\n"))
      )
      const r = yield* Effect.either(Message.parseStream(source.stream, { maxHeaderBytes: 10_000 }))
      assert.isTrue(Either.isLeft(r) && r.left._tag === "SmtpInvalidInput")
      assert.isBelow(source.pulls(), 20)
    }))

  it.scoped("source errors come through", () =>
    Effect.gen(function*() {
      const r = yield* Effect.either(
        Message.parseStream(Stream.concat(Stream.make(enc.encode("A: 1\r\n")), Stream.fail("boom")))
      )
      assert.deepStrictEqual(r, Either.left("boom"))
    }))
})

describe("Message.parse: bytes that are not UTF-8", () => {
  it.effect("a legacy 8-bit header section is read as Latin-1 and written back byte for byte", () =>
    Effect.gen(function*() {
      const enc = new TextEncoder()
      const raw = Uint8Array.from([
        ...enc.encode("From: a@example.com\r\nSubject: caf"),
        0xe9,
        0x80,
        ...enc.encode(" x\r\nX-Plain: ascii\r\n\r\nbody\r\n")
      ])
      const message = yield* Message.parse(raw)
      assert.deepStrictEqual(Message.get(message, "Subject"), Option.some(" caf\u00e9\u0080 x".slice(1)))
      // before: written back as UTF-8 (C3 A9 C2 80)
      assert.deepStrictEqual([...(yield* Message.toBytes(message))], [...raw])
      // a field set by the caller is UTF-8, beside the parsed ones
      const changed = yield* Message.setHeader(message, "X-New", "\u00e9")
      const out = yield* Message.toBytes(changed)
      assert.include(new TextDecoder("latin1").decode(out), "Subject: caf\u00e9\u0080 x\r\n")
      assert.include(new TextDecoder().decode(out), "X-New: \u00e9\r\n")
    }))
})
