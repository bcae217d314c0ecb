import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, FastCheck, Stream } from "effect"
import * as MessageData from "../../src/internal/messageData.js"
import { SmtpInvalidInput } from "../../src/SmtpError.js"
import { splitAt } from "../support/bytes.js"

const CR = 13
const LF = 10
const DOT = 46

/** One char per byte, both ways (ISO-8859-1, not the WHATWG "latin1" label, which is windows-1252). */
const latin1 = (bytes: Uint8Array): string => {
  let s = ""
  for (const b of bytes) s += String.fromCharCode(b)
  return s
}
const fromLatin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

const concat = (parts: Iterable<Uint8Array>): Uint8Array => {
  const list = [...parts]
  const out = new Uint8Array(list.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of list) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/**
 * smtplib's `data()` on bytes, written independently:
 * `q = re.sub(br'(?m)^\.', b'..', msg)`; `if q[-2:] != CRLF: q += CRLF`; `q += b".\r\n"`.
 * Python's `(?m)^` matches at the start of the string and right after every `\n`; effect-smtp also
 * stuffs a dot after a lone `\r` (so no lenient server can find an end of data in the message).
 */
const smtplibData = (msg: Uint8Array): Uint8Array => {
  const out: Array<number> = []
  for (let i = 0; i < msg.length; i++) {
    if (msg[i] === DOT && (i === 0 || msg[i - 1] === LF || msg[i - 1] === CR)) out.push(DOT)
    out.push(msg[i])
  }
  const n = out.length
  if (!(n >= 2 && out[n - 2] === CR && out[n - 1] === LF)) out.push(CR, LF)
  out.push(DOT, CR, LF)
  return Uint8Array.from(out)
}

/** Feeds chunks to a fresh DotStuffer and returns everything it produced, end included. */
const stuffChunks = (chunks: ReadonlyArray<Uint8Array>): string => {
  const stuffer = MessageData.makeDotStuffer()
  const out = chunks.map((c) => stuffer.push(c))
  out.push(stuffer.end())
  return latin1(concat(out))
}

const runDotStuff = (chunks: ReadonlyArray<Uint8Array>) =>
  Stream.fromIterable(chunks).pipe(
    MessageData.dotStuff,
    Stream.runCollect,
    Effect.map((c) => concat(Chunk.toReadonlyArray(c)))
  )

/** Bytes biased towards the characters that matter: '.', '\r', '\n'. */
const trickyBytes = FastCheck.array(
  FastCheck.oneof(
    { weight: 3, arbitrary: FastCheck.constantFrom(DOT, CR, LF) },
    { weight: 1, arbitrary: FastCheck.constantFrom(0x61, 0x20) },
    { weight: 1, arbitrary: FastCheck.integer({ min: 0, max: 255 }) }
  ),
  { maxLength: 200 }
).map((a) => Uint8Array.from(a))

const cuts = FastCheck.array(FastCheck.nat({ max: 10_000 }), { maxLength: 30 })

describe("messageData", () => {
  describe("fixEols (smtplib's _fix_eols)", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["a\r\nb", "a\r\nb"],
      ["a\nb", "a\r\nb"],
      ["a\rb", "a\r\nb"],
      ["a\r\r\nb", "a\r\n\r\nb"],
      ["a\n\rb", "a\r\n\r\nb"],
      ["a\n\nb", "a\r\n\r\nb"],
      ["a\r\rb", "a\r\n\r\nb"],
      ["\r", "\r\n"],
      ["\n", "\r\n"],
      ["\r\n", "\r\n"],
      ["x\r", "x\r\n"],
      ["\ry", "\r\ny"],
      ["", ""],
      ["no breaks", "no breaks"],
      ["l1\nl2\r\nl3\rl4\r\r\n\n", "l1\r\nl2\r\nl3\r\nl4\r\n\r\n\r\n"]
    ]
    for (const [input, expected] of cases) {
      it(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
        assert.strictEqual(MessageData.fixEols(input), expected)
      })
    }

    it.prop("is idempotent and leaves no lone CR or LF", [FastCheck.stringMatching(/^[\r\na.]{0,40}$/)], ([s]) => {
      const fixed = MessageData.fixEols(s)
      assert.strictEqual(MessageData.fixEols(fixed), fixed)
      assert.strictEqual(fixed.replace(/\r\n/g, "").match(/[\r\n]/), null)
    })
  })

  describe("encodeStringMessage", () => {
    it("encodes ASCII with line endings fixed", () => {
      const result = MessageData.encodeStringMessage("Subject: hi\n\nline 1\rline 2\r\n")
      assert.deepStrictEqual(result, Either.right(fromLatin1("Subject: hi\r\n\r\nline 1\r\nline 2\r\n")))
    })

    it("encodes the empty string", () => {
      assert.deepStrictEqual(MessageData.encodeStringMessage(""), Either.right(new Uint8Array(0)))
    })

    it("keeps every ASCII byte, controls and DEL included", () => {
      assert.deepStrictEqual(
        MessageData.encodeStringMessage("\x00\x01\t\x7f~"),
        Either.right(new Uint8Array([0, 1, 9, 0x7f, 0x7e]))
      )
    })

    it("refuses non-ASCII with a clear reason and the index", () => {
      const result = MessageData.encodeStringMessage("Subject: café\r\n")
      if (Either.isRight(result)) throw new Error("expected a Left")
      assert.instanceOf(result.left, SmtpInvalidInput)
      assert.strictEqual(
        result.left.message,
        "A string message must be ASCII (non-ASCII character at index 12); " +
          "encode it to bytes (for example UTF-8 with BODY=8BITMIME) to send it unchanged"
      )
    })

    it("refuses a Latin-1 character that would fit in one byte", () => {
      assert.isTrue(Either.isLeft(MessageData.encodeStringMessage("\x80")))
      assert.isTrue(Either.isLeft(MessageData.encodeStringMessage("\xff")))
    })

    it("reports the index in the original string, before line endings are fixed", () => {
      const result = MessageData.encodeStringMessage("a\nb\n€")
      if (Either.isRight(result)) throw new Error("expected a Left")
      assert.include(result.left.message, "index 4")
    })

    it("does not put the message text in the error", () => {
      const result = MessageData.encodeStringMessage("secret body ü")
      if (Either.isRight(result)) throw new Error("expected a Left")
      assert.notInclude(result.left.message, "secret")
    })
  })

  describe("DotStuffer", () => {
    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ["empty message", "", "\r\n.\r\n"],
      ["leading dot at the very start", ".hidden\r\n", "..hidden\r\n.\r\n"],
      ["dot after LF", "a\n.b", "a\n..b\r\n.\r\n"],
      ["dot after CRLF", "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"],
      ["dot after a lone CR is stuffed too (smtplib does not: SMTP smuggling)", "a\r.b", "a\r..b\r\n.\r\n"],
      ["the bare-CR end of data smuggling sequence", "a\r.\r\nb", "a\r..\r\nb\r\n.\r\n"],
      ["\".\\r\\n\" alone", ".\r\n", "..\r\n.\r\n"],
      ["a lone dot", ".", "..\r\n.\r\n"],
      ["a line of two dots", "..\r\n", "...\r\n.\r\n"],
      ["a dot in the middle of a line", "a.b\r\n", "a.b\r\n.\r\n"],
      ["message not ending with CRLF", "hello", "hello\r\n.\r\n"],
      ["message ending with CRLF", "hello\r\n", "hello\r\n.\r\n"],
      ["message ending with a bare LF", "hello\n", "hello\n\r\n.\r\n"],
      ["message ending with a lone CR", "hello\r", "hello\r\r\n.\r\n"],
      ["message ending with a dot line", "a\r\n.", "a\r\n..\r\n.\r\n"],
      ["CRLF alone", "\r\n", "\r\n.\r\n"],
      ["LF alone", "\n", "\n\r\n.\r\n"],
      ["the end of data inside the message", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"],
      ["consecutive dot lines", ".\n.\n.\n", "..\n..\n..\n\r\n.\r\n"],
      ["blank lines before a dot", "\n\n.x", "\n\n..x\r\n.\r\n"]
    ]

    for (const [name, input, expected] of cases) {
      it(`${name}: one push`, () => {
        assert.strictEqual(stuffChunks([fromLatin1(input)]), expected)
        assert.strictEqual(latin1(smtplibData(fromLatin1(input))), expected, "reference")
      })

      it(`${name}: single-byte chunks`, () => {
        const data = fromLatin1(input)
        assert.strictEqual(stuffChunks(Array.from(data, (_, i) => data.subarray(i, i + 1))), expected)
      })

      it(`${name}: every two-chunk split`, () => {
        const data = fromLatin1(input)
        for (let i = 0; i <= data.length; i++) {
          assert.strictEqual(stuffChunks([data.subarray(0, i), data.subarray(i)]), expected, `split at ${i}`)
        }
      })
    }

    it("stuffs a dot at the start of a chunk that follows a chunk ending in LF", () => {
      const stuffer = MessageData.makeDotStuffer()
      assert.strictEqual(latin1(stuffer.push(fromLatin1("line\r\n"))), "line\r\n")
      assert.strictEqual(latin1(stuffer.push(fromLatin1(".dot\r\n"))), "..dot\r\n")
      assert.strictEqual(latin1(stuffer.end()), ".\r\n")
    })

    it("stuffs a dot at the start of a chunk that follows a chunk ending in a lone CR", () => {
      const stuffer = MessageData.makeDotStuffer()
      assert.strictEqual(latin1(stuffer.push(fromLatin1("line\r"))), "line\r")
      assert.strictEqual(latin1(stuffer.push(fromLatin1(".dot"))), "..dot")
      assert.strictEqual(latin1(stuffer.end()), "\r\n.\r\n")
    })

    it("does not stuff a dot at the start of a chunk that follows a chunk ending mid-line", () => {
      const stuffer = MessageData.makeDotStuffer()
      assert.strictEqual(latin1(stuffer.push(fromLatin1("a"))), "a")
      assert.strictEqual(latin1(stuffer.push(fromLatin1(".b"))), ".b")
    })

    it("sees CRLF split across chunks at the end", () => {
      const stuffer = MessageData.makeDotStuffer()
      stuffer.push(fromLatin1("x\r"))
      stuffer.push(fromLatin1("\n"))
      assert.strictEqual(latin1(stuffer.end()), ".\r\n")
    })

    it("ignores empty chunks for line-start and end-of-data state", () => {
      const stuffer = MessageData.makeDotStuffer()
      stuffer.push(fromLatin1("a\r\n"))
      assert.strictEqual(stuffer.push(new Uint8Array(0)).length, 0)
      assert.strictEqual(latin1(stuffer.push(fromLatin1("."))), "..")
      stuffer.push(fromLatin1("\r\n"))
      stuffer.push(new Uint8Array(0))
      assert.strictEqual(latin1(stuffer.end()), ".\r\n")
    })

    it("stuffs a dot at the very start after leading empty chunks", () => {
      assert.strictEqual(stuffChunks([new Uint8Array(0), new Uint8Array(0), fromLatin1(".x")]), "..x\r\n.\r\n")
    })

    it("does not change the input chunk", () => {
      const chunk = fromLatin1(".a\n.b\n")
      MessageData.makeDotStuffer().push(chunk)
      assert.strictEqual(latin1(chunk), ".a\n.b\n")
    })

    it("returns the same instance for a chunk without a dot", () => {
      const chunk = fromLatin1("no dots here\r\n")
      assert.strictEqual(MessageData.makeDotStuffer().push(chunk), chunk)
    })

    it("handles a large chunk with many dots", () => {
      const input = ".\r\n".repeat(10_000)
      assert.strictEqual(stuffChunks([fromLatin1(input)]), "..\r\n".repeat(10_000) + ".\r\n")
    })
  })

  describe("dotStuffBytes", () => {
    it("matches the exact examples", () => {
      assert.strictEqual(latin1(MessageData.dotStuffBytes(fromLatin1("hello\r\n.\r\n"))), "hello\r\n..\r\n.\r\n")
      assert.strictEqual(latin1(MessageData.dotStuffBytes(new Uint8Array(0))), "\r\n.\r\n")
      assert.strictEqual(latin1(MessageData.dotStuffBytes(fromLatin1("a\r\n"))), "a\r\n.\r\n")
    })

    it.prop("equals smtplib's data() transformation", [trickyBytes], ([data]) => {
      assert.deepStrictEqual(MessageData.dotStuffBytes(data), smtplibData(data))
    }, { fastCheck: { numRuns: 500 } })

    it.prop("equals the DotStuffer fed any chunking", [trickyBytes, cuts], ([data, offsets]) => {
      assert.strictEqual(stuffChunks(splitAt(data, offsets)), latin1(MessageData.dotStuffBytes(data)))
    }, { fastCheck: { numRuns: 500 } })

    it.prop("never has a line starting with a single dot before the end", [trickyBytes], ([data]) => {
      const wire = latin1(MessageData.dotStuffBytes(data))
      // a server reads "CRLF.CRLF" (or ".CRLF" at the start) as the end: it must appear only at the very end
      const body = wire.slice(0, -3)
      assert.isFalse(body.startsWith(".\r\n"))
      assert.isFalse(body.includes("\r\n.\r\n"))
      assert.isTrue(wire.endsWith("\r\n.\r\n"))
    }, { fastCheck: { numRuns: 500 } })
  })

  describe("unstuff", () => {
    it("reverses stuffing and keeps the CRLF that ended the body", () => {
      assert.strictEqual(MessageData.unstuff("..a\r\nb\r\n..\r\n.\r\n"), ".a\r\nb\r\n.\r\n")
      assert.strictEqual(MessageData.unstuff("\r\n.\r\n"), "\r\n")
      assert.strictEqual(MessageData.unstuff(".\r\n"), "")
    })

    it("throws on data without the end", () => {
      assert.throws(() => MessageData.unstuff("hello\r\n"))
      assert.throws(() => MessageData.unstuff("hello.\r\n"))
    })

    it.prop("round-trips dotStuffBytes (with the CRLF that was added)", [trickyBytes], ([data]) => {
      const text = latin1(data)
      const expected = text.endsWith("\r\n") ? text : text + "\r\n"
      assert.strictEqual(MessageData.unstuff(latin1(MessageData.dotStuffBytes(data))), expected)
    }, { fastCheck: { numRuns: 500 } })
  })

  describe("dotStuff (Stream)", () => {
    it.effect("stuffs and ends a stream of chunks", () =>
      Effect.gen(function*() {
        const out = yield* runDotStuff([fromLatin1("Subject: x\r\n\r\n"), fromLatin1(".line\r\n"), fromLatin1("last")])
        assert.strictEqual(latin1(out), "Subject: x\r\n\r\n..line\r\n" + "last\r\n.\r\n")
      }))

    it.effect("ends an empty stream with CRLF.CRLF", () =>
      Effect.gen(function*() {
        assert.strictEqual(latin1(yield* runDotStuff([])), "\r\n.\r\n")
      }))

    it.effect("ends a stream ending in CRLF with .CRLF", () =>
      Effect.gen(function*() {
        assert.strictEqual(latin1(yield* runDotStuff([fromLatin1("a\r"), fromLatin1("\n")])), "a\r\n.\r\n")
      }))

    it.effect("emits the end of data as the last element", () =>
      Effect.gen(function*() {
        const out = yield* Stream.fromIterable([fromLatin1("a\r\n"), fromLatin1("b")]).pipe(
          MessageData.dotStuff,
          Stream.runCollect
        )
        assert.deepStrictEqual(Chunk.toReadonlyArray(out).map(latin1), ["a\r\n", "b", "\r\n.\r\n"])
      }))

    it.effect("passes a chunk without a dot through without copying it", () =>
      Effect.gen(function*() {
        const first = fromLatin1("no dot here\r\n")
        const second = fromLatin1("nor here")
        const out = Chunk.toReadonlyArray(
          yield* Stream.make(first, second).pipe(MessageData.dotStuff, Stream.runCollect)
        )
        assert.strictEqual(out.length, 3)
        assert.strictEqual(out[0], first)
        assert.strictEqual(out[1], second)
      }))

    it.effect("has fresh state on every run of the same stream", () =>
      Effect.gen(function*() {
        const stuffed = MessageData.dotStuff(Stream.make(fromLatin1("a\r\n"), fromLatin1(".b\r\n")))
        const once = latin1(concat(Chunk.toReadonlyArray(yield* Stream.runCollect(stuffed))))
        const twice = latin1(concat(Chunk.toReadonlyArray(yield* Stream.runCollect(stuffed))))
        assert.strictEqual(once, "a\r\n..b\r\n.\r\n")
        assert.strictEqual(twice, once)
      }))

    it.effect("keeps the stream's failure", () =>
      Effect.gen(function*() {
        const result = yield* Stream.make(fromLatin1("a")).pipe(
          Stream.concat(Stream.fail("boom")),
          MessageData.dotStuff,
          Stream.runCollect,
          Effect.either
        )
        assert.deepStrictEqual(result, Either.left("boom"))
      }))

    it.effect("gives the same bytes however the Effect chunks group the arrays", () =>
      Effect.gen(function*() {
        const parts = [".a\n", ".", "\n.", "b\r", ".c"].map(fromLatin1)
        for (const n of [1, 2, 3, 100]) {
          const out = yield* Stream.fromIterable(parts).pipe(
            Stream.rechunk(n),
            MessageData.dotStuff,
            Stream.runCollect,
            Effect.map((c) => latin1(concat(Chunk.toReadonlyArray(c))))
          )
          assert.strictEqual(out, "..a\n..\n..b\r..c\r\n.\r\n", `rechunk(${n})`)
        }
      }))

    it.effect.prop(
      "equals dotStuffBytes for any chunking",
      [trickyBytes, cuts],
      ([data, offsets]) =>
        Effect.gen(function*() {
          const out = yield* runDotStuff(splitAt(data, offsets))
          assert.deepStrictEqual(out, MessageData.dotStuffBytes(data))
        }),
      { fastCheck: { numRuns: 300 } }
    )
  })
})
