/**
 * The two independent verifiers of the DKIM tests, each with a stub DNS: mailauth (npm, Node's
 * crypto) and dkimpy (Debian's python3-dkim, run by /usr/bin/python3 with python3-nacl for
 * Ed25519). Both answer one verdict per DKIM-Signature field, topmost first.
 *
 * dkimpy is optional locally: without it its tests skip saying why, unless SMTP_DKIMPY_REQUIRED=1
 * (.ci/run), which turns its absence into a failed test.
 */
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"

/** TXT records by name (`selector._domainkey.domain`). */
export type Records = Readonly<Record<string, string>>

// ---------------------------------------------------------------------------------------------
// mailauth

export interface MailauthVerdict {
  readonly result: string
  readonly comment: string | undefined
}

export const mailauth = (message: Uint8Array | string, records: Records) =>
  Effect.promise(async (): Promise<Array<MailauthVerdict>> => {
    const { dkimVerify } = await import("mailauth/lib/dkim/verify.js")
    const resolver = async (name: string, type: string) => {
      const record = type === "TXT" ? records[name.replace(/\.$/, "")] : undefined
      if (record === undefined) {
        throw Object.assign(new Error(`no ${type} record for ${name}`), { code: "ENOTFOUND" })
      }
      return [[record]]
    }
    const input = typeof message === "string" ? Buffer.from(message, "utf8") : Buffer.from(message)
    const { results } = await dkimVerify(input, { resolver } as any)
    return results.map((r: any) => ({ result: r.status.result, comment: r.status.comment }))
  })

// ---------------------------------------------------------------------------------------------
// dkimpy

export const PYTHON = "/usr/bin/python3"

const SCRIPT = `
import sys, json, base64
import dkim
job = json.loads(sys.stdin.read())
records = job["records"]
def dnsfunc(name, timeout=5):
    record = records.get(name.decode("ascii").rstrip("."))
    return None if record is None else record.encode("ascii")
out = []
for m in job["messages"]:
    msg = base64.b64decode(m)
    d = dkim.DKIM(msg)
    n = len([h for h, _ in d.headers if h.lower() == b"dkim-signature"])
    verdicts = []
    for i in range(n):
        try:
            verdicts.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
        except dkim.DKIMException as e:
            verdicts.append("error: %s" % e)
    out.append(verdicts)
print(json.dumps(out))
`

/** Why dkimpy cannot run here, or undefined when it can. */
export const dkimpySkipReason = (): string | undefined => {
  const probe = ChildProcess.spawnSync(PYTHON, ["-c", "import dkim, nacl"], { encoding: "utf8" })
  if (probe.error !== undefined) return `dkimpy tests skipped: ${PYTHON} cannot run (${probe.error.message})`
  if (probe.status !== 0) {
    return `dkimpy tests skipped: ${PYTHON} lacks dkim or nacl (apt-get install python3-dkim python3-nacl)`
  }
  return undefined
}

export const dkimpyRequired = process.env.SMTP_DKIMPY_REQUIRED === "1"

/** dkimpy's verdicts (true, false or "error: ...") for each message, one per signature. */
export const dkimpy = (messages: ReadonlyArray<Uint8Array | string>, records: Records) =>
  Effect.async<Array<Array<boolean | string>>, Error>((resume) => {
    const child = ChildProcess.spawn(PYTHON, ["-c", SCRIPT], { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s))
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s))
    child.on("error", (e) => resume(Effect.fail(e)))
    child.on("close", (code) =>
      resume(
        code === 0
          ? Effect.succeed(JSON.parse(stdout))
          : Effect.fail(new Error(`dkimpy exited with ${code}: ${stderr}`))
      ))
    child.stdin.end(JSON.stringify({
      records,
      messages: messages.map((m) => Buffer.from(typeof m === "string" ? Buffer.from(m, "utf8") : m).toString("base64"))
    }))
    return Effect.sync(() => child.kill())
  })

// ---------------------------------------------------------------------------------------------
// keys made here, independently of Dkim.generateKey

const pem = (label: string, der: ArrayBuffer): string =>
  `-----BEGIN ${label}-----\n${
    (Buffer.from(der).toString("base64").match(/.{1,64}/g) ?? []).join("\n")
  }\n-----END ${label}-----\n`

/** A Web Crypto RSA key exported as PKCS#8 PEM, and its DNS record. */
export const webCryptoRsa = (bits = 2048) =>
  Effect.promise(async () => {
    const pair = await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: bits, publicExponent: Uint8Array.of(1, 0, 1) },
      true,
      ["sign", "verify"]
    )
    const spki = Buffer.from(await crypto.subtle.exportKey("spki", pair.publicKey)).toString("base64")
    return {
      pem: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
      record: `v=DKIM1; k=rsa; p=${spki}`
    }
  })

/** A Web Crypto Ed25519 key exported as PKCS#8 PEM, and its DNS record (raw public key). */
export const webCryptoEd25519 = () =>
  Effect.promise(async () => {
    const pair =
      (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as Crypto.webcrypto.CryptoKeyPair
    const raw = Buffer.from(await crypto.subtle.exportKey("raw", pair.publicKey)).toString("base64")
    return {
      pem: pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
      record: `v=DKIM1; k=ed25519; p=${raw}`
    }
  })

/** An RSA key from node:crypto exported as PKCS#1 ("BEGIN RSA PRIVATE KEY"), and its DNS record. */
export const nodePkcs1Rsa = (bits = 2048) =>
  Effect.sync(() => {
    const { privateKey, publicKey } = Crypto.generateKeyPairSync("rsa", { modulusLength: bits })
    const spki = publicKey.export({ type: "spki", format: "der" }).toString("base64")
    return {
      pem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      record: `v=DKIM1; k=rsa; p=${spki}`
    }
  })
