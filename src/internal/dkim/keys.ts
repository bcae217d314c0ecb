/**
 * DKIM private keys on Web Crypto: PEM (PKCS#8 for RSA and Ed25519, PKCS#1 "RSA PRIVATE KEY"
 * wrapped into PKCS#8 by a small DER writer) or the base64 32-byte Ed25519 seed of RFC 8463.
 * The key is imported once, not extractable; the public key is derived from it for the DNS
 * record. No error reason ever holds key material.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import { SmtpInvalidInput } from "../../SmtpError.js"
import { concatBytes } from "../bytes.js"

/** Web Crypto's types, as the runtime's global `crypto` has them (lib has no DOM here). */
type Subtle = typeof globalThis.crypto.subtle
type CryptoKey = Parameters<Subtle["sign"]>[1]

/** @internal */
export type Algorithm = "rsa-sha256" | "ed25519-sha256"

/** A key ready to sign, and the public key text of its DNS record (`p=`). @internal */
export interface ImportedKey {
  readonly algorithm: Algorithm
  readonly key: CryptoKey
  readonly publicKey: string
  readonly bits: number | undefined
}

const invalid = (reason: string) => new SmtpInvalidInput({ reason: `DKIM private key: ${reason}` })

// ---------------------------------------------------------------------------------------------
// DER, just enough for PrivateKeyInfo (RFC 5208) and its AlgorithmIdentifier

const derLength = (n: number): Uint8Array => {
  if (n < 0x80) return Uint8Array.of(n)
  const bytes: Array<number> = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Uint8Array.of(0x80 | bytes.length, ...bytes)
}

const derTlv = (tag: number, content: Uint8Array): Uint8Array =>
  concatBytes([Uint8Array.of(tag), derLength(content.length), content])

const fromHex = (text: string): Uint8Array => Uint8Array.from(text.match(/../g)!, (b) => parseInt(b, 16))

/** AlgorithmIdentifier { rsaEncryption, NULL } */
const RSA_ALGORITHM_ID = fromHex("300d06092a864886f70d0101010500")
/** AlgorithmIdentifier { id-Ed25519 } (RFC 8410) */
const ED25519_ALGORITHM_ID = fromHex("300506032b6570")
const VERSION_0 = fromHex("020100")

const RSA_OID = "2a864886f70d010101"
const ED25519_OID = "2b6570"

/** PKCS#1 RSAPrivateKey → PKCS#8 PrivateKeyInfo. @internal */
export const wrapPkcs1 = (pkcs1: Uint8Array): Uint8Array =>
  derTlv(0x30, concatBytes([VERSION_0, RSA_ALGORITHM_ID, derTlv(0x04, pkcs1)]))

/** A 32-byte Ed25519 seed → PKCS#8 PrivateKeyInfo (RFC 8410 §7). @internal */
export const wrapEd25519Seed = (seed: Uint8Array): Uint8Array =>
  derTlv(0x30, concatBytes([VERSION_0, ED25519_ALGORITHM_ID, derTlv(0x04, derTlv(0x04, seed))]))

interface Tlv {
  readonly tag: number
  readonly start: number
  readonly end: number
}

const readTlv = (der: Uint8Array, at: number, limit: number): Tlv | undefined => {
  if (at + 2 > limit) return undefined
  const tag = der[at]!
  let length = der[at + 1]!
  let start = at + 2
  if (length & 0x80) {
    const n = length & 0x7f
    if (n === 0 || n > 4 || start + n > limit) return undefined
    length = 0
    for (let i = 0; i < n; i++) length = length * 256 + der[start + i]!
    start += n
  }
  const end = start + length
  return end > limit ? undefined : { tag, start, end }
}

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

/** The key type named by a PKCS#8 PrivateKeyInfo, or undefined when it is not one. @internal */
export const pkcs8KeyType = (der: Uint8Array): "rsa" | "ed25519" | "other" | undefined => {
  const outer = readTlv(der, 0, der.length)
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== der.length) return undefined
  const version = readTlv(der, outer.start, outer.end)
  if (version === undefined || version.tag !== 0x02) return undefined
  const algorithm = readTlv(der, version.end, outer.end)
  if (algorithm === undefined || algorithm.tag !== 0x30) return undefined
  const oid = readTlv(der, algorithm.start, algorithm.end)
  if (oid === undefined || oid.tag !== 0x06) return undefined
  const name = hex(der.subarray(oid.start, oid.end))
  return name === RSA_OID ? "rsa" : name === ED25519_OID ? "ed25519" : "other"
}

// ---------------------------------------------------------------------------------------------
// PEM and bare base64

const decodeBase64 = (text: string): Uint8Array | undefined => {
  const compact = text.replace(/\s+/g, "")
  if (compact.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined
  const decoded = Encoding.decodeBase64(compact)
  return Either.isRight(decoded) ? decoded.right : undefined
}

/** The key as PKCS#8 DER and the key type it holds. @internal */
export const readPrivateKey = (
  text: string
): Either.Either<{ readonly pkcs8: Uint8Array; readonly type: "rsa" | "ed25519" }, SmtpInvalidInput> => {
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text)
  if (pem === null) {
    if (text.includes("-----BEGIN")) return Either.left(invalid("a PEM block without its matching END line"))
    const seed = decodeBase64(text)
    if (seed === undefined || seed.length !== 32) {
      return Either.left(
        invalid(
          "neither PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY) nor the base64 of a 32-byte Ed25519 seed"
        )
      )
    }
    return Either.right({ pkcs8: wrapEd25519Seed(seed), type: "ed25519" })
  }
  const label = pem[1]!
  const body = pem[2]!
  if (label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,ENCRYPTED/.test(body)) {
    return Either.left(invalid("encrypted keys are not supported; give the decrypted key"))
  }
  if (label !== "PRIVATE KEY" && label !== "RSA PRIVATE KEY") {
    return Either.left(
      invalid(`a PEM block "${label}"; expected "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE KEY" (PKCS#1)`)
    )
  }
  const der = decodeBase64(body)
  if (der === undefined) return Either.left(invalid(`the "${label}" PEM block is not valid base64`))
  if (label === "RSA PRIVATE KEY") {
    const seq = readTlv(der, 0, der.length)
    if (seq === undefined || seq.tag !== 0x30 || seq.end !== der.length) {
      return Either.left(invalid("the RSA PRIVATE KEY block is not a DER RSAPrivateKey"))
    }
    return Either.right({ pkcs8: wrapPkcs1(der), type: "rsa" })
  }
  const type = pkcs8KeyType(der)
  if (type === undefined) return Either.left(invalid("the PRIVATE KEY block is not a DER PKCS#8 PrivateKeyInfo"))
  if (type === "other") return Either.left(invalid("the PKCS#8 key is neither RSA nor Ed25519"))
  return Either.right({ pkcs8: der, type })
}

// ---------------------------------------------------------------------------------------------
// Web Crypto

const RSA_PARAMS = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const
const ED25519_PARAMS = { name: "Ed25519" } as const

const base64UrlToBase64 = (s: string): string => {
  const b = s.replace(/-/g, "+").replace(/_/g, "/")
  return b + "=".repeat((4 - (b.length % 4)) % 4)
}

const errorName = (u: unknown): string =>
  typeof u === "object" && u !== null && "name" in u && typeof u.name === "string" ? u.name : "error"

const subtle = (): Subtle | undefined => globalThis.crypto?.subtle

/**
 * Imports a key for signing (not extractable) and derives its DNS public key. The key is
 * imported a second time, extractable, only to read its public half, and that copy is dropped.
 *
 * @internal
 */
export const importPrivateKey = (
  text: string,
  algorithm: Algorithm | undefined
): Effect.Effect<ImportedKey, SmtpInvalidInput> =>
  Effect.gen(function*() {
    const read = readPrivateKey(text)
    if (Either.isLeft(read)) return yield* read.left
    const { pkcs8, type } = read.right
    const keyAlgorithm: Algorithm = type === "rsa" ? "rsa-sha256" : "ed25519-sha256"
    if (algorithm !== undefined && algorithm !== keyAlgorithm) {
      return yield* invalid(`it is an ${type === "rsa" ? "RSA" : "Ed25519"} key, but algorithm ${algorithm} was asked`)
    }
    const crypto = subtle()
    if (crypto === undefined) return yield* invalid("this runtime has no Web Crypto (crypto.subtle)")
    const params = type === "rsa" ? RSA_PARAMS : ED25519_PARAMS
    const importKey = (extractable: boolean) =>
      Effect.tryPromise({
        try: () => crypto.importKey("pkcs8", pkcs8, params, extractable, ["sign"]),
        catch: (cause) =>
          invalid(`the runtime refused it (${errorName(cause)}): not a valid ${type === "rsa" ? "RSA" : "Ed25519"} key`)
      })
    const key = yield* importKey(false)
    const exportable = yield* importKey(true)
    const jwk = yield* Effect.tryPromise({
      try: () => crypto.exportKey("jwk", exportable),
      catch: (cause) => invalid(`its public key could not be derived (${errorName(cause)})`)
    })
    if (type === "ed25519") {
      if (typeof jwk.x !== "string") return yield* invalid("its public key could not be derived")
      return { algorithm: keyAlgorithm, key, publicKey: base64UrlToBase64(jwk.x), bits: undefined }
    }
    const bits = (key.algorithm as { readonly modulusLength?: number }).modulusLength
    if (bits !== undefined && bits < 1024) {
      return yield* invalid(`the RSA key has ${bits} bits; DKIM needs at least 1024 (RFC 8301), 2048 recommended`)
    }
    const spki = yield* Effect.tryPromise({
      try: async () => {
        const publicKey = await crypto.importKey(
          "jwk",
          { kty: "RSA", n: jwk.n!, e: jwk.e!, ext: true },
          RSA_PARAMS,
          true,
          ["verify"]
        )
        return new Uint8Array(await crypto.exportKey("spki", publicKey))
      },
      catch: (cause) => invalid(`its public key could not be derived (${errorName(cause)})`)
    })
    return { algorithm: keyAlgorithm, key, publicKey: Encoding.encodeBase64(spki), bits }
  })

/** SHA-256 by Web Crypto (native, so much faster than a JS hash for a whole body). @internal */
export const digest = (bytes: Uint8Array): Effect.Effect<Uint8Array, SmtpInvalidInput> =>
  Effect.tryPromise({
    try: async () => new Uint8Array(await subtle()!.digest("SHA-256", bytes)),
    catch: (cause) => new SmtpInvalidInput({ reason: `DKIM body hash failed (${errorName(cause)})` })
  })

/** Signs the header hash input (RFC 6376 §3.7; RFC 8463 §3 signs its SHA-256). @internal */
export const signData = (
  imported: ImportedKey,
  data: Uint8Array,
  sha256: (bytes: Uint8Array) => Uint8Array
): Effect.Effect<Uint8Array, SmtpInvalidInput> =>
  Effect.tryPromise({
    try: async () =>
      new Uint8Array(
        imported.algorithm === "rsa-sha256"
          ? await subtle()!.sign(RSA_PARAMS, imported.key, data)
          : await subtle()!.sign(ED25519_PARAMS, imported.key, sha256(data))
      ),
    catch: (cause) => new SmtpInvalidInput({ reason: `DKIM signing failed (${errorName(cause)})` })
  })

/**
 * A fresh key pair: the private key as PKCS#8 PEM and the public key text for `p=`.
 *
 * @internal
 */
export const generate = (algorithm: Algorithm): Effect.Effect<
  { readonly privateKeyPem: string; readonly publicKey: string },
  SmtpInvalidInput
> =>
  Effect.tryPromise({
    try: async () => {
      const crypto = subtle()!
      const pair = algorithm === "rsa-sha256"
        ? await crypto.generateKey(
          { ...RSA_PARAMS, modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1) },
          true,
          ["sign", "verify"]
        )
        : (await crypto.generateKey(ED25519_PARAMS, true, ["sign", "verify"])) as {
          privateKey: CryptoKey
          publicKey: CryptoKey
        }
      const pkcs8 = new Uint8Array(await crypto.exportKey("pkcs8", pair.privateKey))
      const publicKey = algorithm === "rsa-sha256"
        ? Encoding.encodeBase64(new Uint8Array(await crypto.exportKey("spki", pair.publicKey)))
        : Encoding.encodeBase64(new Uint8Array(await crypto.exportKey("raw", pair.publicKey)))
      return { privateKeyPem: toPem("PRIVATE KEY", pkcs8), publicKey }
    },
    catch: (cause) => new SmtpInvalidInput({ reason: `DKIM key generation failed (${errorName(cause)})` })
  })

/** PEM text with 64-column lines. @internal */
export const toPem = (label: string, der: Uint8Array): string =>
  `-----BEGIN ${label}-----\n${
    (Encoding.encodeBase64(der).match(/.{1,64}/g) ?? []).join("\n")
  }\n-----END ${label}-----\n`
