/**
 * The queue id in final replies, on replies as real servers send them.
 */
import { assert, describe, it } from "@effect/vitest"
import * as MessageData from "../../src/internal/messageData.js"
import * as QueueId from "../../src/internal/queueId.js"

// [server, reply text after the code, the id]
const table: ReadonlyArray<readonly [string, string, string | undefined]> = [
  ["Postfix", "2.0.0 Ok: queued as 4Ld3Xb2hGzz9sQ", "4Ld3Xb2hGzz9sQ"],
  ["Postfix (no enhanced code)", "Ok: queued as 8F2C41A0B3E", "8F2C41A0B3E"],
  ["SendGrid", "Ok: queued as V7fL_0rmQzS9o3eSMGRqXw", "V7fL_0rmQzS9o3eSMGRqXw"],
  ["smtp-server (user text)", "Message queued as 6f3c2b1a-0d9e", "6f3c2b1a-0d9e"],
  ["Exim", "OK id=1rKx2N-0003fD-1h", "1rKx2N-0003fD-1h"],
  [
    "Microsoft 365",
    "2.6.0 <BN8PR12MB3345@BN8PR12MB3345.namprd12.prod.outlook.com> [InternalId=47528254340211, " +
    "Hostname=BN8PR12MB3345.namprd12.prod.outlook.com] 9624 bytes in 0.087, 107.654 KB/sec Queued mail for delivery",
    "47528254340211"
  ],
  [
    "Gmail",
    "2.0.0 OK  1701350000 d9443c01a7336-1d0c3b2a9f9si1234567pld.105 - gsmtp",
    "d9443c01a7336-1d0c3b2a9f9si1234567pld.105"
  ],
  [
    "Amazon SES",
    "Ok 0100018c2a5f0e4b-6f4f4c1e-2b1a-4b5e-9d3c-1a2b3c4d5e6f-000000",
    "0100018c2a5f0e4b-6f4f4c1e-2b1a-4b5e-9d3c-1a2b3c4d5e6f-000000"
  ],
  ["Sendmail", "2.0.0 3AUEq3Xq012345 Message accepted for delivery", "3AUEq3Xq012345"],
  ["qmail", "ok 1701350000 qp 12345", "12345"],
  ["aiosmtpd (no id)", "OK", undefined],
  ["smtp-server default (no id)", "OK: message queued", undefined],
  ["Mailgun (no id)", "Great success", undefined]
]

describe("queue id of a final reply", () => {
  for (const [server, text, id] of table) {
    it(`${server}: ${id ?? "none"}`, () => assert.strictEqual(QueueId.fromText(text), id))
  }
})

describe("Message-ID of a message in memory", () => {
  const bytes = (s: string) => new TextEncoder().encode(s)
  it("read from the headers, folded or not", () => {
    assert.strictEqual(MessageData.messageIdOf(bytes("Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody")), "<a@b>")
    assert.strictEqual(MessageData.messageIdOf(bytes("message-id:\r\n <folded@b>\r\nX: y\r\n\r\n")), "<folded@b>")
    assert.strictEqual(MessageData.messageIdOf(bytes("Subject: x\n\nMessage-ID: <in-body@b>\n")), undefined)
    assert.strictEqual(MessageData.messageIdOf(bytes("Subject: x\r\n\r\n")), undefined)
  })
})
