/**
 * A `Mailer` for tests: the real `Mailer` over an in-memory, permissive SMTP server
 * (`TestTransport`), so every result and every error is shaped exactly as in production, with no
 * network. Every message is captured (envelope, bytes, decoded), and the test can refuse
 * recipients, make sends fail with any typed `SmtpError`, and assert on what was sent.
 *
 * ```ts
 * it.effect("sends the welcome mail", () =>
 *   Effect.gen(function*() {
 *     yield* signUp("ada@example.com") // code under test, uses Mailer.Mailer
 *     const mail = yield* TestMailer.expectSent({ to: "ada@example.com", subject: "Welcome" })
 *     assert.include(mail.text, "Hello Ada")
 *   }).pipe(Effect.provide(TestMailer.layer())))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as BulkInput from "../internal/bulkInput.js"
import * as Mailer from "../Mailer.js"
import type * as SmtpConnection from "../SmtpConnection.js"
import { classify, isSmtpError, type SmtpError } from "../SmtpError.js"
import { SmtpTransport } from "../SmtpTransport.js"
import type * as TestServer from "./TestServer.js"
import * as TestTransport from "./TestTransport.js"

/**
 * Options: the server's (`TestServer.Options`: refusals, replies at any stage, required AUTH...)
 * and the Mailer's.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends TestServer.Options {
  /**
   * The Mailer's options. Default: host `"mx.test"`, no retries (`retry: false`: a retry waits on
   * the clock, which does not move by itself under `it.effect`).
   */
  readonly mailer?: Mailer.Options | undefined
}

/**
 * What a test checks: every field given must hold. Addresses compare case-insensitively; `to`
 * and `cc` must each be among the message's recipients (`to`: the envelope, so Bcc counts; `cc`:
 * the Cc header); `subject` is compared whole, `text` and `html` must contain the string; a
 * RegExp must match.
 *
 * @since 0.2.0
 * @category models
 */
export interface Expected {
  readonly from?: string | undefined
  readonly to?: string | ReadonlyArray<string> | undefined
  readonly cc?: string | ReadonlyArray<string> | undefined
  readonly subject?: string | RegExp | undefined
  readonly text?: string | RegExp | undefined
  readonly html?: string | RegExp | undefined
  /** File names that must be among the attachments. */
  readonly attachments?: ReadonlyArray<string> | undefined
  /** Decoded header values. */
  readonly headers?: Readonly<Record<string, string | RegExp>> | undefined
}

/**
 * The defect of an assertion of this module: its message says what was expected and what was
 * sent; `expected` and `actual` let vitest show a diff.
 *
 * @since 0.2.0
 * @category errors
 */
export class SentMismatch extends Data.TaggedError("SentMismatch")<{
  readonly message: string
  readonly expected: unknown
  readonly actual: unknown
}> {
  /**
   * @since 0.2.0
   */
  readonly showDiff = true
}

/**
 * The test side of the mailer.
 *
 * @since 0.2.0
 * @category models
 */
export interface Service {
  /** The messages sent so far, decoded, in the order they were accepted. */
  readonly sent: Effect.Effect<ReadonlyArray<TestServer.Captured>>
  /** The last message sent; a `SentMismatch` defect when there was none. */
  readonly last: Effect.Effect<TestServer.Captured>
  /** The last message sent to `address` (an envelope recipient); a `SentMismatch` defect when none. */
  readonly lastTo: (address: string) => Effect.Effect<TestServer.Captured>
  /** The last message matching `expected`; a `SentMismatch` defect showing what was sent when none. */
  readonly expectSent: (expected: Expected) => Effect.Effect<TestServer.Captured>
  /** A `SentMismatch` defect unless exactly `n` messages were sent. */
  readonly expectCount: (n: number) => Effect.Effect<void>
  /**
   * Refuses recipients from now on, at RCPT: those equal to `address` (case-insensitive) or
   * matching the predicate, with `reply` (default `"550 5.1.1 Recipient address rejected"`).
   * The send succeeds with them in `refused`, or fails with `SmtpRecipientsRefused` when all are.
   */
  readonly refuse: (
    recipient: string | ((address: string) => boolean),
    reply?: TestServer.Reply
  ) => Effect.Effect<void>
  /**
   * Sends fail with `error` from now on, before anything is sent: the next `times` of them, or
   * all until `reset`. The error is what the Mailer returns (its retries are not run): use it to
   * test how the code under test handles `SmtpDeliveryUnknown`, transient errors, timeouts...
   * For failures through the protocol (and the Mailer's retries), use the server's `respond`.
   */
  readonly failWith: (error: SmtpError, options?: { readonly times?: number | undefined }) => Effect.Effect<void>
  /** Forgets the messages sent, the refusals and the failures added with `refuse` and `failWith`. */
  readonly reset: Effect.Effect<void>
  /** The capturing transport under the Mailer (its transcripts, its raw captures). */
  readonly transport: TestTransport.Service
}

/**
 * @since 0.2.0
 * @category tags
 */
export class TestMailer extends Context.Tag("effect-smtp/testing/TestMailer")<TestMailer, Service>() {}

const lower = (s: string) => s.toLowerCase()
const list = (v: string | ReadonlyArray<string>): ReadonlyArray<string> => (typeof v === "string" ? [v] : v)
const matches = (pattern: string | RegExp, value: string | undefined, whole: boolean) =>
  value !== undefined &&
  (typeof pattern === "string" ? (whole ? value === pattern : value.includes(pattern)) : pattern.test(value))
const show = (v: unknown) => (v instanceof RegExp ? String(v) : JSON.stringify(v))

/** What `message` shows for each expected field, as the diff's actual side. */
const project = (expected: Expected, message: TestServer.Captured): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  if (expected.from !== undefined) out.from = message.envelope.from
  if (expected.to !== undefined) out.to = message.envelope.to
  if (expected.cc !== undefined) out.cc = message.cc.map((m) => m.address)
  if (expected.subject !== undefined) out.subject = message.subject
  if (expected.text !== undefined) out.text = message.text
  if (expected.html !== undefined) out.html = message.html
  if (expected.attachments !== undefined) out.attachments = message.attachments.map((a) => a.filename)
  if (expected.headers !== undefined) {
    out.headers = Object.fromEntries(Object.keys(expected.headers).map((name) => [name, message.header(name)]))
  }
  return out
}

/** The fields of `expected` that `message` fails, described. */
const failures = (expected: Expected, message: TestServer.Captured): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (expected.from !== undefined && lower(expected.from) !== lower(message.envelope.from)) {
    out.push(`from: expected ${show(expected.from)}, got ${show(message.envelope.from)}`)
  }
  const recipients = message.envelope.to.map(lower)
  if (expected.to !== undefined) {
    const missing = list(expected.to).filter((a) => !recipients.includes(lower(a)))
    if (missing.length > 0) out.push(`to: ${show(missing)} not among ${show(message.envelope.to)}`)
  }
  if (expected.cc !== undefined) {
    const cc = message.cc.map((m) => lower(m.address))
    const missing = list(expected.cc).filter((a) => !cc.includes(lower(a)))
    if (missing.length > 0) out.push(`cc: ${show(missing)} not among ${show(message.cc.map((m) => m.address))}`)
  }
  if (expected.subject !== undefined && !matches(expected.subject, message.subject, true)) {
    out.push(`subject: expected ${show(expected.subject)}, got ${show(message.subject)}`)
  }
  if (expected.text !== undefined && !matches(expected.text, message.text, false)) {
    out.push(`text: ${show(expected.text)} not in ${show(message.text)}`)
  }
  if (expected.html !== undefined && !matches(expected.html, message.html, false)) {
    out.push(`html: ${show(expected.html)} not in ${show(message.html)}`)
  }
  if (expected.attachments !== undefined) {
    const names = message.attachments.map((a) => a.filename)
    const missing = expected.attachments.filter((name) => !names.includes(name))
    if (missing.length > 0) out.push(`attachments: ${show(missing)} not among ${show(names)}`)
  }
  for (const [name, pattern] of Object.entries(expected.headers ?? {})) {
    if (!matches(pattern, message.header(name), true)) {
      out.push(`${name}: expected ${show(pattern)}, got ${show(message.header(name))}`)
    }
  }
  return out
}

const summary = (message: TestServer.Captured, i: number) =>
  `#${i} from <${message.envelope.from}> to ${message.envelope.to.map((a) => `<${a}>`).join(", ")}: ${
    show(message.subject)
  }`

const mismatch = (message: string, expected: unknown, actual: unknown) =>
  Effect.die(new SentMismatch({ message, expected, actual }))

interface Failure {
  readonly error: SmtpError
  remaining: number
}

/**
 * Builds a test mailer: the Mailer (for the code under test) and the test side.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<{ readonly mailer: Mailer.Service; readonly test: Service }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { mailer: mailerOptions, refuse: refuseOption, ...serverOptions } = options
    const refusals: Array<{ readonly test: (address: string) => boolean; readonly reply: TestServer.Reply }> = []
    const failures_: Array<Failure> = []
    const transport = yield* TestTransport.make({
      ...serverOptions,
      refuse: (address) => {
        const added = refusals.find((r) => r.test(address))
        if (added !== undefined) return added.reply
        if (refuseOption === undefined) return undefined
        if (typeof refuseOption === "function") return refuseOption(address)
        return Object.entries(refuseOption).find(([a]) => lower(a) === lower(address))?.[1]
      }
    })
    const real = yield* Mailer.make({ host: "mx.test", retry: false, ...mailerOptions }).pipe(
      Effect.provideService(SmtpTransport, transport.transport)
    )
    /** The injected failure for the next send, if any (counted). */
    const injected = (): SmtpError | undefined => {
      const failure = failures_[0]
      if (failure === undefined) return undefined
      if (failure.remaining !== Infinity && --failure.remaining <= 0) failures_.shift()
      return failure.error
    }
    const guard = <A, E, R>(send: Effect.Effect<A, E, R>): Effect.Effect<A, E | SmtpError, R> =>
      Effect.suspend((): Effect.Effect<A, E | SmtpError, R> => {
        const error = injected()
        return error === undefined ? send : Effect.fail(error)
      })
    const mailer: Mailer.Service = {
      sendmail: (from, to, message, sendOptions) => guard(real.sendmail(from, to, message, sendOptions)),
      sendMessage: (message, sendOptions) => guard(real.sendMessage(message, sendOptions)),
      send: (message, sendOptions) => guard(real.send(message, sendOptions)),
      verify: guard(real.verify),
      sendAll: <E, R, EI, RI>(
        items: Stream.Stream<Mailer.BulkItem<E, R>, EI, RI> | Iterable<Mailer.BulkItem<E, R>>,
        bulkOptions?: Mailer.BulkOptions
      ): Stream.Stream<Mailer.BulkOutcome<E>, EI, R | RI> =>
        // whether failures are injected is read when the Stream runs, not when it is made
        Stream.suspend(() => sendAllNow(items, bulkOptions))
    }
    const sendAllNow = <E, R, EI, RI>(
      items: Stream.Stream<Mailer.BulkItem<E, R>, EI, RI> | Iterable<Mailer.BulkItem<E, R>>,
      bulkOptions?: Mailer.BulkOptions
    ): Stream.Stream<Mailer.BulkOutcome<E>, EI, R | RI> => {
      if (failures_.length === 0) return real.sendAll(items, bulkOptions)
      // with failures injected, the items go one by one, each failing or sent as by send (an
      // iterable read one at a time, not 4,096 ahead, and closed when left part of the way, as the
      // Mailer closes it; the Mailer reads a few items ahead and sends them concurrently)
      const input: Stream.Stream<Mailer.BulkItem<E, R>, EI, RI> = Predicate.hasProperty(items, Stream.StreamTypeId) ?
        items as Stream.Stream<Mailer.BulkItem<E, R>, EI, RI> :
        BulkInput.fromIterable(items as Iterable<Mailer.BulkItem<E, R>>)
      return input.pipe(
        Stream.map(BulkInput.snapshot),
        Stream.zipWithIndex,
        Stream.mapEffect(([item, index]) => {
          // an item that is not an object or cannot be read (from JavaScript) is refused as the
          // Mailer refuses it, without taking an injected failure (nothing is sent)
          const refused = BulkInput.refusal(item)
          const send: Effect.Effect<SmtpConnection.SendResult, SmtpError | E, R> = refused !== undefined ?
            Effect.fail(refused) :
            "from" in item ?
            mailer.send({ from: item.from, to: item.to, message: item.message, options: item.options }) :
            mailer.send(item.message, item.options)
          return Effect.match(send, {
            onSuccess: (result): Mailer.BulkOutcome<E> => ({
              _tag: "Sent",
              index,
              refused: result.refused,
              reply: result.reply,
              queueId: result.queueId
            }),
            onFailure: (error): Mailer.BulkOutcome<E> => ({
              _tag: "Failed",
              index,
              error,
              disposition: isSmtpError(error) ? classify(error) : "permanent"
            })
          })
        })
      )
    }
    const sent = transport.messages
    const test: Service = {
      sent,
      last: Effect.flatMap(sent, (messages) =>
        messages.length === 0 ?
          mismatch("TestMailer.last: no message was sent", "a message", []) :
          Effect.succeed(messages[messages.length - 1])),
      lastTo: (address) =>
        Effect.flatMap(sent, (messages) => {
          const found = messages.filter((m) => m.envelope.to.some((a) => lower(a) === lower(address)))
          return found.length > 0 ?
            Effect.succeed(found[found.length - 1]) :
            mismatch(
              `TestMailer.lastTo: no message was sent to <${address}>; ${
                messages.length === 0 ?
                  "no message was sent at all" :
                  `sent:\n${messages.map(summary).join("\n")}`
              }`,
              [address],
              messages.map((m) => m.envelope.to)
            )
        }),
      expectSent: (expected) =>
        Effect.flatMap(sent, (messages) => {
          for (let i = messages.length - 1; i >= 0; i--) {
            if (failures(expected, messages[i]).length === 0) return Effect.succeed(messages[i])
          }
          const wanted = Object.fromEntries(
            Object.entries(expected).filter(([, v]) => v !== undefined).map((
              [k, v]
            ) => [k, v instanceof RegExp ? String(v) : v])
          )
          if (messages.length === 0) {
            return mismatch(
              `TestMailer.expectSent: no message was sent (expected one matching ${show(wanted)})`,
              wanted,
              undefined
            )
          }
          // the closest message: the fewest fields failed, the latest first
          let closest = messages.length - 1
          for (let i = messages.length - 1; i >= 0; i--) {
            if (failures(expected, messages[i]).length < failures(expected, messages[closest]).length) closest = i
          }
          const lines = messages.map((m, i) => {
            const failed = failures(expected, m)
            return `${summary(m, i)}\n${failed.map((f) => `    ${f}`).join("\n")}`
          })
          return mismatch(
            `TestMailer.expectSent: no message matches ${show(wanted)}; ${messages.length} sent:\n${lines.join("\n")}`,
            wanted,
            project(expected, messages[closest])
          )
        }),
      expectCount: (n) =>
        Effect.flatMap(sent, (messages) =>
          messages.length === n ?
            Effect.void :
            mismatch(
              `TestMailer.expectCount: expected ${n} messages, ${messages.length} sent${
                messages.length === 0 ? "" : `:\n${messages.map(summary).join("\n")}`
              }`,
              n,
              messages.length
            )),
      refuse: (recipient, reply = "550 5.1.1 Recipient address rejected") =>
        Effect.sync(() => {
          refusals.push({
            test: typeof recipient === "string" ? (address) => lower(address) === lower(recipient) : recipient,
            reply
          })
        }),
      failWith: (error, failOptions) =>
        Effect.sync(() => {
          failures_.push({ error, remaining: failOptions?.times ?? Infinity })
        }),
      reset: Effect.zipRight(
        transport.clear,
        Effect.sync(() => {
          refusals.length = 0
          failures_.length = 0
        })
      ),
      transport
    }
    return { mailer, test }
  })

/**
 * The test mailer as a Layer: `Mailer.Mailer` for the code under test, `TestMailer` for the test.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Mailer.Mailer | TestMailer> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ mailer, test }) =>
      Context.make(Mailer.Mailer, mailer).pipe(Context.add(TestMailer, test)))
  )

/**
 * The messages sent so far, decoded.
 *
 * @since 0.2.0
 * @category accessors
 */
export const sent: Effect.Effect<ReadonlyArray<TestServer.Captured>, never, TestMailer> = Effect.flatMap(
  TestMailer,
  (t) => t.sent
)

/**
 * The last message sent (a defect when none).
 *
 * @since 0.2.0
 * @category accessors
 */
export const last: Effect.Effect<TestServer.Captured, never, TestMailer> = Effect.flatMap(TestMailer, (t) => t.last)

/**
 * The last message sent to `address` (a defect when none).
 *
 * @since 0.2.0
 * @category accessors
 */
export const lastTo = (address: string): Effect.Effect<TestServer.Captured, never, TestMailer> =>
  Effect.flatMap(TestMailer, (t) => t.lastTo(address))

/**
 * The last message matching `expected`; a defect showing what was sent when none.
 *
 * @since 0.2.0
 * @category assertions
 */
export const expectSent = (expected: Expected): Effect.Effect<TestServer.Captured, never, TestMailer> =>
  Effect.flatMap(TestMailer, (t) => t.expectSent(expected))

/**
 * A defect unless exactly `n` messages were sent.
 *
 * @since 0.2.0
 * @category assertions
 */
export const expectCount = (n: number): Effect.Effect<void, never, TestMailer> =>
  Effect.flatMap(TestMailer, (t) => t.expectCount(n))

/**
 * Refuses recipients from now on (see {@link Service.refuse}).
 *
 * @since 0.2.0
 * @category failures
 */
export const refuse = (
  recipient: string | ((address: string) => boolean),
  reply?: TestServer.Reply
): Effect.Effect<void, never, TestMailer> => Effect.flatMap(TestMailer, (t) => t.refuse(recipient, reply))

/**
 * Makes sends fail with `error` (see {@link Service.failWith}).
 *
 * @since 0.2.0
 * @category failures
 */
export const failWith = (
  error: SmtpError,
  options?: { readonly times?: number | undefined }
): Effect.Effect<void, never, TestMailer> => Effect.flatMap(TestMailer, (t) => t.failWith(error, options))

/**
 * Forgets the messages, refusals and failures.
 *
 * @since 0.2.0
 * @category accessors
 */
export const reset: Effect.Effect<void, never, TestMailer> = Effect.flatMap(TestMailer, (t) => t.reset)
