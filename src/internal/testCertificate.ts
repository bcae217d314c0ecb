/**
 * A throwaway certificate authority for the test server: an ECDSA P-256 CA and a server
 * certificate it signs (for localhost, 127.0.0.1 and ::1), made with Web Crypto and a small DER
 * encoder, so no X.509 library is needed.
 *
 * @internal
 */
import * as Encoding from "effect/Encoding"
import { concatBytes } from "./bytes.js"

/** PEM texts. */
export interface Pki {
  /** The CA certificate: what the client trusts (`tls.ca`). */
  readonly ca: string
  /** The server certificate, signed by the CA. */
  readonly cert: string
  /** The server's private key (PKCS #8). */
  readonly key: string
}

// --- DER ---------------------------------------------------------------------------------------

const bytes = (...parts: ReadonlyArray<Uint8Array | ReadonlyArray<number>>): Uint8Array =>
  concatBytes(parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))))

const tlv = (tag: number, ...content: ReadonlyArray<Uint8Array>): Uint8Array => {
  const body = bytes(...content)
  const n = body.length
  const length = n < 0x80 ?
    [n] :
    n < 0x100 ?
    [0x81, n] :
    n < 0x10000 ?
    [0x82, n >> 8, n & 0xff] :
    [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]
  return bytes([tag], length, body)
}

const sequence = (...content: ReadonlyArray<Uint8Array>) => tlv(0x30, ...content)
const set = (...content: ReadonlyArray<Uint8Array>) => tlv(0x31, ...content)

/** An unsigned big-endian integer as a DER INTEGER (minimal, positive). */
const integer = (value: Uint8Array | number): Uint8Array => {
  let b = typeof value === "number" ? Uint8Array.of(value) : value
  let i = 0
  while (i < b.length - 1 && b[i] === 0) i++
  b = b.subarray(i)
  return tlv(0x02, (b[0] & 0x80) !== 0 ? bytes([0], b) : b)
}

const oid = (dotted: string): Uint8Array => {
  const [a, b, ...rest] = dotted.split(".").map(Number)
  const out: Array<number> = [a * 40 + b]
  for (const n of rest) {
    const groups: Array<number> = [n & 0x7f]
    for (let v = n >>> 7; v > 0; v >>>= 7) groups.unshift((v & 0x7f) | 0x80)
    out.push(...groups)
  }
  return tlv(0x06, Uint8Array.from(out))
}

const utf8String = (s: string) => tlv(0x0c, new TextEncoder().encode(s))
const octetString = (b: Uint8Array) => tlv(0x04, b)
const bitString = (b: Uint8Array, unusedBits = 0) => tlv(0x03, bytes([unusedBits], b))
const boolean = (v: boolean) => tlv(0x01, Uint8Array.of(v ? 0xff : 0))
const explicit = (n: number, content: Uint8Array) => tlv(0xa0 + n, content)

const utcTime = (date: Date): Uint8Array => {
  const two = (n: number) => String(n).padStart(2, "0")
  const text = `${two(date.getUTCFullYear() % 100)}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}` +
    `${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`
  return tlv(0x17, new TextEncoder().encode(text))
}

const name = (commonName: string) => sequence(set(sequence(oid("2.5.4.3"), utf8String(commonName))))

const extension = (id: string, critical: boolean, value: Uint8Array) =>
  sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value))

const ecdsaWithSha256 = sequence(oid("1.2.840.10045.4.3.2"))

/** Web Crypto's ECDSA signature (r ‖ s, 32 bytes each) as the DER X.509 wants. */
const derSignature = (raw: Uint8Array) => sequence(integer(raw.subarray(0, 32)), integer(raw.subarray(32)))

const pem = (label: string, der: Uint8Array) => {
  const base64 = Encoding.encodeBase64(der)
  const lines = base64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

// --- certificates ------------------------------------------------------------------------------

const algorithm = { name: "ECDSA", namedCurve: "P-256" } as const

const keyId = async (spki: Uint8Array) => {
  // the key identifier of RFC 5280 §4.2.1.2 (1): SHA-1 of the subjectPublicKey bits
  // (the SPKI of a P-256 key ends with the 65 bytes of the uncompressed point)
  const point = spki.subarray(spki.length - 65)
  return new Uint8Array(await crypto.subtle.digest("SHA-1", point))
}

const serial = () => {
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[0] &= 0x7f
  return b
}

const sign = async (tbs: Uint8Array, key: Parameters<typeof crypto.subtle.sign>[1]) => {
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, tbs))
  return sequence(tbs, ecdsaWithSha256, bitString(derSignature(signature)))
}

const ipv4 = (text: string) => Uint8Array.from(text.split(".").map(Number))

/**
 * A CA and a server certificate for `names` (DNS names and IP addresses; default localhost,
 * 127.0.0.1 and ::1), valid from a day ago for `days` days.
 */
export const generate = async (options: {
  readonly commonName?: string | undefined
  readonly dnsNames?: ReadonlyArray<string> | undefined
  readonly days?: number | undefined
} = {}): Promise<Pki> => {
  const now = Date.now()
  const notBefore = new Date(now - 24 * 60 * 60 * 1000)
  const notAfter = new Date(now + (options.days ?? 30) * 24 * 60 * 60 * 1000)
  const validity = sequence(utcTime(notBefore), utcTime(notAfter))

  const caKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  const caSpki = new Uint8Array(await crypto.subtle.exportKey("spki", caKeys.publicKey))
  const caKeyId = await keyId(caSpki)
  const caName = name("effect-smtp TestSmtpServer CA")
  const caTbs = sequence(
    explicit(0, integer(2)),
    integer(serial()),
    ecdsaWithSha256,
    caName,
    validity,
    caName,
    caSpki,
    explicit(
      3,
      sequence(
        extension("2.5.29.19", true, sequence(boolean(true))),
        // keyCertSign and cRLSign
        extension("2.5.29.15", true, bitString(Uint8Array.of(0x06), 1)),
        extension("2.5.29.14", false, octetString(caKeyId))
      )
    )
  )
  const ca = await sign(caTbs, caKeys.privateKey)

  const serverKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"])
  const serverSpki = new Uint8Array(await crypto.subtle.exportKey("spki", serverKeys.publicKey))
  const dnsNames = options.dnsNames ?? ["localhost"]
  const altNames = sequence(
    ...dnsNames.map((n) => tlv(0x82, new TextEncoder().encode(n))),
    tlv(0x87, ipv4("127.0.0.1")),
    tlv(0x87, bytes(new Uint8Array(15), [1]))
  )
  const serverTbs = sequence(
    explicit(0, integer(2)),
    integer(serial()),
    ecdsaWithSha256,
    caName,
    validity,
    name(options.commonName ?? dnsNames[0] ?? "localhost"),
    serverSpki,
    explicit(
      3,
      sequence(
        extension("2.5.29.19", true, sequence()),
        // digitalSignature
        extension("2.5.29.15", true, bitString(Uint8Array.of(0x80), 7)),
        // serverAuth
        extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"))),
        extension("2.5.29.17", false, altNames),
        extension("2.5.29.14", false, octetString(await keyId(serverSpki))),
        extension("2.5.29.35", false, sequence(tlv(0x80, caKeyId)))
      )
    )
  )
  const cert = await sign(serverTbs, caKeys.privateKey)
  const key = new Uint8Array(await crypto.subtle.exportKey("pkcs8", serverKeys.privateKey))
  return { ca: pem("CERTIFICATE", ca), cert: pem("CERTIFICATE", cert), key: pem("PRIVATE KEY", key) }
}
