/**
 * The fault matrix over real sockets: the same stage table (`table.ts`) and model server
 * (`model.ts`) as the in-memory matrix, served by node:net on 127.0.0.1 (port 0) and reached
 * through `NodeSmtpTransport.layer` with a small `timeout`. A close is a FIN (`socket.end()`), a
 * reset a RST (`socket.resetAndDestroy()`), a stall a server that stops answering and reading (a
 * stalled upload is given enough data to fill the socket buffers, so that a write blocks before
 * the end of data). Each case checks the outcome and its classification, that the fault happened,
 * that the session is closed, that the send and its Scope end within the timeout (a stall:
 * within the timeout and the close timeout, never later), and that the server saw the client
 * close. The last test checks that no socket, server or timer is left.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { beforeAll, vi } from "vitest"
import { NodeSmtpTransport } from "../../src/node.js"
import { resources } from "../support/resources.js"
import type { FaultKind, Stage } from "./model.js"
import * as NetServer from "./netServer.js"
import { checkOutcome, describeExpected, expected, faultKinds, paths, type PathSpec, send } from "./table.js"

// the bounds below tell "waited for a timeout" from "did not wait": wide enough for a loaded CI machine
const TIMEOUT_MS = 1000
const CLOSE_TIMEOUT_MS = 1000
/** Enough for a loopback connection's buffers (send and receive) several times over. */
const STALLED_UPLOAD_BYTES = 96 * 1024 * 1024

const socketPaths = paths.filter((p) => p.api !== "mailer")

// the stall cases spend their time waiting: run more of them at once than vitest's default 5
vi.setConfig({ maxConcurrency: 16 })

let before: Record<string, number> = {}
beforeAll(() => {
  before = resources()
})

const runCase = (path: PathSpec, stage: Stage, kind: FaultKind) =>
  Effect.scoped(Effect.gen(function*() {
    const problems: Array<string> = []
    const server = yield* NetServer.make((i) => ({ ...path.server, ...(i === 0 ? { fault: { stage, kind } } : {}) }))
    const stalledUpload = kind === "stall" && (stage === "body" || stage === "chunk")
    const started = Date.now()
    const outcome = yield* send(path, stage, {
      connect: {
        host: "127.0.0.1",
        port: server.port,
        security: "none",
        localHostname: "client.test",
        timeout: `${TIMEOUT_MS} millis`,
        closeTimeout: `${CLOSE_TIMEOUT_MS} millis`
      },
      gate: server.gate,
      retries: 2,
      tailBytes: stalledUpload ? STALLED_UPLOAD_BYTES : 0
    }).pipe(Effect.provide(NodeSmtpTransport.layer))
    const elapsed = Date.now() - started

    const connections = server.connections()
    if (connections[0]?.model.fired === undefined) problems.push(`the fault never happened at ${stage}`)
    problems.push(...checkOutcome(outcome, expected(path, stage, kind)))
    if (outcome.sessionClosed === false) problems.push("the session is still open after the fault")
    // a stall ends at the timeout; nothing else waits at all (and the Scope never waits for a dead server)
    const bound = kind === "stall" ? TIMEOUT_MS + CLOSE_TIMEOUT_MS : TIMEOUT_MS
    if (elapsed >= bound) problems.push(`the send and its Scope took ${elapsed} ms (bound ${bound} ms)`)
    if (kind === "stall" && elapsed < TIMEOUT_MS - 20) {
      problems.push(`a stall ended after ${elapsed} ms, before its timeout`)
    }
    if (connections.length !== 1) problems.push(`${connections.length} connections (expected 1)`)
    // the client closed its side (a stalled server reads nothing more, so it may not see a FIN)
    if (kind !== "stall") {
      for (let i = 0; i < 200 && !connections.every((c) => c.clientClosed()); i++) yield* Effect.sleep("5 millis")
      if (!connections.every((c) => c.clientClosed())) problems.push("the client never closed the connection")
    }
    return problems
  }))

describe.concurrent("fault matrix over real sockets", () => {
  for (const path of socketPaths) {
    for (const stage of path.stages) {
      for (const kind of faultKinds) {
        it.live(
          `${path.name} › ${stage} / ${kind}: ${describeExpected(expected(path, stage, kind))}`,
          () => Effect.map(runCase(path, stage, kind), (problems) => assert.deepStrictEqual(problems, [])),
          10_000
        )
      }
    }
  }
})

// a sequential suite after the concurrent one: it runs once every case has finished
describe("resources", () => {
  it.live("after the matrix: no socket, server or timer left", () =>
    Effect.gen(function*() {
      // what is left over: more of a kind than before the matrix (a handle that was there before
      // and has ended since, a worker's timer, is not a leak)
      const leftOver = (now: Record<string, number>) =>
        Object.entries(now).filter(([kind, n]) => n > (before[kind] ?? 0))
      let after = resources()
      for (let i = 0; i < 40 && leftOver(after).length > 0; i++) {
        yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 25)))
        after = resources()
      }
      assert.deepStrictEqual(leftOver(after), [], JSON.stringify({ before, after }))
    }))
})
