import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as ReplyDecoder from "../../src/internal/replyDecoder.js"
import { splitAt } from "../support/bytes.js"

const encoder = new TextEncoder()
const bytes = (s: string): Uint8Array => encoder.encode(s)

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

type Options = Parameters<typeof ReplyDecoder.make>[0]

interface PlainResult {
  readonly replies: ReadonlyArray<ReadonlyArray<string>>
  readonly failure?: ReplyDecoder.DecodeFailure | undefined
}

/** A decoder whose results hold the lines alone (the bytes are checked in "raw bytes"). */
const makeDecoder = (options?: Options) => {
  const decoder = ReplyDecoder.make(options)
  return {
    push: (chunk: Uint8Array): PlainResult => {
      const result = decoder.push(chunk)
      const replies = result.replies.map((r) => [...r])
      return "failure" in result ? { replies, failure: result.failure } : { replies }
    },
    buffered: decoder.buffered
  }
}

/** Pushes every chunk into a fresh decoder; collects all replies, their bytes and the first failure. */
const decodeWithBytes = (chunks: ReadonlyArray<Uint8Array>, options?: Options) => {
  const decoder = ReplyDecoder.make(options)
  const replies: Array<ReadonlyArray<string>> = []
  const raw: Array<Uint8Array> = []
  let failure: ReplyDecoder.DecodeFailure | undefined
  for (const chunk of chunks) {
    const result = decoder.push(chunk)
    for (const reply of result.replies) {
      replies.push([...reply])
      // a copy: a view could change when the chunk's buffer is reused
      raw.push(reply.bytes.slice())
    }
    if (result.failure !== undefined && failure === undefined) failure = result.failure
  }
  return { replies, raw, failure, buffered: decoder.buffered() }
}

/** Pushes every chunk into a fresh decoder; collects all replies and the first failure. */
const decodeChunks = (chunks: ReadonlyArray<Uint8Array>, options?: Options) => {
  const { buffered, failure, replies } = decodeWithBytes(chunks, options)
  return { replies, failure, buffered }
}

describe("replyDecoder", () => {
  describe("framing", () => {
    it("decodes a single-line reply", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250 ok\r\n")), { replies: [["250 ok"]] })
      assert.strictEqual(decoder.buffered(), 0)
    })

    it("decodes a multi-line reply as one reply", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n")), {
        replies: [["250-mx.test", "250-PIPELINING", "250 SIZE 1000"]]
      })
    })

    it("waits for the last line of a multi-line reply", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250-first\r\n250-second\r\n")), { replies: [] })
      assert.deepStrictEqual(decoder.push(bytes("250 third\r\n")), {
        replies: [["250-first", "250-second", "250 third"]]
      })
    })

    it("decodes several replies in one chunk, in order", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(
        decoder.push(bytes("250 ok\r\n250-a\r\n250 b\r\n550 5.1.1 no such user\r\n354 go ahead\r\n")),
        { replies: [["250 ok"], ["250-a", "250 b"], ["550 5.1.1 no such user"], ["354 go ahead"]] }
      )
    })

    it("accepts bare LF line endings (as smtplib does)", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250-a\n250 b\n220 hi\n")), {
        replies: [["250-a", "250 b"], ["220 hi"]]
      })
    })

    it("accepts CRLF and bare LF mixed inside one reply", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250-a\r\n250-b\n250 c\r\n")), {
        replies: [["250-a", "250-b", "250 c"]]
      })
    })

    it("drops only the one CR before LF; other CRs stay in the line", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250 a\rb\r\r\n")), { replies: [["250 a\rb\r"]] })
    })

    it("does not treat a lone CR as a line ending", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250 a\r250 b\r")), { replies: [] })
      assert.strictEqual(decoder.buffered(), 12)
      assert.deepStrictEqual(decoder.push(bytes("\n")), { replies: [["250 a\r250 b"]] })
    })

    it("ends a reply on a line of fewer than four bytes (\"250\" alone)", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250-a\r\n250\r\n")), { replies: [["250-a", "250"]] })
    })

    it("ends a reply on a line with a space after the code and no text (\"250 \", as smtp-sink sends)", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250-sink\r\n250-PIPELINING\r\n250 \r\n")), {
        replies: [["250-sink", "250-PIPELINING", "250 "]]
      })
    })

    it("decodes an empty line as a one-line reply (validation is the schema's job)", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("\r\n\n")), { replies: [[""], [""]] })
    })

    it("passes malformed lines through unvalidated", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("hello world\r\n999 x\r\n")), {
        replies: [["hello world"], ["999 x"]]
      })
    })

    it("returns nothing for an empty chunk", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(new Uint8Array(0)), { replies: [] })
      assert.strictEqual(decoder.buffered(), 0)
    })

    it("keeps decoding across many pushes", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("220 hi\r\n")), { replies: [["220 hi"]] })
      assert.deepStrictEqual(decoder.push(bytes("250 ok\r\n")), { replies: [["250 ok"]] })
      assert.deepStrictEqual(decoder.push(bytes("221 bye\r\n")), { replies: [["221 bye"]] })
    })

    it("copies buffered bytes: the caller may reuse its buffer", () => {
      const decoder = makeDecoder()
      const buffer = bytes("250 abc")
      assert.deepStrictEqual(decoder.push(buffer), { replies: [] })
      buffer.set(bytes("XXXXXXX"))
      assert.deepStrictEqual(decoder.push(bytes("\r\n")), { replies: [["250 abc"]] })
    })

    it("decodes bytes that are a view into a larger buffer", () => {
      const backing = bytes("junk250 ok\r\njunk")
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(backing.subarray(4, 12)), { replies: [["250 ok"]] })
    })
  })

  describe("chunk boundaries", () => {
    const stream = "220-mx.test ESMTP\r\n220 ready\r\n250 café ok\r\n550-5.1.1 日本 𝄞\n550 nope\r\n"
    const expected = [["220-mx.test ESMTP", "220 ready"], ["250 café ok"], ["550-5.1.1 日本 𝄞", "550 nope"]]

    it("decodes the same for a split at every byte position", () => {
      const data = bytes(stream)
      for (let i = 0; i <= data.length; i++) {
        const result = decodeChunks([data.subarray(0, i), data.subarray(i)])
        assert.deepStrictEqual(result.replies, expected, `split at ${i}`)
        assert.strictEqual(result.failure, undefined)
        assert.strictEqual(result.buffered, 0)
      }
    })

    it("decodes the same for every split into three chunks", () => {
      const data = bytes(stream)
      for (let i = 0; i <= data.length; i++) {
        for (let j = i; j <= data.length; j++) {
          const result = decodeChunks([data.subarray(0, i), data.subarray(i, j), data.subarray(j)])
          assert.deepStrictEqual(result.replies, expected, `split at ${i} and ${j}`)
        }
      }
    })

    it("decodes the same one byte at a time", () => {
      const data = bytes(stream)
      const chunks = Array.from(data, (_, i) => data.subarray(i, i + 1))
      assert.deepStrictEqual(decodeChunks(chunks).replies, expected)
    })

    it("decodes a UTF-8 character split in its middle", () => {
      const data = bytes("250 café ok\r\n")
      const e = data.indexOf(0xc3)
      assert.strictEqual(data[e + 1], 0xa9)
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(data.subarray(0, e + 1)), { replies: [] })
      assert.strictEqual(decoder.buffered(), e + 1)
      assert.deepStrictEqual(decoder.push(data.subarray(e + 1)), { replies: [["250 café ok"]] })
    })

    it("decodes a four-byte UTF-8 character split after each of its bytes", () => {
      const data = bytes("250 a𝄞b\r\n")
      const start = data.indexOf(0xf0)
      for (let k = 1; k <= 3; k++) {
        const result = decodeChunks([data.subarray(0, start + k), data.subarray(start + k)])
        assert.deepStrictEqual(result.replies, [["250 a𝄞b"]], `split after byte ${k}`)
      }
    })

    it("decodes a CRLF split between CR and LF", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250 ok\r")), { replies: [] })
      assert.deepStrictEqual(decoder.push(bytes("\n")), { replies: [["250 ok"]] })
    })

    it("decodes a continuation hyphen arriving in its own chunk", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250")), { replies: [] })
      assert.deepStrictEqual(decoder.push(bytes("-")), { replies: [] })
      assert.deepStrictEqual(decoder.push(bytes("a\r\n250 b\r\n")), { replies: [["250-a", "250 b"]] })
    })

    it("keeps a line that starts with a UTF-8 byte order mark unchanged (raw lines out)", () => {
      // TextDecoder strips a leading BOM unless `ignoreBOM` is set: a garbage line would lose bytes
      // and could turn into a valid reply.
      const decoder = makeDecoder()
      const data = concat([new Uint8Array([0xef, 0xbb, 0xbf]), bytes("250 ok\r\n")])
      assert.deepStrictEqual(decoder.push(data), { replies: [["\uFEFF250 ok"]] })
    })
  })

  describe("raw bytes", () => {
    it("hands over each reply's bytes as received, line ends included", () => {
      const wire = bytes("220-mx.test\r\n220 ready\n250 ok\r\n")
      const result = decodeWithBytes([wire])
      assert.deepStrictEqual(result.replies, [["220-mx.test", "220 ready"], ["250 ok"]])
      assert.deepStrictEqual(result.raw, [bytes("220-mx.test\r\n220 ready\n"), bytes("250 ok\r\n")])
    })

    it("keeps bytes that are not UTF-8, which the lines show as U+FFFD", () => {
      const wire = concat([bytes("250 "), new Uint8Array([0xff, 0xfe]), bytes(" ok\r\n")])
      const result = decodeWithBytes([wire])
      assert.deepStrictEqual(result.replies, [["250 \uFFFD\uFFFD ok"]])
      assert.deepStrictEqual(result.raw, [wire])
    })

    it("a reply within one chunk is a view into it, not a copy", () => {
      const chunk = bytes("250 a\r\n251-b\r\n251 c\r\n252-d")
      const { replies } = ReplyDecoder.make().push(chunk)
      assert.strictEqual(replies.length, 2)
      assert.strictEqual(replies[0].bytes.buffer, chunk.buffer)
      assert.strictEqual(replies[0].bytes.byteOffset, 0)
      assert.strictEqual(replies[1].bytes.buffer, chunk.buffer)
      assert.strictEqual(replies[1].bytes.byteOffset, 7)
      assert.deepStrictEqual(replies[1].bytes, bytes("251-b\r\n251 c\r\n"))
    })

    it("a reply over several chunks is joined from copies: the caller may reuse its buffers", () => {
      const decoder = ReplyDecoder.make()
      const first = bytes("250 ok\r\n220-caf")
      const second = concat([new Uint8Array([0xe9]), bytes("\r\n220 ")])
      assert.strictEqual(decoder.push(first).replies.length, 1)
      first.fill(0x58)
      assert.deepStrictEqual(decoder.push(second).replies, [])
      second.fill(0x58)
      const { replies } = decoder.push(bytes("x\r\n"))
      assert.deepStrictEqual([...replies[0]], ["220-caf\uFFFD", "220 x"])
      assert.deepStrictEqual(
        replies[0].bytes,
        concat([bytes("220-caf"), new Uint8Array([0xe9]), bytes("\r\n220 x\r\n")])
      )
    })

    it("keeps the exact bytes for a split at every byte position", () => {
      const wire = concat([
        bytes("220-mx "),
        new Uint8Array([0xe9, 0xc3]),
        bytes("\r\n220 ok\n550 "),
        new Uint8Array([0xff]),
        bytes("\r\n")
      ])
      const expected = [wire.subarray(0, wire.indexOf(10, 15) + 1), wire.subarray(wire.indexOf(10, 15) + 1)]
      for (let i = 0; i <= wire.length; i++) {
        for (let j = i; j <= wire.length; j++) {
          const result = decodeWithBytes([wire.subarray(0, i), wire.subarray(i, j), wire.subarray(j)])
          assert.deepStrictEqual(result.raw, expected.map((e) => e.slice()), `split at ${i} and ${j}`)
          assert.strictEqual(result.buffered, 0)
        }
      }
    })
  })

  describe("limits", () => {
    it("has smtplib's _MAXLINE and a bounded line count", () => {
      assert.strictEqual(ReplyDecoder.MAX_LINE, 8192)
      assert.strictEqual(ReplyDecoder.MAX_LINES, 1000)
    })

    it("accepts a line of exactly 8192 bytes, CRLF included", () => {
      const text = "250 " + "x".repeat(8192 - 6)
      const data = bytes(text + "\r\n")
      assert.strictEqual(data.length, 8192)
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(data), { replies: [[text]] })
    })

    it("accepts a line of exactly 8192 bytes, bare LF included", () => {
      const text = "250 " + "x".repeat(8192 - 5)
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes(text + "\n")), { replies: [[text]] })
    })

    it("accepts an 8192-byte line arriving in many chunks", () => {
      const text = "250 " + "y".repeat(8192 - 6)
      const data = bytes(text + "\r\n")
      const chunks = splitAt(data, [1, 100, 4096, 8000, 8190, 8191])
      assert.deepStrictEqual(decodeChunks(chunks), { replies: [[text]], failure: undefined, buffered: 0 })
    })

    it("fails with LineTooLong on a line of 8193 bytes", () => {
      const text = "250 " + "x".repeat(8192 - 5)
      const data = bytes(text + "\r\n")
      assert.strictEqual(data.length, 8193)
      const decoder = makeDecoder()
      const result = decoder.push(data)
      assert.deepStrictEqual(result.replies, [])
      assert.deepStrictEqual(result.failure, { _tag: "LineTooLong", line: text.slice(0, 80) })
    })

    it("fails with LineTooLong when the 8193rd byte is the LF of a buffered line", () => {
      const decoder = makeDecoder()
      const text = "250 " + "z".repeat(8192 - 5)
      assert.deepStrictEqual(decoder.push(bytes(text + "\r")), { replies: [] })
      assert.strictEqual(decoder.buffered(), 8192)
      const result = decoder.push(bytes("\n"))
      assert.deepStrictEqual(result.failure, { _tag: "LineTooLong", line: text.slice(0, 80) })
    })

    it("fails at once on an over-long partial line, without waiting for its LF", () => {
      const decoder = makeDecoder()
      const result = decoder.push(bytes("250 " + "x".repeat(8189)))
      assert.deepStrictEqual(result, { replies: [], failure: { _tag: "LineTooLong", line: "250 " + "x".repeat(76) } })
    })

    it("fails at once when a partial line grows over the limit across chunks", () => {
      const decoder = makeDecoder()
      assert.deepStrictEqual(decoder.push(bytes("250 " + "x".repeat(4000))), { replies: [] })
      assert.deepStrictEqual(decoder.push(bytes("x".repeat(4188))), { replies: [] })
      assert.strictEqual(decoder.buffered(), 8192)
      const result = decoder.push(bytes("x"))
      assert.deepStrictEqual(result, { replies: [], failure: { _tag: "LineTooLong", line: "250 " + "x".repeat(76) } })
    })

    it("returns the replies completed before an over-long line together with the failure", () => {
      const decoder = makeDecoder()
      const result = decoder.push(bytes("250 ok\r\n251 fine\r\n" + "5".repeat(9000) + "\r\n"))
      assert.deepStrictEqual(result, {
        replies: [["250 ok"], ["251 fine"]],
        failure: { _tag: "LineTooLong", line: "5".repeat(80) }
      })
    })

    it("honours a smaller maxLine", () => {
      const ok = decodeChunks([bytes("250 abcdef\r\n")], { maxLine: 12 })
      assert.deepStrictEqual(ok, { replies: [["250 abcdef"]], failure: undefined, buffered: 0 })
      const tooLong = decodeChunks([bytes("250 abcdefg\r\n")], { maxLine: 12 })
      assert.deepStrictEqual(tooLong.failure, { _tag: "LineTooLong", line: "250 abcdefg\r\n" })
    })

    it("accepts a reply of exactly MAX_LINES lines", () => {
      const lines = [...Array.from({ length: 999 }, (_, i) => `250-line ${i}`), "250 last"]
      const result = decodeChunks([bytes(lines.map((l) => l + "\r\n").join(""))])
      assert.deepStrictEqual(result, { replies: [lines], failure: undefined, buffered: 0 })
    })

    it("fails with TooManyLines on a reply of MAX_LINES + 1 lines", () => {
      const lines = [...Array.from({ length: 1000 }, (_, i) => `250-line ${i}`), "250 last"]
      const decoder = makeDecoder()
      const result = decoder.push(bytes(lines.map((l) => l + "\r\n").join("")))
      assert.deepStrictEqual(result, { replies: [], failure: { _tag: "TooManyLines", line: "250-line 0" } })
    })

    it("fails with TooManyLines without waiting for the end of the reply", () => {
      const decoder = makeDecoder({ maxLines: 3 })
      assert.deepStrictEqual(decoder.push(bytes("250-a\r\n250-b\r\n250-c\r\n")), { replies: [] })
      const result = decoder.push(bytes("250-d\r\n"))
      assert.deepStrictEqual(result, { replies: [], failure: { _tag: "TooManyLines", line: "250-a" } })
    })

    it("counts lines per reply, not per stream", () => {
      const result = decodeChunks([bytes("250-a\r\n250 b\r\n250-c\r\n250 d\r\n250-e\r\n250 f\r\n")], { maxLines: 2 })
      assert.deepStrictEqual(result, {
        replies: [["250-a", "250 b"], ["250-c", "250 d"], ["250-e", "250 f"]],
        failure: undefined,
        buffered: 0
      })
    })

    it("truncates the line in a TooManyLines failure to 80 characters", () => {
      const first = "250-" + "q".repeat(200)
      const result = decodeChunks([bytes(`${first}\r\n250-b\r\n250 c\r\n`)], { maxLines: 2 })
      assert.deepStrictEqual(result.failure, { _tag: "TooManyLines", line: first.slice(0, 80) })
    })
  })

  describe("after a failure", () => {
    it("decodes nothing more and repeats the failure", () => {
      const decoder = makeDecoder({ maxLine: 10 })
      const failure = { _tag: "LineTooLong", line: "250 too long" } as const
      assert.deepStrictEqual(decoder.push(bytes("250 too long")), { replies: [], failure })
      assert.deepStrictEqual(decoder.push(bytes("\r\n250 ok\r\n")), { replies: [], failure })
      assert.deepStrictEqual(decoder.push(bytes("250 ok\r\n")), { replies: [], failure })
    })

    it("decodes nothing more after TooManyLines", () => {
      const decoder = makeDecoder({ maxLines: 1 })
      const failure = { _tag: "TooManyLines", line: "250-a" } as const
      assert.deepStrictEqual(decoder.push(bytes("250-a\r\n250 b\r\n250 c\r\n")), { replies: [], failure })
      assert.deepStrictEqual(decoder.push(bytes("250 d\r\n")), { replies: [], failure })
    })
  })

  describe("buffered", () => {
    it("is 0 for a fresh decoder", () => {
      assert.strictEqual(makeDecoder().buffered(), 0)
    })

    it("counts a partial line", () => {
      const decoder = makeDecoder()
      decoder.push(bytes("250 o"))
      assert.strictEqual(decoder.buffered(), 5)
      decoder.push(bytes("k"))
      assert.strictEqual(decoder.buffered(), 6)
    })

    it("counts the complete lines of an unfinished reply, terminators included", () => {
      const decoder = makeDecoder()
      decoder.push(bytes("250-first\r\n"))
      assert.strictEqual(decoder.buffered(), 11)
      decoder.push(bytes("250-second\n"))
      assert.strictEqual(decoder.buffered(), 22)
      decoder.push(bytes("250 la"))
      assert.strictEqual(decoder.buffered(), 28)
      decoder.push(bytes("st\r\n"))
      assert.strictEqual(decoder.buffered(), 0)
    })

    it("counts only what follows the last complete reply", () => {
      const decoder = makeDecoder()
      const result = decoder.push(bytes("250 ok\r\n250-a\r\n250 b"))
      assert.deepStrictEqual(result, { replies: [["250 ok"]] })
      assert.strictEqual(decoder.buffered(), 12)
    })

    it("counts bytes, not characters", () => {
      const decoder = makeDecoder()
      decoder.push(bytes("250-é\r\n250 €"))
      assert.strictEqual(decoder.buffered(), 8 + 7)
    })
  })

  describe("properties", () => {
    const textChar = FastCheck.oneof(
      FastCheck.integer({ min: 0x20, max: 0x7e }),
      FastCheck.constant(0x09),
      FastCheck.integer({ min: 0xa0, max: 0xd7ff }),
      FastCheck.integer({ min: 0xe000, max: 0xfffd }),
      FastCheck.integer({ min: 0x10000, max: 0x10ffff })
    ).map((cp) => String.fromCodePoint(cp))

    const reply = FastCheck.record({
      code: FastCheck.integer({ min: 100, max: 599 }),
      lines: FastCheck.array(
        FastCheck.record({
          text: FastCheck.array(textChar, { maxLength: 40 }).map((cs) => cs.join("")),
          eol: FastCheck.constantFrom("\r\n", "\n")
        }),
        { minLength: 1, maxLength: 5 }
      )
    })

    const serialise = (replies: ReadonlyArray<typeof reply extends FastCheck.Arbitrary<infer A> ? A : never>) => {
      const expected = replies.map(({ code, lines }) =>
        lines.map(({ text }, i) => `${code}${i === lines.length - 1 ? " " : "-"}${text}`)
      )
      const wire = replies.map(({ code, lines }) =>
        lines.map(({ eol, text }, i) => `${code}${i === lines.length - 1 ? " " : "-"}${text}${eol}`).join("")
      ).join("")
      return { expected, wire: bytes(wire) }
    }

    /** Replies whose text is any bytes but LF (not UTF-8, CRs), and their exact bytes. */
    const byteReply = FastCheck.record({
      code: FastCheck.integer({ min: 100, max: 599 }),
      lines: FastCheck.array(
        FastCheck.record({
          text: FastCheck.uint8Array({ maxLength: 30 }).map((b) => b.filter((x) => x !== 10)),
          eol: FastCheck.constantFrom("\r\n", "\n")
        }),
        { minLength: 1, maxLength: 4 }
      )
    })
    const replyBytes = ({ code, lines }: typeof byteReply extends FastCheck.Arbitrary<infer A> ? A : never) =>
      concat(lines.flatMap(({ eol, text }, i) => [
        bytes(`${code}${i === lines.length - 1 ? " " : "-"}`),
        text,
        bytes(eol)
      ]))

    it.prop(
      "any chunking decodes the same replies as one push",
      [FastCheck.array(reply, { maxLength: 8 }), FastCheck.array(FastCheck.nat({ max: 100_000 }), { maxLength: 40 })],
      ([replies, cuts]) => {
        const { expected, wire } = serialise(replies)
        const whole = decodeChunks([wire])
        assert.deepStrictEqual(whole, { replies: expected, failure: undefined, buffered: 0 })
        const chunked = decodeChunks(splitAt(wire, cuts))
        assert.deepStrictEqual(chunked, whole)
      },
      { fastCheck: { numRuns: 300 } }
    )

    it.prop(
      "any chunking gives every reply its exact bytes, whatever they are",
      [
        FastCheck.array(byteReply, { maxLength: 6 }),
        FastCheck.array(FastCheck.nat({ max: 100_000 }), { maxLength: 30 })
      ],
      ([replies, cuts]) => {
        const expected = replies.map(replyBytes)
        const wire = concat(expected)
        const whole = decodeWithBytes([wire])
        assert.deepStrictEqual(whole.raw, expected)
        assert.strictEqual(whole.failure, undefined)
        assert.strictEqual(whole.buffered, 0)
        const chunked = decodeWithBytes(splitAt(wire, cuts))
        assert.deepStrictEqual(chunked, whole)
      },
      { fastCheck: { numRuns: 300 } }
    )

    it.prop(
      "one byte at a time decodes the same replies as one push",
      [FastCheck.array(reply, { maxLength: 4 })],
      ([replies]) => {
        const { expected, wire } = serialise(replies)
        const chunks = Array.from(wire, (_, i) => wire.subarray(i, i + 1))
        assert.deepStrictEqual(decodeChunks(chunks), { replies: expected, failure: undefined, buffered: 0 })
      },
      { fastCheck: { numRuns: 100 } }
    )

    it.prop(
      "a truncated stream buffers exactly the bytes after the last complete reply",
      [FastCheck.array(reply, { minLength: 1, maxLength: 6 }), FastCheck.nat()],
      ([replies, n]) => {
        const { expected, wire } = serialise(replies)
        const cut = n % (wire.length + 1)
        const result = decodeChunks([wire.subarray(0, cut)])
        const complete = result.replies.length
        assert.deepStrictEqual(result.replies, expected.slice(0, complete))
        const consumed = serialise(replies.slice(0, complete)).wire.length
        assert.strictEqual(result.buffered, cut - consumed)
      },
      { fastCheck: { numRuns: 200 } }
    )
  })
})
