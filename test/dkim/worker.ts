/**
 * The Worker of test/dkim/workerd.test.ts: signs the RFC 8463 Appendix A message with its two
 * keys at its time, in workerd's Web Crypto, and answers with the DKIM-Signature values (or the
 * error). It imports the platform-neutral modules only and runs without `nodejs_compat`.
 */
import { Effect, Redacted, TestClock, TestContext } from "effect"
import * as Dkim from "../../src/Dkim.js"
import * as Message from "../../src/Message.js"
import { RFC8463_ED25519_SEED, RFC8463_MESSAGE, RFC8463_RSA_PKCS1 } from "./rfc8463.js"

export type Answer =
  | { readonly ok: true; readonly signatures: ReadonlyArray<string>; readonly records: ReadonlyArray<string> }
  | { readonly ok: false; readonly error: string }

const common = {
  domain: "football.example.com",
  identity: "@football.example.com",
  headers: ["From", "To", "Subject", "Date", "Message-ID"],
  oversign: ["From", "Subject", "Date"]
} as const

const sign = Effect.gen(function*() {
  const ed25519 = yield* Dkim.signer({
    ...common,
    selector: "brisbane",
    privateKey: Redacted.make(RFC8463_ED25519_SEED)
  })
  const rsa = yield* Dkim.signer({ ...common, selector: "test", privateKey: Redacted.make(RFC8463_RSA_PKCS1) })
  // generated keys work too
  for (const algorithm of ["rsa-sha256", "ed25519-sha256"] as const) {
    const { privateKey } = yield* Dkim.generateKey(algorithm)
    yield* Dkim.signer({ domain: "example.org", selector: "g", privateKey })
  }
  yield* TestClock.setTime(1528637909 * 1000)
  const signed = yield* Dkim.sign(yield* Message.parse(RFC8463_MESSAGE), [ed25519, rsa])
  return {
    ok: true,
    signatures: signed.headers.slice(0, 2).map((h) => h.value),
    records: [ed25519.dnsRecord, rsa.dnsRecord]
  } as Answer
}).pipe(
  Effect.catchAll((e) => Effect.succeed({ ok: false, error: String(e) } as Answer)),
  Effect.provide(TestContext.TestContext)
)

export default {
  async fetch(): Promise<Response> {
    return new Response(JSON.stringify(await Effect.runPromise(sign)), {
      headers: { "content-type": "application/json" }
    })
  }
}
