/**
 * Access to the real SMTP / LMTP peers started by `scripts/peers/all.sh` (Postfix, Dovecot LMTP, aiosmtpd).
 *
 * The interop tests are opt-in:
 *
 * ```sh
 * scripts/peers/all.sh start /tmp/effect-smtp-peers     # needs root for Postfix; installs packages when missing
 * SMTP_PEERS_DIR=/tmp/effect-smtp-peers npm test
 * scripts/peers/all.sh stop /tmp/effect-smtp-peers
 * ```
 *
 * Without `SMTP_PEERS_DIR` every reader returns `undefined` and `skipReason` explains why, so the interop suites
 * skip themselves. With `SMTP_INTEROP_REQUIRED=1` (set by `.ci/run`) nothing is skipped: a missing peer is an error.
 *
 * ```ts
 * describe.skipIf(skipReason("postfix") !== undefined)(skipReason("postfix") ?? "postfix interop", () => {
 *   it("delivers", async () => {
 *     const peer = postfixPeer()! // read inside the test: with SMTP_INTEROP_REQUIRED=1 a missing peer fails the
 *     ...                         // test (a throw at collection time would fail the file with no test counted)
 *   })
 * })
 * ```
 *
 * Where mail lands (see the scripts for the details):
 * - Postfix: one file per delivery in `<maildirBase>/<domain>/<local>/new/`, asynchronously (poll for it), with
 *   `Return-Path`, `X-Original-To`, `Delivered-To` and a folded `Received` prepended, LF line endings.
 * - Dovecot LMTP: `<mail>/<domain>/<user>/Maildir/new/`, written before the reply, `Return-Path`,
 *   `Delivered-To` (single recipient only) and `Received` prepended, LF line endings.
 * - aiosmtpd: `<outdir>/NNNNNN.eml` (exact bytes received, CRLF kept) + `NNNNNN.json` (envelope), both
 *   written before the final reply.
 *
 * Only node:fs, node:path and node:timers/promises are used: no library code.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

/** The state directory given to `scripts/peers/all.sh start DIR` (`SMTP_PEERS_DIR`), if any. */
export const peersDir: string | undefined = process.env.SMTP_PEERS_DIR || undefined

/** `SMTP_INTEROP_REQUIRED=1`: a missing peer is an error instead of a skip (used by `.ci/run`). */
export const interopRequired: boolean = process.env.SMTP_INTEROP_REQUIRED === "1"

// ---------------------------------------------------------------------------------------------------------------
// peer.json shapes: exactly what the scripts in scripts/peers/ write
// ---------------------------------------------------------------------------------------------------------------

/** `$SMTP_PEERS_DIR/postfix/peer.json`, written by `scripts/peers/postfix.sh`. */
export interface PostfixPeer {
  /** `127.0.0.1` (or `::1` with `PF_HOST=::1`) */
  readonly host: string
  readonly ports: {
    /** 2525: no STARTTLS offered, AUTH offered in plaintext (optional) */
    readonly plain: number
    /** 2587: STARTTLS offered (optional), AUTH only after STARTTLS (optional) */
    readonly starttls: number
    /** 2465: implicit TLS, AUTH optional */
    readonly tls: number
    /** 2588: STARTTLS required, AUTH required */
    readonly submission: number
  }
  /** SASL user (`testuser`); `testuser@example.test` works as well */
  readonly user: string
  /** SASL password (`testpass`) */
  readonly password: string
  /** space-separated AUTH mechanisms advertised, e.g. `PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256` */
  readonly mechanisms: string
  /** `message_size_limit` = the SIZE keyword (10485760) */
  readonly size: number
  /** test CA (PEM file) that signed `cert` */
  readonly ca: string
  /** server certificate (PEM file); SANs localhost, mx.example.test, 127.0.0.1, ::1 */
  readonly cert: string
  /** Maildir base: mail for `local@domain` lands in `<maildirBase>/<domain>/<local>/new/` */
  readonly maildirBase: string
  /** domain with explicit mailboxes (`example.test`: alice, bob, postmaster) */
  readonly domain: string
  /** domain that accepts any local part (`catchall.test`) */
  readonly catchallDomain: string
  /** Maildir for the whole catch-all domain (`<maildirBase>/catchall.test`) */
  readonly catchallMaildir: string
  /** Postfix log file (maillog) */
  readonly log: string
  /** `maildir` (normal) or `discard` (benchmark sink) */
  readonly mode: "maildir" | "discard"
}

/** `$SMTP_PEERS_DIR/dovecot/peer.json`, written by `scripts/peers/dovecot-lmtp.sh`. */
export interface DovecotPeer {
  readonly host: string
  /** LMTP over TCP (2424); offers STARTTLS when `starttls` is true */
  readonly lmtpPort: number
  /** LMTP over a Unix socket (mode 0666) */
  readonly lmtpSocket: string
  /** `example.test` */
  readonly domain: string
  /** every known user, e.g. `["alice@example.test", "bob@example.test", "full@example.test"]` */
  readonly users: ReadonlyArray<string>
  /** passes RCPT, then fails after DATA with `552 5.2.2 … Quota exceeded` (`full@example.test`) */
  readonly overQuotaUser: string
  /** Maildir template: `<mail>/<domain>/{user}/Maildir`, `{user}` being the local part */
  readonly maildir: string
  /** whether STARTTLS is offered (`DC_SSL`) */
  readonly starttls: boolean
  readonly ca: string
  readonly log: string
}

/** `$SMTP_PEERS_DIR/aiosmtpd/peer.json`, written by `scripts/peers/aiosmtpd.sh`. */
export interface AiosmtpdPeer {
  readonly host: string
  readonly ports: {
    /** 2526: SMTP, STARTTLS offered, AUTH only after STARTTLS */
    readonly smtp: number
    /** 2466: implicit TLS, AUTH */
    readonly smtps: number
    /** 2425: LMTP, no TLS, no AUTH */
    readonly lmtp: number
  }
  /** LMTP over a Unix socket (empty string when disabled) */
  readonly lmtpSocket: string
  /** `testuser` */
  readonly user: string
  /** `testpass` */
  readonly password: string
  /** XOAUTH2 bearer token (`testtoken`) */
  readonly oauthToken: string
  readonly ca: string
  /** folder holding `NNNNNN.eml` + `NNNNNN.json` per accepted message */
  readonly outdir: string
  readonly log: string
}

/** `NNNNNN.json` next to each `NNNNNN.eml`, written by `scripts/peers/aiosmtpd_peer.py`. */
export interface AiosmtpdMessageMeta {
  /** `NNNNNN` */
  readonly id: string
  readonly proto: "SMTP" | "LMTP"
  /** TCP port, or the socket path for the Unix-socket LMTP listener */
  readonly port: number | string
  /** `[address, port]` for TCP (IPv6 adds flowinfo and scope id), `""` for the Unix socket */
  readonly peer: ReadonlyArray<string | number> | string | null
  /** EHLO / LHLO / HELO argument */
  readonly helo: string | null
  readonly tls: { readonly version: string; readonly cipher: string } | null
  readonly auth: { readonly login: string; readonly mechanism: string | null } | null
  readonly mail_from: string
  /** upper-cased by aiosmtpd, e.g. `["SIZE=188", "BODY=8BITMIME"]` */
  readonly mail_options: ReadonlyArray<string>
  readonly smtputf8: boolean
  /** every accepted RCPT */
  readonly rcpt_tos: ReadonlyArray<string>
  /** the recipients the message was stored for (LMTP `data-NNN` recipients excluded) */
  readonly delivered_to: ReadonlyArray<string>
  readonly rcpts: ReadonlyArray<{ readonly address: string; readonly options: ReadonlyArray<string> }>
  /** bytes in the `.eml` */
  readonly size: number
  /** seconds since the epoch */
  readonly received_at: number
}

// ---------------------------------------------------------------------------------------------------------------
// readers
// ---------------------------------------------------------------------------------------------------------------

const HOW_TO_START = "run scripts/peers/all.sh start DIR, then SMTP_PEERS_DIR=DIR npm test"

const PEERS = {
  postfix: { dir: "postfix", script: "postfix.sh" },
  dovecot: { dir: "dovecot", script: "dovecot-lmtp.sh" },
  aiosmtpd: { dir: "aiosmtpd", script: "aiosmtpd.sh" }
} as const
type PeerName = keyof typeof PEERS

const peerName = (name: string): PeerName => {
  const n = name.toLowerCase()
  if (n === "dovecot-lmtp" || n === "dovecot") return "dovecot"
  if (n === "postfix" || n === "aiosmtpd") return n
  throw new Error(`unknown interop peer "${name}" (expected postfix, dovecot or aiosmtpd)`)
}

/** Path of a peer's peer.json, or undefined without `SMTP_PEERS_DIR`. */
export const peerJsonPath = (name: string): string | undefined =>
  peersDir === undefined ? undefined : path.join(peersDir, PEERS[peerName(name)].dir, "peer.json")

/** Why the peer is unavailable, or undefined when its peer.json exists. */
const unavailable = (name: string): string | undefined => {
  const file = peerJsonPath(name)
  if (file === undefined) return `SMTP_PEERS_DIR not set (${HOW_TO_START})`
  if (!fs.existsSync(file)) {
    return `${file} not found (start it with scripts/peers/${PEERS[peerName(name)].script} start ${peersDir})`
  }
  return undefined
}

const readPeer = <A>(name: PeerName): A | undefined => {
  const reason = unavailable(name)
  if (reason !== undefined) {
    if (interopRequired) throw new Error(`${name} interop peer required (SMTP_INTEROP_REQUIRED=1) but ${reason}`)
    return undefined
  }
  const file = peerJsonPath(name)!
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as A
  } catch (e) {
    throw new Error(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** Postfix peer.json; undefined when not available (throws instead with `SMTP_INTEROP_REQUIRED=1`). */
export const postfixPeer = (): PostfixPeer | undefined => readPeer<PostfixPeer>("postfix")

/** Dovecot LMTP peer.json; undefined when not available (throws instead with `SMTP_INTEROP_REQUIRED=1`). */
export const dovecotPeer = (): DovecotPeer | undefined => readPeer<DovecotPeer>("dovecot")

/** aiosmtpd peer.json; undefined when not available (throws instead with `SMTP_INTEROP_REQUIRED=1`). */
export const aiosmtpdPeer = (): AiosmtpdPeer | undefined => readPeer<AiosmtpdPeer>("aiosmtpd")

/**
 * A reason to put in a describe title when the peer (`postfix`, `dovecot`/`dovecot-lmtp` or `aiosmtpd`) is not
 * available, e.g. `postfix interop skipped: SMTP_PEERS_DIR not set (...)`; undefined when it is available.
 * With `SMTP_INTEROP_REQUIRED=1` it is always undefined: nothing is skipped and the peer readers throw instead.
 */
export const skipReason = (name: string): string | undefined => {
  if (interopRequired) return undefined
  const reason = unavailable(name)
  return reason === undefined ? undefined : `${name} interop skipped: ${reason}`
}

// ---------------------------------------------------------------------------------------------------------------
// files
// ---------------------------------------------------------------------------------------------------------------

const isEnoent = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === "ENOENT"

/** Names (not paths) of the entries in `dir`; an empty set when `dir` does not exist (yet). */
export const listFiles = (dir: string): Set<string> => {
  try {
    return new Set(fs.readdirSync(dir))
  } catch (e) {
    if (isEnoent(e)) return new Set()
    throw e
  }
}

/** Default filter of `waitForNewFile`: skips hidden files such as aiosmtpd's `.NNNNNN.json.tmp`. */
const notHidden = (name: string): boolean => !name.startsWith(".")

/**
 * Polls `dir` (which may not exist yet, e.g. a Maildir `new/` before the first delivery) until an entry whose name
 * is not in `before` appears (and is accepted by `accept`, by default any non-hidden name), and returns its full
 * path. With several new entries the first in name order is returned (Maildir names start with the time).
 * Rejects after `timeoutMs` (default 10 s).
 *
 * Take `before = listFiles(dir)` just before sending. Tests running concurrently should each use their own
 * mailbox (or the catch-all domain with a unique local part), or use `waitForFileContaining`.
 */
export const waitForNewFile = async (
  dir: string,
  before: ReadonlySet<string>,
  timeoutMs = 10_000,
  accept: (name: string) => boolean = notHidden
): Promise<string> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const fresh = [...listFiles(dir)].filter((name) => !before.has(name) && accept(name)).sort()
    if (fresh.length > 0) return path.join(dir, fresh[0]!)
    if (Date.now() >= deadline) {
      throw new Error(`no new file in ${dir} after ${timeoutMs} ms (${before.size} file(s) there before)`)
    }
    await sleep(Math.min(20, Math.max(1, deadline - Date.now())))
  }
}

/**
 * Polls `dir` until a (non-hidden) file containing `needle` appears and returns its full path; rejects after
 * `timeoutMs` (default 10 s). Safe with concurrent tests when the needle is unique (e.g. a Message-ID).
 */
export const waitForFileContaining = async (
  dir: string,
  needle: string | Buffer,
  timeoutMs = 10_000
): Promise<string> => {
  const deadline = Date.now() + timeoutMs
  const seen = new Set<string>()
  for (;;) {
    for (const name of [...listFiles(dir)].sort()) {
      if (seen.has(name) || !notHidden(name)) continue
      seen.add(name)
      const file = path.join(dir, name)
      try {
        if (fs.readFileSync(file).includes(needle)) return file
      } catch (e) {
        if (!isEnoent(e)) throw e // moved away (e.g. Maildir new/ -> cur/) meanwhile
      }
    }
    if (Date.now() >= deadline) {
      throw new Error(`no file containing ${JSON.stringify(String(needle))} in ${dir} after ${timeoutMs} ms`)
    }
    await sleep(Math.min(20, Math.max(1, deadline - Date.now())))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Postfix / Dovecot Maildirs
// ---------------------------------------------------------------------------------------------------------------

const splitAddress = (address: string): { readonly local: string; readonly domain: string } => {
  const bare = address.replace(/^<(.*)>$/, "$1")
  const at = bare.lastIndexOf("@")
  if (at <= 0) throw new Error(`not an address with a domain: ${address}`)
  return { local: bare.slice(0, at), domain: bare.slice(at + 1).toLowerCase() }
}

/**
 * The Postfix Maildir `new/` folder where mail for `address` lands: `<maildirBase>/<domain>/<local>/new` for the
 * mailboxes of `example.test` (alice, bob, postmaster), `<catchallMaildir>/new` for any `…@catchall.test`.
 */
export const postfixMaildirNew = (peer: PostfixPeer, address: string): string => {
  const { domain, local } = splitAddress(address)
  if (domain === peer.catchallDomain) return path.join(peer.catchallMaildir, "new")
  if (domain !== peer.domain) {
    throw new Error(`${address}: Postfix peer delivers only to @${peer.domain} and @${peer.catchallDomain}`)
  }
  return path.join(peer.maildirBase, peer.domain, local.toLowerCase(), "new")
}

/** The Dovecot Maildir `new/` folder where mail for `address` lands: `<mail>/<domain>/<user>/Maildir/new`. */
export const dovecotMaildirNew = (peer: DovecotPeer, address: string): string => {
  const { domain, local } = splitAddress(address)
  if (domain !== peer.domain) throw new Error(`${address}: Dovecot peer has users in @${peer.domain} only`)
  // userdb username_format=%Lu: the user (and so the home directory) is lower-cased
  return path.join(peer.maildir.replace("{user}", local.toLowerCase()), "new")
}

/** `new/` folder for `address` on either Maildir peer (Postfix or Dovecot). */
export const maildirNew = (peer: PostfixPeer | DovecotPeer, address: string): string =>
  "maildirBase" in peer ? postfixMaildirNew(peer, address) : dovecotMaildirNew(peer, address)

const TRACE_FIELD = /^(?:Return-Path|X-Original-To|Delivered-To):/i
const RECEIVED = /^Received:/i
const CONTINUATION = /^[ \t]/

/**
 * Removes what Postfix (virtual) or Dovecot (LMTP) prepend on delivery and returns the client's bytes (with the
 * LF line endings the Maildir file has): the leading `Return-Path:`, `X-Original-To:` and `Delivered-To:` lines,
 * then the first `Received:` header with its folded continuation lines. Only the top of the file is touched:
 * `Received:` headers the client itself sent (after the one the server added) are kept.
 */
export const stripPostfixTrace = (delivered: string): string => {
  let rest = delivered
  const nextLine = (): string => {
    const nl = rest.indexOf("\n")
    return nl === -1 ? rest : rest.slice(0, nl + 1)
  }
  while (TRACE_FIELD.test(nextLine())) rest = rest.slice(nextLine().length)
  if (RECEIVED.test(nextLine())) {
    rest = rest.slice(nextLine().length)
    while (rest.length > 0 && CONTINUATION.test(nextLine())) rest = rest.slice(nextLine().length)
  }
  return rest
}

// ---------------------------------------------------------------------------------------------------------------
// aiosmtpd
// ---------------------------------------------------------------------------------------------------------------

/** One message stored by aiosmtpd. */
export interface AiosmtpdMessage {
  /** `NNNNNN` */
  readonly id: string
  readonly emlPath: string
  readonly jsonPath: string
  /** exact bytes received (dot-unstuffed; CRLF and bare LF as sent) */
  readonly bytes: Buffer
  readonly meta: AiosmtpdMessageMeta
}

const AIO_JSON = /^\d+\.json$/

/** Folder where aiosmtpd stores `NNNNNN.eml` + `NNNNNN.json`. */
export const aiosmtpdMailDir = (peer: AiosmtpdPeer): string => peer.outdir

/** Reads the stored message `id` (`NNNNNN`). */
export const readAiosmtpdMessage = (peer: AiosmtpdPeer, id: string): AiosmtpdMessage => {
  const jsonPath = path.join(peer.outdir, `${id}.json`)
  const emlPath = path.join(peer.outdir, `${id}.eml`)
  return {
    id,
    emlPath,
    jsonPath,
    bytes: fs.readFileSync(emlPath),
    meta: JSON.parse(fs.readFileSync(jsonPath, "utf8")) as AiosmtpdMessageMeta
  }
}

/** The most recently stored message (highest number), or undefined when there is none. */
export const latestAiosmtpdMessage = (peer: AiosmtpdPeer): AiosmtpdMessage | undefined => {
  const last = [...listFiles(peer.outdir)].filter((n) => AIO_JSON.test(n)).sort().at(-1)
  return last === undefined ? undefined : readAiosmtpdMessage(peer, last.slice(0, -".json".length))
}

/**
 * Waits for a message stored after `before = listFiles(aiosmtpdMailDir(peer))` was taken and reads the `.eml` +
 * `.json` pair. aiosmtpd writes both (the `.json` last, atomically) before it sends the final reply, so after a
 * successful send this returns at once. Rejects after `timeoutMs` (default 10 s).
 */
export const waitForAiosmtpdMessage = async (
  peer: AiosmtpdPeer,
  before: ReadonlySet<string>,
  timeoutMs = 10_000
): Promise<AiosmtpdMessage> => {
  const jsonPath = await waitForNewFile(peer.outdir, before, timeoutMs, (n) => AIO_JSON.test(n))
  return readAiosmtpdMessage(peer, path.basename(jsonPath, ".json"))
}

// ---------------------------------------------------------------------------------------------------------------
// helpers for suites that run concurrently (added for postfix.test.ts / aiosmtpd.test.ts)
// ---------------------------------------------------------------------------------------------------------------

/**
 * Polls `dir` until a (non-hidden) file that was not in `before` and contains `needle` appears, and returns its
 * full path; rejects after `timeoutMs` (default 10 s). Like `waitForFileContaining`, but files already there
 * (which in a long-lived mailbox may be many, and large) are never read.
 */
export const waitForNewFileContaining = async (
  dir: string,
  before: ReadonlySet<string>,
  needle: string | Buffer,
  timeoutMs = 10_000
): Promise<string> => {
  const deadline = Date.now() + timeoutMs
  const seen = new Set<string>()
  for (;;) {
    for (const name of [...listFiles(dir)].sort()) {
      if (before.has(name) || seen.has(name) || !notHidden(name)) continue
      seen.add(name)
      const file = path.join(dir, name)
      try {
        if (fs.readFileSync(file).includes(needle)) return file
      } catch (e) {
        if (!isEnoent(e)) throw e
      }
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `no new file containing ${JSON.stringify(String(needle))} in ${dir} after ${timeoutMs} ms ` +
          `(${seen.size} new file(s) looked at)`
      )
    }
    await sleep(Math.min(20, Math.max(1, deadline - Date.now())))
  }
}

const AIO_EML = /^\d+\.eml$/

/**
 * The aiosmtpd message stored after `before = listFiles(aiosmtpdMailDir(peer))` was taken whose `.eml` contains
 * `needle` (a unique Message-ID or Subject): safe when other suites (or the LMTP listener) store messages at the
 * same time. aiosmtpd writes the `.json` before the final reply, so after a successful send this returns at once.
 */
export const waitForAiosmtpdMessageContaining = async (
  peer: AiosmtpdPeer,
  before: ReadonlySet<string>,
  needle: string | Buffer,
  timeoutMs = 10_000
): Promise<AiosmtpdMessage> => {
  const deadline = Date.now() + timeoutMs
  const seen = new Set<string>()
  for (;;) {
    for (const name of [...listFiles(peer.outdir)].sort()) {
      if (before.has(name) || seen.has(name) || !AIO_EML.test(name)) continue
      const id = name.slice(0, -".eml".length)
      // the .json is renamed into place last: until it is there the .eml may still be being written
      if (!fs.existsSync(path.join(peer.outdir, `${id}.json`))) continue
      seen.add(name)
      if (fs.readFileSync(path.join(peer.outdir, name)).includes(needle)) return readAiosmtpdMessage(peer, id)
    }
    if (Date.now() >= deadline) {
      throw new Error(`no aiosmtpd message containing ${JSON.stringify(String(needle))} after ${timeoutMs} ms`)
    }
    await sleep(Math.min(20, Math.max(1, deadline - Date.now())))
  }
}

/**
 * Whether any aiosmtpd message stored after `before` was taken contains `needle` (for "nothing was stored"
 * checks after a refused transaction: aiosmtpd stores before it replies, so no waiting is needed).
 */
export const aiosmtpdStoredContaining = (
  peer: AiosmtpdPeer,
  before: ReadonlySet<string>,
  needle: string | Buffer
): boolean =>
  [...listFiles(peer.outdir)].some((name) =>
    !before.has(name) && AIO_EML.test(name) && fs.readFileSync(path.join(peer.outdir, name)).includes(needle)
  )

/** Every aiosmtpd message whose `.json` appeared after `before` was taken (read now, no waiting). */
export const aiosmtpdStoredSince = (peer: AiosmtpdPeer, before: ReadonlySet<string>): Array<AiosmtpdMessage> =>
  [...listFiles(peer.outdir)].filter((name) => !before.has(name) && AIO_JSON.test(name)).sort().map((name) =>
    readAiosmtpdMessage(peer, name.slice(0, -".json".length))
  )
