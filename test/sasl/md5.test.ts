import { assert, describe, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import { hmacMd5, md5 } from "../../src/internal/sasl/md5.js"
import { bytes } from "./_helpers.js"

const hex = (digest: Uint8Array): string => Buffer.from(digest).toString("hex")
const repeat = (byte: number, length: number): Uint8Array => new Uint8Array(length).fill(byte)

describe("MD5 (RFC 1321)", () => {
  it("matches the test suite of RFC 1321 §A.5", () => {
    const suite: ReadonlyArray<readonly [string, string]> = [
      ["", "d41d8cd98f00b204e9800998ecf8427e"],
      ["a", "0cc175b9c0f1b6a831c399e269772661"],
      ["abc", "900150983cd24fb0d6963f7d28e17f72"],
      ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
      ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
      ["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"],
      ["1234567890".repeat(8), "57edf4a22be3c955ac49da2e2107b67a"]
    ]
    for (const [message, digest] of suite) assert.strictEqual(hex(md5(bytes(message))), digest, message)
  })

  it("agrees with node:crypto around the padding boundaries and on a long input", () => {
    const lengths = [...Array.from({ length: 200 }, (_, i) => i), 1000, 4095, 4096, 4097, 1_000_003]
    for (const length of lengths) {
      const message = new Uint8Array(Crypto.randomBytes(length))
      assert.strictEqual(hex(md5(message)), Crypto.createHash("md5").update(message).digest("hex"), `${length}`)
    }
  })
})

describe("HMAC-MD5 (RFC 2104)", () => {
  it("matches the test cases of RFC 2202 §2 (the first three are RFC 2104's)", () => {
    const cases: ReadonlyArray<readonly [Uint8Array, Uint8Array, string]> = [
      [repeat(0x0b, 16), bytes("Hi There"), "9294727a3638bb1c13f48ef8158bfc9d"],
      [bytes("Jefe"), bytes("what do ya want for nothing?"), "750c783e6ab0b503eaa86e310a5db738"],
      [repeat(0xaa, 16), repeat(0xdd, 50), "56be34521d144c88dbb8c733f0e8b3f6"],
      [Uint8Array.from({ length: 25 }, (_, i) => i + 1), repeat(0xcd, 50), "697eaf0aca3a3aea3a75164746ffaa79"],
      [repeat(0x0c, 16), bytes("Test With Truncation"), "56461ef2342edc00f9bab995690efd4c"],
      [
        repeat(0xaa, 80),
        bytes("Test Using Larger Than Block-Size Key - Hash Key First"),
        "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
      ],
      [
        repeat(0xaa, 80),
        bytes("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"),
        "6f630fad67cda0ee1fb1f562db3aa53e"
      ]
    ]
    for (const [key, data, digest] of cases) assert.strictEqual(hex(hmacMd5(key, data)), digest)
  })

  it("matches RFC 2195's CRAM-MD5 example", () => {
    const digest = hmacMd5(bytes("tanstaaftanstaaf"), bytes("<1896.697170952@postoffice.reston.mci.net>"))
    assert.strictEqual(hex(digest), "b913a602c7eda7a495b4e6e7334d3890")
  })

  it("agrees with node:crypto for keys shorter than, equal to and longer than the block", () => {
    for (const keyLength of [0, 1, 63, 64, 65, 200]) {
      for (const length of [0, 1, 55, 56, 64, 300]) {
        const key = new Uint8Array(Crypto.randomBytes(keyLength))
        const message = new Uint8Array(Crypto.randomBytes(length))
        const expected = Crypto.createHmac("md5", key).update(message).digest("hex")
        assert.strictEqual(hex(hmacMd5(key, message)), expected, `key ${keyLength}, message ${length}`)
      }
    }
  })
})
