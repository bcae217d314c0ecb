/**
 * The server side of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677) written with node:crypto,
 * independently of the client in src/, and a raw SMTP server on 127.0.0.1:0 that speaks it.
 */
import { Effect, type Scope } from "effect"
import type { ScriptedTransport } from "effect-smtp/testing"
import * as Crypto from "node:crypto"
import type * as Net from "node:net"
import * as RawServer from "../support/rawServer.js"
import { b64, lastUnit, type ServerRef, unb64 } from "./helpers.js"

export type ScramHash = "SHA-1" | "SHA-256"

const algorithms = { "SHA-1": { digest: "sha1", length: 20 }, "SHA-256": { digest: "sha256", length: 32 } } as const

/**
 * What the server does after checking the client proof:
 * - `ok`: a 334 with the right `v=`, then 235 once the client answers it with an empty line
 * - `badSignature`: a 334 with a wrong `v=`
 * - `skipFinal`: 235 at once, the server signature never sent
 */
export type ScramMode = "ok" | "badSignature" | "skipFinal"

export interface ScramCredentials {
  readonly user: string
  /** Already prepared (SASLprep) as the server stores it. */
  readonly password: string
  readonly iterations?: number | undefined
}

export interface ScramEvent {
  readonly clientFirst: string
  readonly clientFinal?: string | undefined
  readonly proofValid?: boolean | undefined
  readonly serverSignature?: string | undefined
}

/** One server-side SCRAM exchange: feed it the client's decoded messages in order. */
export const scramSession = (hash: ScramHash, credentials: ScramCredentials) => {
  const { digest, length } = algorithms[hash]
  const salt = Crypto.randomBytes(16)
  const iterations = credentials.iterations ?? 4096
  const serverNonce = Crypto.randomBytes(18).toString("base64")
  let gs2Header = ""
  let clientFirstBare = ""
  let serverFirst = ""
  let nonce = ""
  const hmac = (key: Uint8Array, data: string | Uint8Array) => Crypto.createHmac(digest, key).update(data).digest()
  const H = (data: Uint8Array) => Crypto.createHash(digest).update(data).digest()

  return {
    /** client-first-message in, server-first-message out (undefined when malformed or for another user). */
    first: (clientFirst: string): string | undefined => {
      const m = /^([ny]|p=[^,]*),((?:a=[^,]*)?),(n=([^,]*),r=([^,]+)(?:,.*)?)$/.exec(clientFirst)
      if (m === null) return undefined
      gs2Header = `${m[1]},${m[2]},`
      clientFirstBare = m[3]
      if (m[4] !== credentials.user) return undefined
      nonce = m[5] + serverNonce
      serverFirst = `r=${nonce},s=${salt.toString("base64")},i=${iterations}`
      return serverFirst
    },
    /** client-final-message in: whether the proof holds, and the server signature (base64). */
    final: (clientFinal: string): { readonly proofValid: boolean; readonly serverSignature: string } => {
      const m = /^(c=([^,]*),r=([^,]*)(?:,.*)?),p=([^,]+)$/.exec(clientFinal)
      const saltedPassword = Crypto.pbkdf2Sync(credentials.password, salt, iterations, length, digest)
      const withoutProof = m === null ? "" : m[1]
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`
      const clientKey = hmac(saltedPassword, "Client Key")
      const storedKey = H(clientKey)
      const clientSignature = hmac(storedKey, authMessage)
      const serverSignature = hmac(hmac(saltedPassword, "Server Key"), authMessage).toString("base64")
      if (m === null || m[2] !== b64(gs2Header) || m[3] !== nonce) return { proofValid: false, serverSignature }
      const proof = Buffer.from(m[4], "base64")
      if (proof.length !== clientKey.length) return { proofValid: false, serverSignature }
      const recovered = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]))
      return { proofValid: Crypto.timingSafeEqual(H(recovered), storedKey), serverSignature }
    }
  }
}

export interface ScramServerOptions extends ScramCredentials {
  readonly mode: ScramMode
  /** The AUTH line of the EHLO reply. Default `"SCRAM-SHA-1 SCRAM-SHA-256"`. */
  readonly advertise?: string | undefined
}

export interface ScramServer {
  readonly port: number
  /** Every line each connection received. */
  readonly lines: Array<Array<string>>
  /** Each SCRAM exchange the server ran, in order. */
  readonly events: Array<ScramEvent>
  /** PLAIN / LOGIN attempts: the mechanism names (a password reached this server). */
  readonly passwordAttempts: Array<string>
}

const flip = (signature: string) => {
  const bytes = Buffer.from(signature, "base64")
  bytes[0] ^= 0x01
  return bytes.toString("base64")
}

/** A raw SMTP server speaking SCRAM (and recording, then refusing, any PLAIN or LOGIN). */
export const make = (options: ScramServerOptions): Effect.Effect<ScramServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const events: Array<ScramEvent> = []
    const passwordAttempts: Array<string> = []
    const raw = yield* RawServer.make((socket: Net.Socket, lines) => {
      const send = (text: string) => {
        if (!socket.destroyed) socket.write(`${text}\r\n`)
      }
      type State =
        | { readonly _tag: "command" }
        | { readonly _tag: "clientFirst"; readonly hash: ScramHash }
        | { readonly _tag: "clientFinal"; readonly event: number; readonly session: ReturnType<typeof scramSession> }
        | { readonly _tag: "finalAck" }
        | { readonly _tag: "plainData" }
        | { readonly _tag: "loginUser" }
        | { readonly _tag: "loginPassword" }
      let state: State = { _tag: "command" }
      let authenticated = false

      const onClientFirst = (hash: ScramHash, encoded: string) => {
        const clientFirst = unb64(encoded)
        const session = scramSession(hash, options)
        events.push({ clientFirst })
        const serverFirst = session.first(clientFirst)
        if (serverFirst === undefined) {
          state = { _tag: "command" }
          return send("535 5.7.8 Authentication credentials invalid")
        }
        state = { _tag: "clientFinal", event: events.length - 1, session }
        send(`334 ${b64(serverFirst)}`)
      }

      const onClientFinal = (event: number, session: ReturnType<typeof scramSession>, encoded: string) => {
        const clientFinal = unb64(encoded)
        const { proofValid, serverSignature } = session.final(clientFinal)
        events[event] = { ...events[event], clientFinal, proofValid, serverSignature }
        if (!proofValid) {
          state = { _tag: "command" }
          return send("535 5.7.8 Authentication credentials invalid")
        }
        if (options.mode === "skipFinal") {
          state = { _tag: "command" }
          authenticated = true
          return send("235 2.7.0 Authentication successful")
        }
        state = { _tag: "finalAck" }
        send(`334 ${b64(`v=${options.mode === "ok" ? serverSignature : flip(serverSignature)}`)}`)
      }

      send("220 scram.test ESMTP raw")
      RawServer.onLines(socket, lines, (line) => {
        const current = state
        if (current._tag !== "command") {
          state = { _tag: "command" }
          if (line === "*") return send("501 5.7.0 Authentication cancelled")
          switch (current._tag) {
            case "clientFirst":
              return onClientFirst(current.hash, line)
            case "clientFinal":
              return onClientFinal(current.event, current.session, line)
            case "finalAck":
              if (line !== "") return send("501 5.5.2 expected an empty response")
              authenticated = true
              return send("235 2.7.0 Authentication successful")
            case "plainData":
              passwordAttempts.push("PLAIN")
              return send("535 5.7.8 not here")
            case "loginUser":
              state = { _tag: "loginPassword" }
              return send("334 UGFzc3dvcmQ6")
            case "loginPassword":
              passwordAttempts.push("LOGIN")
              return send("535 5.7.8 not here")
          }
        }
        const [verb = "", ...args] = line.split(" ")
        switch (verb.toUpperCase()) {
          case "EHLO":
            return send(
              `250-scram.test\r\n250-AUTH ${options.advertise ?? "SCRAM-SHA-1 SCRAM-SHA-256"}\r\n250 8BITMIME`
            )
          case "AUTH": {
            if (authenticated) return send("503 5.5.1 Already authenticated")
            const mechanism = (args[0] ?? "").toUpperCase()
            const hash: ScramHash | undefined = mechanism === "SCRAM-SHA-256"
              ? "SHA-256"
              : mechanism === "SCRAM-SHA-1"
              ? "SHA-1"
              : undefined
            if (hash !== undefined) {
              if (args[1] !== undefined) return onClientFirst(hash, args[1])
              state = { _tag: "clientFirst", hash }
              return send("334 ")
            }
            if (mechanism === "PLAIN") {
              if (args[1] !== undefined) {
                passwordAttempts.push("PLAIN")
                return send("535 5.7.8 not here")
              }
              state = { _tag: "plainData" }
              return send("334 ")
            }
            if (mechanism === "LOGIN") {
              state = { _tag: "loginUser" }
              return send("334 VXNlcm5hbWU6")
            }
            return send("504 5.5.4 Unrecognized authentication type")
          }
          case "NOOP":
            return send(authenticated ? "250 2.0.0 OK authenticated" : "250 2.0.0 OK")
          case "QUIT":
            send("221 2.0.0 Bye")
            return socket.end()
          default:
            return send("502 5.5.2 Error: command not recognized")
        }
      })
    })
    return { port: raw.port, lines: raw.lines, events, passwordAttempts }
  })

const flipLast = (signature: string) => {
  const bytes = Buffer.from(signature, "base64")
  bytes[bytes.length - 1] ^= 0x80
  return bytes.toString("base64")
}

/**
 * Two scripted steps (the AUTH SCRAM-SHA-256 line with its initial response, then the client-final)
 * whose replies the server side above computes from what the client wrote. After `ok` the client's
 * empty line still needs a step.
 */
export const scriptedSteps = (
  ref: ServerRef,
  mode: ScramMode,
  credentials: ScramCredentials = { user: "user", password: "pencil" }
): Array<ScriptedTransport.Step> => {
  const session = scramSession("SHA-256", credentials)
  let first: string | undefined
  let final: { readonly proofValid: boolean; readonly serverSignature: string } | undefined
  return [
    {
      expect: /^AUTH SCRAM-SHA-256 [A-Za-z0-9+/]+={0,2}$/,
      get reply() {
        first ??= session.first(unb64(lastUnit(ref).split(" ")[2] ?? "")) ?? "malformed"
        return `334 ${b64(first)}`
      }
    },
    {
      expect: /^[A-Za-z0-9+/]+={0,2}$/,
      get reply() {
        final ??= session.final(unb64(lastUnit(ref)))
        if (!final.proofValid) return "535 5.7.8 bad proof"
        if (mode === "skipFinal") return "235 2.7.0 Authentication successful"
        return `334 ${b64(`v=${mode === "ok" ? final.serverSignature : flipLast(final.serverSignature)}`)}`
      }
    }
  ]
}
