/**
 * Shared bits of the interop suites that talk to the real peers through the library (postfix.test.ts,
 * aiosmtpd.test.ts): run an effect on real sockets, unique needles, and reading files from inside an Effect.
 */
import { Effect, type Scope } from "effect"
import { type SmtpTransport } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as crypto from "node:crypto"
import * as fs from "node:fs"

/** Runs a test body over real sockets: the Node transport, and a Scope closed (QUIT sent) at the end. */
export const live = <A, E>(effect: Effect.Effect<A, E, Scope.Scope | SmtpTransport.SmtpTransport>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeSmtpTransport.layer))

/** A unique token for a Message-ID / Subject, so that a test finds its own delivery among concurrent ones. */
export const uniqueId = (label: string): string => `${label}-${crypto.randomUUID()}`

/** A Promise-returning helper (the peers.ts pollers) as an Effect; a rejection fails the test as a defect. */
export const fromPromise = <A>(f: () => Promise<A>): Effect.Effect<A> => Effect.promise(f)

/** A file's bytes as latin1 text (one char per byte: byte-for-byte comparisons with readable diffs). */
export const readLatin1 = (file: string): string => fs.readFileSync(file, "latin1")

/** CRLF to LF, as Postfix and Dovecot store messages. */
export const toLf = (s: string): string => s.replace(/\r\n/g, "\n")

/** A peer reader's result, or a thrown error (only reached with SMTP_INTEROP_REQUIRED unset and no skip). */
export const required = <A>(peer: A | undefined, name: string): A => {
  if (peer === undefined) throw new Error(`${name} interop peer not available`)
  return peer
}
