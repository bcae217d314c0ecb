/**
 * sendBatch with a paginated input (each page fetched with a delay, as from a database or an API)
 * over a real socket: a page that arrives while replies asked for more items is appended, never
 * pulled over the rest of the previous page: every item gets one outcome and is delivered.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Option, Stream } from "effect"
import { SmtpClient, type SmtpConnection } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import { TestSmtpServer } from "effect-smtp/testing/node"

const body = (i: number) => `Subject: ${i}\r\n\r\nbody ${i}\r\n`
const item = (i: number): SmtpConnection.BatchItem => ({ from: "a@x.test", to: `r${i}@x.test`, message: body(i) })
const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, ms)))

for (const chunking of [false, true]) {
  describe(`${chunking ? "BDAT" : "DATA"}: a paginated input over a real socket`, () => {
    it.scopedLive("every item gets one outcome and is delivered", () =>
      Effect.gen(function*() {
        const PAGE = chunking ? 200 : 10
        const PAGES = 3
        const N = PAGE * PAGES
        const server = yield* TestSmtpServer.make(chunking ? {} : { disable: ["CHUNKING"] })
        const items = Stream.paginateChunkEffect(0, (page) =>
          Effect.as(
            realSleep(page === 1 ? 20 : 0),
            [
              Chunk.makeBy(PAGE, (k) => item(page * PAGE + k + 1)),
              page + 1 < PAGES ? Option.some(page + 1) : Option.none()
            ] as const
          ))
        const outcomes = yield* Effect.scoped(Effect.gen(function*() {
          const smtp = yield* SmtpClient.connect({ ...server.clientOptions, timeout: "3 seconds", chunking })
          return Chunk.toReadonlyArray(yield* Stream.runCollect(smtp.sendBatch(items)))
        })).pipe(Effect.timeout(Duration.seconds(20)))
        const received = yield* server.received
        assert.strictEqual(received.length, N, "messages delivered")
        assert.strictEqual(outcomes.length, N, "outcomes")
      }).pipe(Effect.provide(NodeSmtpTransport.layer)), 30_000)
  })
}
