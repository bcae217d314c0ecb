import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { SmtpError } from "effect-smtp"

describe("SmtpDeliveryUnknown", () => {
  const timeout = new SmtpError.SmtpTimeout({ phase: "waiting for the reply to DATA", timeoutMillis: 600000 })

  it("says the end of the data was sent, by default", () => {
    const error = new SmtpError.SmtpDeliveryUnknown({ during: "waiting for the reply to DATA", cause: timeout })
    assert.strictEqual(error.endOfData, undefined)
    assert.strictEqual(
      error.message,
      `Delivery unknown: the end of the data was sent, then the session failed waiting for the reply to DATA: ` +
        `${timeout.message}; the server may have accepted the message (a retry could deliver it twice)`
    )
  })

  it("does not claim it when whether it was sent is not known", () => {
    const error = new SmtpError.SmtpDeliveryUnknown({
      during: "in a sendBatch that died with a defect",
      cause: new Error("transport bug"),
      endOfData: "unknown"
    })
    assert.notInclude(error.message, "the end of the data was sent,")
    assert.strictEqual(
      error.message,
      "Delivery unknown: the session stopped in a sendBatch that died with a defect, perhaps after the end of " +
        "the data was sent; the server may have accepted the message (a retry could deliver it twice)"
    )
    // the cause (a defect) never reaches the text
    assert.notInclude(error.message, "transport bug")
  })

  it("round-trips through its Schema with and without the field", () => {
    const encode = Schema.encodeSync(SmtpError.SmtpDeliveryUnknown)
    const decode = Schema.decodeUnknownSync(SmtpError.SmtpDeliveryUnknown)
    const unknown = new SmtpError.SmtpDeliveryUnknown({ during: "x", endOfData: "unknown" })
    assert.strictEqual(decode(encode(unknown)).endOfData, "unknown")
    assert.strictEqual(decode(encode(new SmtpError.SmtpDeliveryUnknown({ during: "x" }))).endOfData, undefined)
    assert.throws(() => decode({ _tag: "SmtpDeliveryUnknown", during: "x", endOfData: "maybe" }))
  })
})
