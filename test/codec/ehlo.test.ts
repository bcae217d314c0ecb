import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { parseFeatures } from "../../src/internal/ehlo.js"
import * as SmtpReply from "../../src/SmtpReply.js"

const entries = (lines: ReadonlyArray<string>): Array<readonly [string, string]> => [...parseFeatures(lines)]

describe("ehlo", () => {
  describe("parseFeatures", () => {
    it("parses Postfix's EHLO reply", () => {
      const reply = Either.getOrThrow(SmtpReply.fromLines([
        "250-mail.example.com",
        "250-PIPELINING",
        "250-SIZE 10485760",
        "250-VRFY",
        "250-ETRN",
        "250-STARTTLS",
        "250-AUTH PLAIN LOGIN",
        "250-AUTH=PLAIN LOGIN",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250-DSN",
        "250-SMTPUTF8",
        "250 CHUNKING"
      ]))
      assert.deepStrictEqual(entries(reply.lines), [
        ["pipelining", ""],
        ["size", "10485760"],
        ["vrfy", ""],
        ["etrn", ""],
        ["starttls", ""],
        ["auth", " PLAIN LOGIN PLAIN LOGIN"],
        ["enhancedstatuscodes", ""],
        ["8bitmime", ""],
        ["dsn", ""],
        ["smtputf8", ""],
        ["chunking", ""]
      ])
    })

    it("skips the first line (the greeting), even when it looks like a keyword", () => {
      assert.deepStrictEqual(entries(["SIZE 1000", "PIPELINING"]), [["pipelining", ""]])
      assert.deepStrictEqual(entries(["mx.test Hello client.test [127.0.0.1]"]), [])
    })

    it("gives an empty map for no lines", () => {
      assert.strictEqual(parseFeatures([]).size, 0)
    })

    it("stores keywords lower-case and keeps parameters as sent", () => {
      assert.deepStrictEqual(entries(["mx", "Size 2048", "x-Custom-EXT Foo BAR", "starttls"]), [
        ["size", "2048"],
        ["x-custom-ext", "Foo BAR"],
        ["starttls", ""]
      ])
    })

    it("trims parameters and keeps inner spacing", () => {
      assert.deepStrictEqual(entries(["mx", "SIZE   1000  ", "X-LIST a  b"]), [["size", "1000"], ["x-list", "a  b"]])
    })

    it("lets a later line replace an earlier one for keywords other than AUTH", () => {
      assert.deepStrictEqual(entries(["mx", "SIZE 1000", "size 2000"]), [["size", "2000"]])
    })

    it("accumulates AUTH lines, each with a leading space (smtplib's quirk)", () => {
      assert.deepStrictEqual(entries(["mx", "AUTH PLAIN", "AUTH LOGIN CRAM-MD5"]), [["auth", " PLAIN LOGIN CRAM-MD5"]])
    })

    it("reads the old AUTH= form alone", () => {
      assert.deepStrictEqual(entries(["mx", "AUTH=LOGIN PLAIN"]), [["auth", " LOGIN PLAIN"]])
    })

    it("reads the old AUTH= form case-insensitively", () => {
      assert.deepStrictEqual(entries(["mx", "auth=login", "Auth=PLAIN"]), [["auth", " login PLAIN"]])
    })

    it("accumulates AUTH= before AUTH", () => {
      assert.deepStrictEqual(entries(["mx", "AUTH=LOGIN", "AUTH PLAIN LOGIN"]), [["auth", " LOGIN PLAIN LOGIN"]])
    })

    it("keeps an empty AUTH line as an accumulated space", () => {
      assert.deepStrictEqual(entries(["mx", "AUTH"]), [["auth", " "]])
    })

    it("ignores lines that do not start with a keyword", () => {
      assert.deepStrictEqual(entries(["mx", " PIPELINING", "-X", "", "*", "ÉTRN", "DSN"]), [["dsn", ""]])
    })

    it("ignores smtp-sink's empty last line (\"250 \")", () => {
      const reply = Either.getOrThrow(SmtpReply.fromLines(["250-sink.test", "250-PIPELINING", "250-8BITMIME", "250 "]))
      assert.deepStrictEqual(entries(reply.lines), [["pipelining", ""], ["8bitmime", ""]])
    })

    it("takes the keyword up to the first character that cannot be in one (smtplib's regex)", () => {
      assert.deepStrictEqual(entries(["mx", "X_FOO bar", "SIZE=1000"]), [["x", "_FOO bar"], ["size", "=1000"]])
    })

    it("accepts a keyword starting with a digit", () => {
      assert.deepStrictEqual(entries(["mx", "8BITMIME", "0X"]), [["8bitmime", ""], ["0x", ""]])
    })

    it("gives a map that answers case-insensitive look-ups after lower-casing", () => {
      const features = parseFeatures(["mx", "STARTTLS", "SIZE 52428800"])
      assert.isTrue(features.has("starttls"))
      assert.isFalse(features.has("STARTTLS"))
      assert.strictEqual(features.get("size"), "52428800")
      assert.strictEqual(features.get("pipelining"), undefined)
    })
  })
})
