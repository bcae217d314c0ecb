/**
 * Test certificates, generated at run time (never committed): a CA, leaves it signs, and the
 * broken ones (self-signed, expired, for another name).
 */
import selfsigned from "selfsigned"

export interface Pem {
  readonly cert: string
  readonly key: string
}

export interface TestPki {
  readonly ca: Pem
  /** localhost, 127.0.0.1, ::1 */
  readonly server: Pem
  /** Signed by the CA, but only for other.test. */
  readonly otherName: Pem
  /** Signed by the CA, expired last year. */
  readonly expired: Pem
  /** Not signed by the CA. */
  readonly selfSigned: Pem
  /** A client certificate signed by the CA. */
  readonly client: Pem
}

const day = 24 * 60 * 60 * 1000

const leaf = async (
  ca: Pem | undefined,
  cn: string,
  altNames: ReadonlyArray<{ type: number; value?: string; ip?: string }>,
  dates?: { notBefore: Date; notAfter: Date },
  client = false
): Promise<Pem> => {
  const pems = await selfsigned.generate([{ name: "commonName", value: cn }], {
    keySize: 2048,
    algorithm: "sha256",
    notBeforeDate: dates?.notBefore ?? new Date(Date.now() - day),
    notAfterDate: dates?.notAfter ?? new Date(Date.now() + 30 * day),
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: !client, clientAuth: client },
      { name: "subjectAltName", altNames }
    ],
    ...(ca === undefined ? {} : { ca: { key: ca.key, cert: ca.cert } })
  } as any)
  return { cert: pems.cert, key: pems.private }
}

let pki: Promise<TestPki> | undefined

export const testPki = (): Promise<TestPki> => {
  pki ??= (async () => {
    const caPems = await selfsigned.generate([{ name: "commonName", value: "effect-smtp test CA" }], {
      keySize: 2048,
      algorithm: "sha256",
      notBeforeDate: new Date(Date.now() - 2 * day),
      notAfterDate: new Date(Date.now() + 365 * day),
      extensions: [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true }
      ]
    } as any)
    const ca = { cert: caPems.cert, key: caPems.private }
    const local = [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }, { type: 7, ip: "::1" }]
    const [server, otherName, expired, selfSigned, client] = await Promise.all([
      leaf(ca, "localhost", local),
      leaf(ca, "other.test", [{ type: 2, value: "other.test" }]),
      leaf(ca, "localhost", local, {
        notBefore: new Date(Date.now() - 400 * day),
        notAfter: new Date(Date.now() - 35 * day)
      }),
      leaf(undefined, "localhost", local),
      leaf(ca, "client.test", [{ type: 2, value: "client.test" }], undefined, true)
    ])
    return { ca, server, otherName, expired, selfSigned, client }
  })()
  return pki
}
