/**
 * DKIM signing (RFC 6376 §5, RFC 8463): signers built once from validated options, and the
 * signing of a message with one or more of them.
 *
 * @internal
 */
import { sha256 } from "@noble/hashes/sha2.js"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import { dual } from "effect/Function"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type * as Dkim from "../../Dkim.js"
import type * as Message from "../../Message.js"
import { SmtpInvalidInput } from "../../SmtpError.js"
import { concatBytes } from "../bytes.js"
import { isFieldName, validateField } from "../message/headers.js"
import { makeCrlfNormaliser, normaliseCrlf } from "../message/lineEndings.js"
import { transmitted } from "../message/serialize.js"
import * as Canon from "./canonicalize.js"
import * as Keys from "./keys.js"

/** @internal */
export const TypeId: Dkim.TypeId = Symbol.for("effect-smtp/Dkim/Signer") as Dkim.TypeId

/** @internal */
export const KeySymbol = Symbol.for("effect-smtp/Dkim/Signer/key")

/** @internal */
export const isSigner = (u: unknown): u is Dkim.Signer => Predicate.hasProperty(u, TypeId)

/** @internal */
export const DEFAULT_HEADERS: ReadonlyArray<string> = [
  "From",
  "Sender",
  "Reply-To",
  "Subject",
  "Date",
  "Message-ID",
  "To",
  "Cc",
  "MIME-Version",
  "Content-Type",
  "Content-Transfer-Encoding",
  "Content-ID",
  "Content-Description",
  "Resent-Date",
  "Resent-From",
  "Resent-Sender",
  "Resent-To",
  "Resent-Cc",
  "Resent-Message-ID",
  "In-Reply-To",
  "References",
  "List-Id",
  "List-Help",
  "List-Unsubscribe",
  "List-Unsubscribe-Post",
  "List-Subscribe",
  "List-Post",
  "List-Owner",
  "List-Archive"
]

/** @internal */
export const DEFAULT_OVERSIGN: ReadonlyArray<string> = [
  "From",
  "Sender",
  "Reply-To",
  "Subject",
  "Date",
  "Message-ID",
  "To",
  "Cc",
  "MIME-Version",
  "Content-Type",
  "Content-Transfer-Encoding",
  "In-Reply-To",
  "References"
]

const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

const invalid = (reason: string) => new SmtpInvalidInput({ reason })

// a sub-domain of RFC 6376 §3.5 (d=, s=): letters, digits, hyphens and underscores, dot-separated
const DOMAIN =
  /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/
// i=: a local part (atext and dots: nothing that would need dkim-quoted-printable) and a domain
const IDENTITY = /^([A-Za-z0-9!#$%&'*+/?^_`{|}~.-]*)@(.+)$/
const CANONICALIZATIONS = new Set(["simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"])

const checkNames = (what: string, names: ReadonlyArray<string>): Either.Either<Array<string>, SmtpInvalidInput> => {
  const out: Array<string> = []
  for (const name of names) {
    if (!isFieldName(name)) {
      return Either.left(invalid(`DKIM ${what}: invalid header field name ${JSON.stringify(name)}`))
    }
    const lower = name.toLowerCase()
    if (!out.includes(lower)) out.push(lower)
  }
  return Either.right(out)
}

/** @internal */
export const makeSigner = (options: Dkim.SignerOptions): Effect.Effect<Dkim.Signer, SmtpInvalidInput> =>
  Effect.gen(function*() {
    // (from JavaScript anything may come: each a typed failure, never a defect)
    if (typeof options.domain !== "string") return yield* invalid("DKIM domain: not a string")
    if (typeof options.selector !== "string") return yield* invalid("DKIM selector: not a string")
    if (!Redacted.isRedacted(options.privateKey)) {
      return yield* invalid("DKIM privateKey: not a Redacted value (Redacted.make(pem))")
    }
    const domain = options.domain.replace(/\.$/, "").toLowerCase()
    if (!DOMAIN.test(domain) || domain.length > 253) {
      return yield* invalid(
        `DKIM domain ${JSON.stringify(options.domain)} is not a domain name (give the A-label form of an IDN)`
      )
    }
    const selector = options.selector.toLowerCase()
    if (!DOMAIN.test(selector)) {
      return yield* invalid(`DKIM selector ${JSON.stringify(options.selector)} is not a valid selector`)
    }
    const canonicalization = options.canonicalization ?? "relaxed/relaxed"
    if (!CANONICALIZATIONS.has(canonicalization)) {
      return yield* invalid(
        `DKIM canonicalization ${
          JSON.stringify(canonicalization)
        }: expected simple/simple, simple/relaxed, relaxed/simple or relaxed/relaxed`
      )
    }
    const headers = yield* checkNames("headers", options.headers ?? DEFAULT_HEADERS)
    if (!headers.includes("from")) {
      return yield* invalid("DKIM headers must include From (RFC 6376 §5.4)")
    }
    const oversign = yield* checkNames("oversign", options.oversign ?? DEFAULT_OVERSIGN)
    let identity: string | undefined
    if (options.identity !== undefined) {
      const match = IDENTITY.exec(options.identity)
      const idDomain = match?.[2]?.toLowerCase()
      // the domain part a domain name too: a tag separator or a space in it would add tags to the
      // signature (`i=u@x; l=0; z=.example.org`)
      if (
        idDomain === undefined || !DOMAIN.test(idDomain) ||
        (idDomain !== domain && !idDomain.endsWith(`.${domain}`))
      ) {
        return yield* invalid(
          `DKIM identity ${
            JSON.stringify(options.identity)
          } must be an address (or @domain) at the domain ${domain} or a subdomain of it`
        )
      }
      identity = options.identity
    }
    let expiresIn: number | undefined
    if (options.expiresIn !== undefined) {
      const millis = Duration.toMillis(Duration.decode(options.expiresIn))
      if (!(millis > 0) || !Number.isFinite(millis)) {
        return yield* invalid("DKIM expiresIn must be a positive, finite duration")
      }
      expiresIn = Math.ceil(millis / 1000)
    }
    const timestamp = options.timestamp ?? true
    if (!timestamp && expiresIn !== undefined) {
      return yield* invalid("DKIM expiresIn needs the timestamp (t=), which timestamp: false turns off")
    }
    const imported = yield* Keys.importPrivateKey(Redacted.value(options.privateKey), options.algorithm)
    const k = imported.algorithm === "rsa-sha256" ? "rsa" : "ed25519"
    const signer: Dkim.Signer = {
      [TypeId]: TypeId,
      domain,
      selector,
      algorithm: imported.algorithm,
      canonicalization,
      headers,
      oversign,
      identity,
      timestamp,
      expiresIn,
      keyBits: imported.bits,
      dnsName: `${selector}._domainkey.${domain}`,
      dnsRecord: `v=DKIM1; k=${k}; p=${imported.publicKey}`,
      toJSON() {
        return { _id: "Dkim.Signer", algorithm: this.algorithm, dnsName: this.dnsName }
      }
    }
    Object.defineProperty(signer, KeySymbol, { value: imported, enumerable: false })
    return signer
  })

const importedKey = (signer: Dkim.Signer): Keys.ImportedKey => (signer as any)[KeySymbol]

// ---------------------------------------------------------------------------------------------
// body hashes

/** An incremental hasher of a streamed body: the canonical body hash of each method asked. */
interface BodyHasher {
  readonly push: (chunk: Uint8Array) => void
  /** base64 of the canonical body hash of each method, and the SHA-256 of the raw input */
  readonly end: () => { readonly hashes: ReadonlyMap<Canon.Method, string>; readonly raw: Uint8Array }
}

const makeBodyHasher = (methods: ReadonlySet<Canon.Method>): BodyHasher => {
  const normaliser = makeCrlfNormaliser()
  const raw = sha256.create()
  const lanes = Array.from(methods, (method) => {
    const hash = sha256.create()
    return { method, hash, canon: Canon.makeBodyCanonicaliser(method, (bytes) => hash.update(bytes)) }
  })
  return {
    push: (chunk) => {
      raw.update(chunk)
      const normalised = normaliser.push(chunk)
      for (const lane of lanes) lane.canon.push(normalised)
    },
    end: () => {
      const hashes = new Map<Canon.Method, string>()
      for (const lane of lanes) {
        lane.canon.end()
        hashes.set(lane.method, Encoding.encodeBase64(lane.hash.digest()))
      }
      return { hashes, raw: raw.digest() }
    }
  }
}

/** The canonical body hashes of a body held whole, hashed by Web Crypto. */
const hashBytes = (
  body: Uint8Array,
  methods: ReadonlySet<Canon.Method>
): Effect.Effect<ReadonlyMap<Canon.Method, string>, SmtpInvalidInput> =>
  Effect.suspend(() => {
    const normalised = normaliseCrlf(body)
    return Effect.map(
      Effect.forEach(
        methods,
        (method) =>
          Effect.map(Keys.digest(Canon.body(method, normalised)), (d) => [method, Encoding.encodeBase64(d)] as const)
      ),
      (entries) => new Map(entries)
    )
  })

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

const REPLAY_MISMATCH = "DKIM: the body Stream gave different bytes when run again, so the signature would not " +
  "verify; streamBody: \"replay\" needs a Stream that gives the same bytes on every run (or use \"spool\")"

interface Hashed<E, R> {
  readonly hashes: ReadonlyMap<Canon.Method, string>
  readonly body: Uint8Array | Stream.Stream<Uint8Array, E | SmtpInvalidInput, R>
}

const hashBody = <E, R>(
  body: Uint8Array | Stream.Stream<Uint8Array, E, R>,
  methods: ReadonlySet<Canon.Method>,
  options: Dkim.SignOptions | undefined
): Effect.Effect<Hashed<E, R>, E | SmtpInvalidInput, R> => {
  if (body instanceof Uint8Array) {
    return Effect.map(hashBytes(body, methods), (hashes) => ({ hashes, body }))
  }
  if ((options?.streamBody ?? "spool") === "replay") {
    return Effect.suspend(() => {
      const hasher = makeBodyHasher(methods)
      return Effect.map(
        Stream.runForEach(body, (chunk) => Effect.sync(() => hasher.push(chunk))),
        () => {
          const first = hasher.end()
          const replayed = Stream.suspend(() => {
            const check = sha256.create()
            return Stream.concat(
              Stream.map(body, (chunk) => {
                check.update(chunk)
                return chunk
              }),
              Stream.execute(
                Effect.suspend(() =>
                  equalBytes(check.digest(), first.raw) ? Effect.void : Effect.fail(invalid(REPLAY_MISMATCH))
                )
              )
            )
          })
          return { hashes: first.hashes, body: replayed }
        }
      )
    })
  }
  const limit = options?.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  return Effect.suspend(() => {
    let size = 0
    return Effect.map(
      Stream.runCollect(Stream.mapEffect(body, (chunk) => {
        size += chunk.length
        return size > limit
          ? Effect.fail(
            invalid(
              `DKIM: the message body is larger than maxBodyBytes (${limit} bytes), the limit for spooling a ` +
                `Stream body to sign it; raise the limit or sign from a replayable Stream (streamBody: "replay")`
            )
          )
          : Effect.succeed(chunk)
      })),
      (chunks) => concatBytes(Chunk.toReadonlyArray(chunks))
    ).pipe(Effect.flatMap((bytes) => Effect.map(hashBytes(bytes, methods), (hashes) => ({ hashes, body: bytes }))))
  })
}

// ---------------------------------------------------------------------------------------------
// the DKIM-Signature field

const LINE = 76

/**
 * The field value (after "DKIM-Signature:"), folded at spaces only, so that relaxed header
 * canonicalisation sees the unfolded text. `b=` starts a line of its own; its value, when
 * given, is split over lines (FWS inside b= is ignored by verifiers, RFC 6376 §3.5).
 */
const fieldValue = (tags: ReadonlyArray<readonly [string, string]>, b: string): string => {
  const words: Array<string> = []
  for (const [name, value] of tags) {
    const parts = `${name}=${value};`.split(" ")
    words.push(...parts)
  }
  let value = ""
  let line = "DKIM-Signature:".length
  for (const word of words) {
    if (line + 1 + word.length > LINE && line > 1) {
      value += "\r\n " + word
      line = 1 + word.length
    } else {
      value += " " + word
      line += 1 + word.length
    }
  }
  value += "\r\n b="
  line = 3
  let rest = b
  while (rest.length > 0) {
    const take = Math.max(1, LINE - line)
    value += rest.slice(0, take)
    rest = rest.slice(take)
    if (rest.length > 0) {
      value += "\r\n "
      line = 1
    }
  }
  return value
}

/** The h= list: each name once per field present (top to bottom), then the over-signed names. */
const signedNames = (signer: Dkim.Signer, fields: ReadonlyArray<Message.Header>): Array<string> => {
  const wanted = new Set(signer.headers)
  const names = fields.map((f) => f.name.toLowerCase()).filter((name) => wanted.has(name))
  return [...names, ...signer.oversign]
}

/** The header hash input (RFC 6376 §5.4.2): the i-th name picks the i-th field from the bottom. */
const headerInput = (
  method: Canon.Method,
  names: ReadonlyArray<string>,
  fields: ReadonlyArray<Message.Header>
): Array<Uint8Array> => {
  const used = new Map<string, number>()
  const parts: Array<Uint8Array> = []
  for (const name of names) {
    const skip = used.get(name) ?? 0
    let seen = 0
    for (let i = fields.length - 1; i >= 0; i--) {
      if (fields[i]!.name.toLowerCase() !== name) continue
      if (seen++ === skip) {
        // the bytes the field goes out as (a parsed legacy 8-bit field as it came)
        parts.push(Canon.headerBytes(method, fields[i]!))
        break
      }
    }
    used.set(name, skip + 1)
  }
  return parts
}

const signOne = (
  signer: Dkim.Signer,
  fields: ReadonlyArray<Message.Header>,
  bodyHash: string,
  now: number
): Effect.Effect<Message.Header, SmtpInvalidInput> => {
  const [headerMethod] = signer.canonicalization.split("/") as [Canon.Method, Canon.Method]
  const names = signedNames(signer, fields)
  const t = Math.floor(now / 1000)
  const tags: Array<readonly [string, string]> = [
    ["v", "1"],
    ["a", signer.algorithm],
    ["c", signer.canonicalization],
    ["d", signer.domain],
    ...(signer.identity === undefined ? [] : [["i", signer.identity] as const]),
    ["q", "dns/txt"],
    ["s", signer.selector],
    ...(signer.timestamp ? [["t", String(t)] as const] : []),
    ...(signer.expiresIn === undefined ? [] : [["x", String(t + signer.expiresIn)] as const]),
    ["h", names.join(" : ")],
    ["bh", bodyHash]
  ]
  const unsigned: Message.Header = { name: "DKIM-Signature", value: fieldValue(tags, "") }
  const data = concatBytes([
    ...headerInput(headerMethod, names, fields),
    Canon.headerBytes(headerMethod, unsigned, false)
  ])
  return Effect.map(
    Keys.signData(importedKey(signer), data, sha256),
    (signature) => ({ name: "DKIM-Signature", value: fieldValue(tags, Encoding.encodeBase64(signature)) })
  )
}

const isMessageArgs = (args: IArguments): boolean => !isSigner(args[0]) && !Array.isArray(args[0])

/** @internal */
export const sign: {
  (
    signers: Dkim.Signer | ReadonlyArray<Dkim.Signer>,
    options?: Dkim.SignOptions
  ): <E = never, R = never>(
    message: Message.Message<E, R>
  ) => Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R>
  <E = never, R = never>(
    message: Message.Message<E, R>,
    signers: Dkim.Signer | ReadonlyArray<Dkim.Signer>,
    options?: Dkim.SignOptions
  ): Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R>
} = dual(isMessageArgs, <E = never, R = never>(
  message: Message.Message<E, R>,
  signers: Dkim.Signer | ReadonlyArray<Dkim.Signer>,
  options?: Dkim.SignOptions
): Effect.Effect<Message.Message<E | SmtpInvalidInput, R>, E | SmtpInvalidInput, R> =>
  Effect.gen(function*() {
    const list: ReadonlyArray<Dkim.Signer> = isSigner(signers) ? [signers] : signers
    if (list.length === 0) return message
    for (const field of message.headers) {
      const valid = validateField(field)
      if (Either.isLeft(valid)) return yield* valid.left
    }
    if (options?.maxBodyBytes !== undefined && !(options.maxBodyBytes >= 0)) {
      return yield* invalid("DKIM maxBodyBytes must be a number of bytes")
    }
    const fields = transmitted(message.headers)
    if (!fields.some((f) => f.name.toLowerCase() === "from")) {
      return yield* invalid("DKIM: the message has no From field, which a signature must cover (RFC 6376 §5.4)")
    }
    const methods = new Set(list.map((s) => s.canonicalization.split("/")[1] as Canon.Method))
    const hashed = yield* hashBody(message.body, methods, options)
    const now = yield* Clock.currentTimeMillis
    const signatures = yield* Effect.forEach(
      list,
      (signer) =>
        signOne(signer, fields, hashed.hashes.get(signer.canonicalization.split("/")[1] as Canon.Method)!, now)
    )
    return { headers: [...signatures, ...message.headers], body: hashed.body }
  }).pipe(Effect.withSpan("Dkim.sign", { attributes: { "dkim.signatures": isSigner(signers) ? 1 : signers.length } })))

/** @internal */
export const generateKey = (
  algorithm: Dkim.Algorithm
): Effect.Effect<{ readonly privateKey: Redacted.Redacted<string>; readonly publicKey: string }, SmtpInvalidInput> =>
  Effect.map(Keys.generate(algorithm), ({ privateKeyPem, publicKey }) => ({
    privateKey: Redacted.make(privateKeyPem),
    publicKey
  }))
