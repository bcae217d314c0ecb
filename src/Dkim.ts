/**
 * DKIM signing (RFC 6376) with rsa-sha256 and ed25519-sha256 (RFC 8463), on Web Crypto only, so
 * it runs wherever the core does (Node, Bun, Deno, Workers).
 *
 * Build a `Signer` once (the key is checked and imported then), sign each message with
 * `sign` before sending it: the DKIM-Signature fields are prepended to the message's headers.
 *
 * ```ts
 * const signer = yield* Dkim.signer({
 *   domain: "example.com",
 *   selector: "mail2026",
 *   privateKey: Redacted.make(pem)
 * })
 * const signed = yield* Dkim.sign(message, signer)
 * yield* mailer.sendMessage(signed)
 * ```
 *
 * What is signed is what `Message.toStream` sends: the transmitted fields (not Bcc), values with
 * CRLF line breaks, the body with lone CR and LF turned into CRLF. Change nothing in the signed
 * fields or the body after signing. Dot-stuffing happens on the wire and is not part of it.
 *
 * `l=` (body length) is never written: a signature that covers only the first `l` octets lets
 * anyone append content (a different HTML part, a second MIME part) that still verifies (RFC
 * 6376 §8.2), and many receivers ignore such signatures. `z=` and `q=` other than dns/txt are
 * not written either.
 *
 * @since 0.2.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import * as internal from "./internal/dkim/sign.js"
import type * as Message from "./Message.js"
import type { SmtpInvalidInput } from "./SmtpError.js"

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: unique symbol = internal.TypeId as any

/**
 * @since 0.2.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The signing algorithms: `rsa-sha256` (RFC 6376; RSA keys of at least 1024 bits, 2048
 * recommended) and `ed25519-sha256` (RFC 8463). `rsa-sha1` is not offered (RFC 8301).
 *
 * @since 0.2.0
 * @category models
 */
export type Algorithm = "rsa-sha256" | "ed25519-sha256"

/**
 * Header and body canonicalisation (`c=`), each `simple` or `relaxed` (RFC 6376 §3.4).
 * `relaxed/relaxed`, the default, survives the re-folding and white-space changes relays make;
 * `simple` header canonicalisation breaks on any change of white space.
 *
 * @since 0.2.0
 * @category models
 */
export type Canonicalization = "simple/simple" | "simple/relaxed" | "relaxed/simple" | "relaxed/relaxed"

/**
 * Options of `signer`.
 *
 * - `domain` (`d=`) and `selector` (`s=`): the public key is published as a TXT record at
 *   `<selector>._domainkey.<domain>` (see `Signer.dnsRecord`). IDNs in their A-label form.
 * - `privateKey`: PEM, `BEGIN PRIVATE KEY` (PKCS#8, RSA or Ed25519) or `BEGIN RSA PRIVATE KEY`
 *   (PKCS#1, as `openssl genrsa` and opendkim-genkey write it); or the base64 of a raw 32-byte
 *   Ed25519 seed, as RFC 8463 shows its key. Encrypted keys are refused.
 * - `algorithm`: by default the key's; given, it must match the key.
 * - `headers`: the fields to sign, every occurrence present (default `DEFAULT_HEADERS`); must
 *   include From.
 * - `oversign`: names listed once more in `h=` than they occur (default `DEFAULT_OVERSIGN`), so
 *   that a field of that name added after signing, or a second From, breaks the signature.
 *   `[]` turns over-signing off.
 * - `canonicalization`: default `relaxed/relaxed`.
 * - `identity` (`i=`): an address or `@domain` at `domain` or a subdomain of it; by default
 *   not written.
 * - `timestamp`: write `t=` from the Clock (default true).
 * - `expiresIn`: write `x=`, `t=` plus this duration (rounded up to seconds).
 *
 * @since 0.2.0
 * @category models
 */
export interface SignerOptions {
  readonly domain: string
  readonly selector: string
  readonly privateKey: Redacted.Redacted<string>
  readonly algorithm?: Algorithm | undefined
  readonly headers?: ReadonlyArray<string> | undefined
  readonly oversign?: ReadonlyArray<string> | undefined
  readonly canonicalization?: Canonicalization | undefined
  readonly identity?: string | undefined
  readonly timestamp?: boolean | undefined
  readonly expiresIn?: Duration.DurationInput | undefined
}

/**
 * A validated signer holding an imported, non-extractable key: build it once, sign any number
 * of messages with it, concurrently. `dnsRecord` is the TXT record to publish at `dnsName`.
 * Names in `headers` and `oversign` are lower-cased.
 *
 * @since 0.2.0
 * @category models
 */
export interface Signer {
  readonly [TypeId]: TypeId
  readonly domain: string
  readonly selector: string
  readonly algorithm: Algorithm
  readonly canonicalization: Canonicalization
  readonly headers: ReadonlyArray<string>
  readonly oversign: ReadonlyArray<string>
  readonly identity: string | undefined
  readonly timestamp: boolean
  /** `x=` minus `t=`, in seconds. */
  readonly expiresIn: number | undefined
  /** The RSA modulus length; undefined for Ed25519. */
  readonly keyBits: number | undefined
  /** `<selector>._domainkey.<domain>` */
  readonly dnsName: string
  /** `v=DKIM1; k=rsa; p=...` or `v=DKIM1; k=ed25519; p=...` */
  readonly dnsRecord: string
  toJSON(): unknown
}

/**
 * Options of `sign`, for messages whose body is a Stream (a bytes body is signed directly).
 * The body hash needs the whole body before the DKIM-Signature field, which goes first, can be
 * written, so a Stream body is read twice:
 *
 * - `streamBody: "spool"` (the default): the Stream is run once and held in memory, up to
 *   `maxBodyBytes` (default 32 MiB); a longer body fails with `SmtpInvalidInput` (the Stream
 *   is not read beyond the limit). The signed message has a bytes body.
 * - `streamBody: "replay"`: the Stream is run once to hash it, and again when the message is
 *   sent; nothing is held. The Stream must give the same bytes on every run (a file read, a
 *   Stream built from data, `Message.make` with such attachments), which a Stream from
 *   `Message.parseStream` or a socket does not. The second run is hashed as it is sent, and
 *   when its bytes differ the body Stream fails with `SmtpInvalidInput` at its end, before the
 *   message is complete, so a message with a broken signature is not delivered.
 *
 * @since 0.2.0
 * @category models
 */
export interface SignOptions {
  readonly streamBody?: "spool" | "replay" | undefined
  readonly maxBodyBytes?: number | undefined
}

/**
 * The fields signed by default (dkimpy's list, plus List-Unsubscribe-Post of RFC 8058): those
 * present are signed.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_HEADERS: ReadonlyArray<string> = internal.DEFAULT_HEADERS

/**
 * The fields over-signed by default: From, Sender, Reply-To, Subject, Date, Message-ID, To,
 * Cc, MIME-Version, Content-Type, Content-Transfer-Encoding, In-Reply-To, References, so that
 * none can be added (or added twice) after signing. Absent ones are over-signed too: a Cc
 * added later breaks the signature.
 *
 * @since 0.2.0
 * @category constants
 */
export const DEFAULT_OVERSIGN: ReadonlyArray<string> = internal.DEFAULT_OVERSIGN

/**
 * Whether a value is a `Signer`.
 *
 * @since 0.2.0
 * @category guards
 */
export const isSigner: (u: unknown) => u is Signer = internal.isSigner

/**
 * Checks the options and imports the key. An invalid domain, selector, identity, header name,
 * a key that is not PEM or a 32-byte Ed25519 seed, an encrypted key, a key of another type
 * than `algorithm`, an RSA key shorter than 1024 bits: `SmtpInvalidInput`, whose reason never
 * holds the key.
 *
 * @since 0.2.0
 * @category constructors
 */
export const signer: (options: SignerOptions) => Effect.Effect<Signer, SmtpInvalidInput> = internal.makeSigner

/**
 * Signs a message with one or more signers and returns it with their DKIM-Signature fields
 * prepended, in the order of `signers` (the first is topmost; RFC 8463's example puts the
 * Ed25519 signature above the RSA one). Each signature signs the same fields, not the other
 * signatures, so each verifies on its own: a receiver that knows only RSA still sees a valid
 * RSA signature. `t=` comes from the Clock. An invalid header field (as `Message.toStream`
 * checks) or a message without From is `SmtpInvalidInput`. See `SignOptions` for Stream bodies.
 *
 * Data-last too: `Dkim.sign(signers)` is a function of the message.
 *
 * @since 0.2.0
 * @category signing
 */
export const sign: {
  (
    signers: Signer | ReadonlyArray<Signer>,
    options?: SignOptions
  ): <E = never, R = never>(
    message: Message.Message<E, R>
  ) => Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R>
  <E = never, R = never>(
    message: Message.Message<E, R>,
    signers: Signer | ReadonlyArray<Signer>,
    options?: SignOptions
  ): Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R>
} = internal.sign

/**
 * A fresh key pair from Web Crypto: the private key as PKCS#8 PEM (for `signer`) and the
 * base64 public key for the `p=` of the DNS record (SubjectPublicKeyInfo for RSA, 2048 bits;
 * the raw 32 bytes for Ed25519, as RFC 8463 requires).
 *
 * @since 0.2.0
 * @category constructors
 */
export const generateKey: (
  algorithm: Algorithm
) => Effect.Effect<{ readonly privateKey: Redacted.Redacted<string>; readonly publicKey: string }, SmtpInvalidInput> =
  internal.generateKey
