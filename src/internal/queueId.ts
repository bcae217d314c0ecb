/**
 * The server's queue id in a final reply, for the common forms. Pure.
 *
 * @internal
 */

/** Each form: a pattern whose first group is the id. Tried in order on the reply's text. */
const forms: ReadonlyArray<RegExp> = [
  // Postfix, SendGrid and many others: "Ok: queued as 4Ld3Xb2hGzz9sQ"; smtp-server users: "Message queued as X"
  /\bqueued as\s+<?([A-Za-z0-9][\w.@:+=-]*[\w])>?/i,
  // Exim: "OK id=1rKx2N-0003fD-1h"
  /\bid=([A-Za-z0-9][\w.-]*[\w])/,
  // Microsoft 365 / Exchange: "... [InternalId=12345678901234, Hostname=...] ... Queued mail for delivery"
  /\[InternalId=(\d+)/,
  // Gmail: "OK  1700000000 d9443c01a7336-1d6b9ff4a7fsi123pld.456 - gsmtp"
  /^OK\s+\d+\s+(\S+)\s+-\s+gsmtp\b/,
  // Amazon SES: "Ok 0100018c2a5f0e4b-6f4f4c1e-2b1a-4b5e-9d3c-1a2b3c4d5e6f-000000"
  /^Ok\s+([0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{6})\b/i,
  // Sendmail: "v1BKq3Xq012345 Message accepted for delivery"
  /^([A-Za-z0-9]{8,20})\s+Message accepted for delivery/i,
  // qmail: "ok 1700000000 qp 12345"
  /^ok\s+\d+\s+qp\s+(\d+)/i
]

/** The enhanced status code a reply text may start with (`2.0.0 `), to skip before matching. */
const enhanced = /^\d\.\d{1,3}\.\d{1,3}\s+/

/** The queue id a final reply carries, when it has one in a known form. */
export const fromText = (text: string): string | undefined => {
  const body = text.replace(enhanced, "")
  for (const form of forms) {
    const match = form.exec(body)
    if (match !== null) return match[1]
  }
  return undefined
}
