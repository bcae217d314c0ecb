/**
 * MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), for CRAM-MD5 (RFC 2195) only: Web Crypto has no MD5.
 * Pure and synchronous: bytes in, bytes out. Not for anything new: MD5 is broken as a hash.
 *
 * @internal
 */

/** The sine table of RFC 1321 §3.4: `floor(abs(sin(i + 1)) * 2^32)`, written out (Math.sin is not exact everywhere). */
const K = [
  0xd76aa478,
  0xe8c7b756,
  0x242070db,
  0xc1bdceee,
  0xf57c0faf,
  0x4787c62a,
  0xa8304613,
  0xfd469501,
  0x698098d8,
  0x8b44f7af,
  0xffff5bb1,
  0x895cd7be,
  0x6b901122,
  0xfd987193,
  0xa679438e,
  0x49b40821,
  0xf61e2562,
  0xc040b340,
  0x265e5a51,
  0xe9b6c7aa,
  0xd62f105d,
  0x02441453,
  0xd8a1e681,
  0xe7d3fbc8,
  0x21e1cde6,
  0xc33707d6,
  0xf4d50d87,
  0x455a14ed,
  0xa9e3e905,
  0xfcefa3f8,
  0x676f02d9,
  0x8d2a4c8a,
  0xfffa3942,
  0x8771f681,
  0x6d9d6122,
  0xfde5380c,
  0xa4beea44,
  0x4bdecfa9,
  0xf6bb4b60,
  0xbebfbc70,
  0x289b7ec6,
  0xeaa127fa,
  0xd4ef3085,
  0x04881d05,
  0xd9d4d039,
  0xe6db99e5,
  0x1fa27cf8,
  0xc4ac5665,
  0xf4292244,
  0x432aff97,
  0xab9423a7,
  0xfc93a039,
  0x655b59c3,
  0x8f0ccc92,
  0xffeff47d,
  0x85845dd1,
  0x6fa87e4f,
  0xfe2ce6e0,
  0xa3014314,
  0x4e0811a1,
  0xf7537e82,
  0xbd3af235,
  0x2ad7d2bb,
  0xeb86d391
]

/** The left-rotation amounts: four per round. */
const S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]

/** The MD5 digest (16 bytes) of some bytes. */
export const md5 = (message: Uint8Array): Uint8Array => {
  const length = message.length
  // little-endian 32-bit words: the message, 0x80, zeros, the bit length (64 bits), a multiple of 64 bytes
  const words = new Uint32Array((((length + 8) >>> 6) + 1) * 16)
  for (let i = 0; i < length; i++) words[i >> 2] |= message[i] << ((i & 3) << 3)
  words[length >> 2] |= 0x80 << ((length & 3) << 3)
  words[words.length - 2] = (length << 3) >>> 0
  words[words.length - 1] = Math.floor(length / 0x20000000)
  const state = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]
  for (let block = 0; block < words.length; block += 16) {
    let [a, b, c, d] = state
    for (let i = 0; i < 64; i++) {
      const round = i >> 4
      const f = round === 0
        ? (b & c) | (~b & d)
        : round === 1
        ? (d & b) | (~d & c)
        : round === 2
        ? b ^ c ^ d
        : c ^ (b | ~d)
      const g = round === 0 ? i : round === 1 ? (5 * i + 1) & 15 : round === 2 ? (3 * i + 5) & 15 : (7 * i) & 15
      const x = (a + f + K[i] + words[block + g]) | 0
      const s = S[(round << 2) | (i & 3)]
      a = d
      d = c
      c = b
      b = (b + ((x << s) | (x >>> (32 - s)))) | 0
    }
    state[0] = (state[0] + a) | 0
    state[1] = (state[1] + b) | 0
    state[2] = (state[2] + c) | 0
    state[3] = (state[3] + d) | 0
  }
  const digest = new Uint8Array(16)
  for (let i = 0; i < 16; i++) digest[i] = state[i >> 2] >>> ((i & 3) << 3)
  return digest
}

/** HMAC-MD5 (RFC 2104) of a message under a key of any length. */
export const hmacMd5 = (key: Uint8Array, message: Uint8Array): Uint8Array => {
  const block = new Uint8Array(64)
  block.set(key.length > 64 ? md5(key) : key)
  const inner = new Uint8Array(64 + message.length)
  const outer = new Uint8Array(64 + 16)
  for (let i = 0; i < 64; i++) {
    inner[i] = block[i] ^ 0x36
    outer[i] = block[i] ^ 0x5c
  }
  inner.set(message, 64)
  outer.set(md5(inner), 64)
  return md5(outer)
}
