import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { SmtpClient } from "../src/index.js"
import { ScriptedTransport } from "../src/testing/index.js"

describe("smoke", () => {
  it.scoped("sendmail pipelined", () =>
    Effect.gen(function*() {
      const server = yield* ScriptedTransport.make({
        steps: [
          { expect: "EHLO client.test", reply: "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000" },
          { expect: "MAIL FROM:<a@x.test> SIZE=5", reply: "250 ok" },
          { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
          { expect: "DATA", reply: "354 go" },
          { expect: "hello\r\n.\r\n", reply: "250 queued" },
          { expect: "QUIT", reply: "221 bye" }
        ]
      })
      const refused = yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: "mx.test" })
        return yield* smtp.sendmail("a@x.test", "b@x.test", "hello")
      })).pipe(Effect.provide(server.layer))
      assert.deepStrictEqual(refused, {})
      assert.deepStrictEqual(server.connection(0).mismatches(), [])
      assert.strictEqual(
        server.written(),
        "EHLO client.test\r\nMAIL FROM:<a@x.test> SIZE=5\r\nRCPT TO:<b@x.test>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n"
      )
    }))
})
