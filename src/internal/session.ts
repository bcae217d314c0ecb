/**
 * Session state and the operations built on the engine (smtplib's SMTP methods).
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import type * as LmtpConnection from "../LmtpConnection.js"
import type * as Message from "../Message.js"
import type * as SmtpConnection from "../SmtpConnection.js"
import {
  replyFields,
  SmtpDataError,
  type SmtpError,
  SmtpHeloError,
  SmtpInvalidInput,
  SmtpNotSupportedError,
  SmtpRecipientsRefused,
  SmtpResponseException
} from "../SmtpError.js"
import type { SmtpReply } from "../SmtpReply.js"
import type * as SmtpTransport from "../SmtpTransport.js"
import * as Arrays from "./arrays.js"
import * as Auth from "./auth.js"
import * as Batch from "./batch.js"
import * as Codec from "./command.js"
import { parseFeatures } from "./ehlo.js"
import type { Engine } from "./engine.js"
import * as EnvelopeParams from "./envelopeParams.js"
import * as Iterators from "./iterators.js"
import * as MessageEnvelope from "./message/envelope.js"
import * as MessageHeaders from "./message/headers.js"
import * as MessageData from "./messageData.js"
import * as Operation from "./operation.js"
import * as QueueId from "./queueId.js"
import * as Streams from "./stream.js"
import * as Transaction from "./transaction.js"

export interface SessionOptions {
  readonly localHostname: string
  readonly lmtp: boolean
  /** Use BDAT when the server offers CHUNKING and PIPELINING. */
  readonly chunking: boolean
  /** TLS settings for STARTTLS when the caller gives none (servername defaults to the host). */
  readonly tls: SmtpTransport.TlsOptions
  readonly host: string
  readonly port: number
  /** The server is this machine (loopback address or Unix socket): password mechanisms are fine in clear. */
  readonly loopback: boolean
  /** For spans: the host name or Unix socket path. */
  readonly serverAddress: string
}

export interface SessionState {
  features: Map<string, string>
  doesEsmtp: boolean
  ehloResp: string | undefined
  heloResp: string | undefined
  /** Commands may carry UTF-8: a MAIL with SMTPUTF8 started the transaction (until RSET). */
  utf8: boolean
  authenticated: boolean
}

/** A message as a byte stream, and as bytes when it is already in memory. */
const messageStream = <E, R>(
  message: SmtpConnection.MessageInput<E, R>
): Either.Either<
  {
    readonly stream: Stream.Stream<Uint8Array, E, R>
    readonly bytes: Uint8Array | undefined
    readonly size: number | undefined
  },
  SmtpInvalidInput
> => {
  if (typeof message === "string") {
    return Either.map(MessageData.encodeStringMessage(message), (bytes) => inMemory(bytes))
  }
  if (message instanceof Uint8Array) return Either.right(inMemory(message))
  return Either.right({ stream: message, bytes: undefined, size: undefined })
}

/** A message in memory: its Stream is made only if something reads it. */
class InMemory {
  readonly size: number
  constructor(readonly bytes: Uint8Array) {
    this.size = bytes.length
  }
  get stream(): Stream.Stream<Uint8Array> {
    return Stream.succeed(this.bytes)
  }
}
const inMemory = (bytes: Uint8Array) => new InMemory(bytes)

/** A transaction validated and encoded, ready to be written. */
interface Prepared<E, R> {
  readonly recipients: ReadonlyArray<string>
  readonly mail: Codec.Command
  readonly rcpts: ReadonlyArray<Codec.Command>
  readonly body: Transaction.Body<E, R>
}

/** One per transaction: a class, not a literal (see `AcceptedEnvelope` in transaction.ts). */
class PreparedCommands<E, R> implements Prepared<E, R> {
  constructor(
    readonly recipients: ReadonlyArray<string>,
    readonly mail: Codec.Command,
    readonly rcpts: ReadonlyArray<Codec.Command>,
    readonly body: Transaction.Body<E, R>
  ) {}
}

const refusedOf = (outcome: Transaction.Outcome) => outcome.refused

const isSmtpUtf8 = (option: string) => option.toLowerCase() === "smtputf8"

/** A transaction's recipients as a list; undefined when there are none (it cannot be sent). */
const recipientList = (to: string | ReadonlyArray<string>): ReadonlyArray<string> | undefined => {
  // (a JavaScript caller may give anything: what is neither is no recipient)
  const recipients = typeof to === "string" ? [to] : Array.isArray(to) ? to : []
  return recipients.length === 0 ? undefined : recipients
}
const noRecipient = () => new SmtpInvalidInput({ reason: "sendmail needs at least one recipient" })

export const make = (engine: Engine, greeting: SmtpReply, options: SessionOptions) =>
  Effect.gen(function*() {
    // an operation from the fiber that holds the session for a batch (the consumer of its
    // outcomes) would wait for the batch, which waits for the consumer: refused instead
    const lock = Operation.makeLock(() =>
      new SmtpInvalidInput({
        reason: "This connection is held by a sendBatch whose outcomes this fiber is consuming: " +
          "an operation on it from there would wait for the batch to end, which waits for the consumer " +
          "(use another connection)"
      })
    )
    const state: SessionState = {
      features: new Map(),
      doesEsmtp: false,
      ehloResp: undefined,
      heloResp: undefined,
      utf8: false,
      authenticated: false
    }
    /**
     * Set when a transaction was interrupted half-way: reads the replies it is still owed, ends a
     * DATA the server accepted, and RSETs, before the next operation. (An interruption while
     * message data was being written closes the connection instead: see the engine.)
     */
    let recover: Effect.Effect<void> | undefined
    const runRecovery = Effect.suspend(() => {
      const r = recover
      recover = undefined
      return r === undefined || engine.isClosed() ? Effect.void : r
    })
    const spanAttributes = { "server.address": options.serverAddress, "server.port": options.port }
    /**
     * One operation at a time on a session, each in a span `SmtpConnection.<operation>` with the
     * operation and the OpenTelemetry server attributes (never arguments).
     */
    const spanOptions = new Map<string, Tracer.SpanOptions>()
    const spanFor = (operation: string): Tracer.SpanOptions => {
      let span = spanOptions.get(operation)
      if (span === undefined) {
        span = {
          kind: "client",
          captureStackTrace: false,
          attributes: { ...spanAttributes, "smtp.operation": operation }
        }
        spanOptions.set(operation, span)
      }
      return span
    }
    const serialised = <A, E, R>(make: () => Effect.Effect<A, E, R>, operation: string) =>
      Operation.withSpan(
        // the operation's Effect is made once the session is held, from the session as it is
        // then: one made before (a sendmail made before a STARTTLS) would send what the session
        // was, and the same Effect run twice is made twice
        lock.withLock(() => recover === undefined ? make() : Effect.zipRight(runRecovery, Effect.suspend(make))),
        `SmtpConnection.${operation}`,
        spanFor(operation)
      )

    /**
     * Set while an AUTH sent through docmd is answered 334: the lines that follow are credentials
     * (smtplib's manual `docmd("AUTH LOGIN")`, then the base64 user and password).
     */
    let manualAuth = false
    const cmd = (verb: string, args?: string): Effect.Effect<SmtpReply, SmtpError> =>
      Effect.suspend(() => {
        const isAuth = /^auth\b/i.test(verb)
        // an AUTH given to docmd carries a credential: the transcript shows the mechanism only,
        // and the lines that answer its challenges are named AUTH everywhere (never by their text)
        const encoded = manualAuth ?
          Codec.secretLine("AUTH", args === undefined || args === "" ? verb : `${verb} ${args}`, "<redacted>") :
          Codec.encode(verb, args, { utf8: state.utf8, display: isAuth ? "AUTH <redacted>" : undefined })
        return Effect.flatMap(encoded, engine.command).pipe(
          Effect.tap((reply) => {
            if (verb === "RSET") state.utf8 = false
            manualAuth = (isAuth || manualAuth) && reply.code === 334
          })
        )
      })

    const resetState = () => {
      state.authenticated = false
      state.features = new Map()
      state.doesEsmtp = false
      state.ehloResp = undefined
      state.heloResp = undefined
    }

    const ehlo = (name?: string) =>
      Effect.gen(function*() {
        state.features = new Map()
        const reply = yield* cmd(options.lmtp ? "LHLO" : "EHLO", name ?? options.localHostname)
        state.ehloResp = reply.text
        if (reply.code !== 250) return reply
        state.doesEsmtp = true
        state.features = new Map(parseFeatures(reply.lines))
        return reply
      })

    const helo = (name?: string) =>
      Effect.gen(function*() {
        const reply = yield* cmd("HELO", name ?? options.localHostname)
        state.heloResp = reply.text
        return reply
      })

    const greeted = () => state.heloResp !== undefined || state.ehloResp !== undefined
    const ehloOrHeloIfNeeded = Effect.gen(function*() {
      if (greeted()) return
      const e = yield* ehlo()
      if (e.isPositive) return
      // LMTP has no HELO; a 421 closed the connection (RFC 5321 §3.8): no HELO either
      if (options.lmtp || e.code === 421 || engine.isClosed()) {
        return yield* Effect.fail(new SmtpHeloError(replyFields(e, options.lmtp ? "LHLO" : "EHLO")))
      }
      const h = yield* helo()
      if (!h.isPositive) return yield* Effect.fail(new SmtpHeloError(replyFields(h, "HELO")))
    })

    const hasExtn = (name: string) => state.features.has(name.toLowerCase())
    /** The SIZE the server advertised (RFC 1870), when it gave a number. */
    const sizeLimit = (): number | undefined => {
      const value = state.features.get("size")
      return value === undefined || !/^\d+$/.test(value.trim()) ? undefined : Number(value.trim())
    }

    const mailCommand = (
      sender: string,
      mailOptions: ReadonlyArray<string>
    ): Either.Either<Codec.Command, SmtpInvalidInput | SmtpNotSupportedError> => {
      const utf8 = mailOptions.some(isSmtpUtf8)
      if (utf8 && !hasExtn("smtputf8")) {
        return Either.left(
          new SmtpNotSupportedError({ feature: "SMTPUTF8", detail: "the mail options ask for SMTPUTF8" })
        )
      }
      const list = mailOptions.length > 0 && state.doesEsmtp ? ` ${mailOptions.join(" ")}` : ""
      return Codec.addressCommand("MAIL", sender, list, utf8)
    }

    const rcptCommand = (recipient: string, rcptOptions: ReadonlyArray<string>, utf8: boolean) =>
      Codec.addressCommand(
        "RCPT",
        recipient,
        rcptOptions.length > 0 && state.doesEsmtp ? ` ${rcptOptions.join(" ")}` : "",
        utf8
      )

    /** RSET after a failed transaction; like smtplib's `_rset`, failures are ignored. */
    const quietRset = Effect.ignore(Effect.suspend(() => engine.isClosed() ? Effect.void : cmd("RSET")))

    const data = <E, R>(message: SmtpConnection.MessageInput<E, R>) =>
      Effect.gen(function*() {
        const body = yield* messageStream(message)
        // from the 354 until the data is written, an interruption leaves DATA open: only closing
        // the connection can end it then (ending it empty would deliver an empty message)
        recover = engine.close
        const reply = yield* cmd("DATA")
        if (reply.code !== 354) {
          recover = undefined
          return yield* Effect.fail(new SmtpDataError(replyFields(reply, "DATA")))
        }
        const unknown = Transaction.unknownAfterEnd(engine, engine.endsWritten())
        const end = yield* Effect.mapError(Transaction.writeMessageData(engine, body, 1), unknown)
        recover = undefined
        const batch = yield* end.await
        return batch.error === undefined ? batch.replies[0] : yield* Effect.fail(unknown(batch.error))
      })

    /** Ends a DATA that was accepted (354) although the transaction had failed: an empty message. */
    const onInterrupted = (r: Effect.Effect<void> | undefined) => {
      recover = r
    }
    /**
     * What a transaction needs of the session. Its flags follow the server's features, so one is
     * made per EHLO (the features' Map is replaced by each EHLO, HELO or reset), not per transaction.
     */
    class Context implements Transaction.TransactionContext, EnvelopeParams.ServerState {
      readonly engine = engine
      readonly lmtp = options.lmtp
      readonly pipelining: boolean
      readonly chunking: boolean
      readonly size: boolean
      readonly smtpUtf8: boolean
      readonly sizeLimit: number | undefined
      readonly rset = quietRset
      readonly onInterrupted = onInterrupted
      readonly has = hasExtn
      constructor(readonly features: Map<string, string>) {
        this.pipelining = features.has("pipelining")
        this.chunking = options.chunking && this.pipelining && features.has("chunking")
        this.size = features.has("size")
        this.smtpUtf8 = features.has("smtputf8")
        this.sizeLimit = sizeLimit()
      }
      get secure() {
        return engine.isSecure()
      }
    }
    let context: Context | undefined
    const transactionContext = (): Context =>
      context !== undefined && context.features === state.features ? context : (context = new Context(state.features))

    /** Validates and encodes a transaction before anything is written: an invalid one writes nothing. */
    const prepare = <E, R>(
      from: string,
      to: string | ReadonlyArray<string>,
      message: SmtpConnection.MessageInput<E, R>,
      sendOptions: SmtpConnection.SendmailOptions | undefined
    ): Either.Either<Prepared<E, R>, SmtpError> | Effect.Effect<Prepared<E, R>, SmtpError> => {
      const recipients = recipientList(to)
      if (recipients === undefined) return Either.left(noRecipient())
      if (typeof from !== "string") return Either.left(Codec.notAString("sender"))
      // validated (a bad message writes nothing), then EHLO when needed, then the commands
      const body = messageStream(message)
      if (Either.isLeft(body)) return Either.left(body.left)
      return greeted() ?
        prepareCommands(from, recipients, body.right, sendOptions) :
        Effect.flatMap(ehloOrHeloIfNeeded, () => prepareCommands(from, recipients, body.right, sendOptions))
    }

    /** The transaction's commands, validated and encoded: an invalid one writes nothing. Synchronous. */
    const prepareCommands = <E, R>(
      from: string,
      recipients: ReadonlyArray<string>,
      body: {
        readonly stream: Stream.Stream<Uint8Array, E, R>
        readonly bytes: Uint8Array | undefined
        readonly size: number | undefined
      },
      sendOptions: SmtpConnection.SendmailOptions | undefined
    ): Either.Either<Prepared<E, R>, SmtpError> => {
      const extra = sendOptions?.mailOptions ?? []
      const ctx = transactionContext()
      if (extra.length > 0 && extra.some(isSmtpUtf8) && !ctx.smtpUtf8) {
        return Either.left(
          new SmtpNotSupportedError({ feature: "SMTPUTF8", detail: "the mail options ask for SMTPUTF8" })
        )
      }
      const mailOptions: Array<string> = []
      const size = sendOptions?.size ?? body.size
      let typed: EnvelopeParams.Params | undefined
      if (state.doesEsmtp) {
        if (size !== undefined && ctx.size) mailOptions.push(`SIZE=${size}`)
        for (const o of extra) mailOptions.push(o)
      }
      if (state.doesEsmtp || sendOptions?.dsn !== undefined || sendOptions?.requireTls === true) {
        const checked = EnvelopeParams.params(sendOptions, size, ctx)
        if (Either.isLeft(checked)) return Either.left(checked.left)
        typed = checked.right
        for (const o of typed.mail) mailOptions.push(o)
      }
      const utf8 = mailOptions.length > 0 && mailOptions.some(isSmtpUtf8)
      const mail = mailCommand(from, mailOptions)
      if (Either.isLeft(mail)) return Either.left(mail.left)
      const rcpts: Array<Codec.Command> = Arrays.objectArray()
      const rcptOptions = sendOptions?.rcptOptions ?? []
      for (const r of recipients) {
        const extraRcpt = typed?.rcpt(r)
        const rcpt = rcptCommand(
          r,
          extraRcpt === undefined || extraRcpt.length === 0 ? rcptOptions : [...rcptOptions, ...extraRcpt],
          utf8
        )
        if (Either.isLeft(rcpt)) return Either.left(rcpt.left)
        rcpts.push(rcpt.right)
      }
      return Either.right(new PreparedCommands(recipients, mail.right, rcpts, body))
    }

    /**
     * An SMTP transaction to its end: the final reply when it is 250, else the failure (after RSET
     * unless the server is closing), and what `result` makes of the rest.
     */
    const transact = <A, E, R>(
      from: string,
      to: string | ReadonlyArray<string>,
      message: SmtpConnection.MessageInput<E, R>,
      sendOptions: SmtpConnection.SendmailOptions | undefined,
      result: (
        outcome: Transaction.Outcome,
        reply: SmtpReply,
        prepared: Prepared<E, R>
      ) => A
    ): Effect.Effect<A, SmtpError | E, R> => {
      const prepared = prepare(from, to, message, sendOptions)
      // prepared synchronously (the session greeted): no step for it
      if (Either.isEither(prepared)) {
        return Either.isLeft(prepared) ? Effect.fail(prepared.left) : runPrepared(from, prepared.right, result)
      }
      return Effect.flatMap(prepared, (p) => runPrepared(from, p, result))
    }

    /** The transaction of what `prepare` made; its final reply when it is 250, else its failure. */
    const runPrepared = <A, E, R>(
      from: string,
      prepared: Prepared<E, R>,
      result: (outcome: Transaction.Outcome, reply: SmtpReply, prepared: Prepared<E, R>) => A
    ): Effect.Effect<A, SmtpError | E, R> =>
      Effect.flatMap(
        Transaction.run(transactionContext(), from, prepared.recipients, prepared.mail, prepared.rcpts, prepared.body),
        (outcome) => {
          const end = outcome.finals[0]
          if (Either.isLeft(end)) return Effect.fail(end.left)
          if (end.right.code !== 250) {
            // (the transaction left its recovery registered until this RSET is over: an
            // interruption before it leaves the RSET to the next operation)
            return Transaction.failAfterRset(
              quietRset,
              end.right.code,
              new SmtpDataError(replyFields(end.right, outcome.endCommand))
            ).pipe(Effect.tapError(() => Effect.sync(() => onInterrupted(undefined))))
          }
          return Effect.succeed(result(outcome, end.right, prepared))
        }
      )

    const sendmail = <E, R>(
      from: string,
      to: string | ReadonlyArray<string>,
      message: SmtpConnection.MessageInput<E, R>,
      sendOptions?: SmtpConnection.SendmailOptions
    ): Effect.Effect<SmtpConnection.RefusedRecipients, SmtpError | E, R> =>
      transact(from, to, message, sendOptions, refusedOf)

    /** sendmail with the result an application logs. */
    const sendWithResult = <E, R>(
      from: string,
      to: string | ReadonlyArray<string>,
      message: SmtpConnection.MessageInput<E, R>,
      sendOptions: SmtpConnection.SendmailOptions | undefined,
      messageId: string | undefined
    ): Effect.Effect<SmtpConnection.SendResult, SmtpError | E, R> =>
      transact(from, to, message, sendOptions, (outcome, reply, { body, recipients }) => ({
        envelope: { from, to: recipients },
        messageId: messageId ?? (body.bytes === undefined ? undefined : MessageData.messageIdOf(body.bytes)),
        accepted: outcome.accepted.map((i) => recipients[i]),
        refused: outcome.refused,
        reply,
        queueId: QueueId.fromText(reply.text)
      }))

    const send = <E, R>(
      input: Message.Message<E, R> | SmtpConnection.SendInput<E, R>,
      sendOptions?: SmtpConnection.SendMessageOptions
    ): Effect.Effect<SmtpConnection.SendResult, SmtpError | E, R> => {
      if (!("headers" in input)) {
        return sendWithResult(input.from, input.to, input.message, input.options ?? sendOptions, undefined)
      }
      const messageId = Option.getOrUndefined(MessageHeaders.get(input.headers, "Message-ID"))
      return sendMessageWith(<E2, R2>(
        from: string,
        to: ReadonlyArray<string>,
        data: Uint8Array | Stream.Stream<Uint8Array, E2, R2>,
        options: SmtpConnection.SendmailOptions
      ) => sendWithResult(from, to, data, options, messageId))(input, sendOptions)
    }

    /** LMTP: the transaction, then a result for every recipient. */
    const deliver = <E, R>(
      from: string,
      to: string | ReadonlyArray<string>,
      message: SmtpConnection.MessageInput<E, R>,
      sendOptions?: SmtpConnection.SendmailOptions
    ): Effect.Effect<LmtpConnection.Delivery, SmtpError | E, R> =>
      Effect.gen(function*() {
        const { body, mail, rcpts, recipients } = yield* prepare(from, to, message, sendOptions)
        const outcome = yield* Transaction.run(transactionContext(), from, recipients, mail, rcpts, body)
        const results: Array<LmtpConnection.RecipientResult> = []
        const delivered: Record<string, SmtpReply> = {}
        const refused: Record<string, SmtpReply> = {}
        const unknown: Array<string> = []
        let interruption: SmtpError | undefined
        let refusedCount = 0
        // matched by position, not by address: a recipient given twice has two results
        const finals = new Map(outcome.accepted.map((position, i) => [position, outcome.finals[i]] as const))
        for (let position = 0; position < recipients.length; position++) {
          const recipient = recipients[position]
          const final = finals.get(position)
          if (final === undefined) {
            const reply = outcome.refused[recipient]
            refused[recipient] = reply
            refusedCount++
            results.push({ recipient, status: "refused", stage: "rcpt", reply })
          } else if (Either.isLeft(final)) {
            interruption ??= final.left
            unknown.push(recipient)
            results.push({ recipient, status: "unknown", stage: "data", reply: undefined })
          } else if (final.right.code === 250 || final.right.code === 251) {
            delivered[recipient] = final.right
            results.push({ recipient, status: "delivered", stage: "data", reply: final.right })
          } else {
            refused[recipient] = final.right
            refusedCount++
            results.push({ recipient, status: "refused", stage: "data", reply: final.right })
          }
        }
        if (refusedCount === recipients.length) {
          return yield* Effect.fail(new SmtpRecipientsRefused({ recipients: refused }))
        }
        return { recipients: results, delivered, refused, unknown, interruption }
      })

    /** smtplib's `send_message`: the envelope from the headers, Bcc never transmitted. */
    const sendMessageWith = <A>(
      send: <E, R>(
        from: string,
        to: ReadonlyArray<string>,
        data: Uint8Array | Stream.Stream<Uint8Array, E, R>,
        options: SmtpConnection.SendmailOptions
      ) => Effect.Effect<A, SmtpError | E, R>
    ) =>
    <E, R>(
      message: Message.Message<E, R>,
      sendOptions?: SmtpConnection.SendMessageOptions
    ): Effect.Effect<A, SmtpError | E, R> =>
      Effect.gen(function*() {
        yield* ehloOrHeloIfNeeded
        const prepared = yield* MessageEnvelope.prepareSend(message, {
          from: sendOptions?.from,
          to: sendOptions?.to,
          mailOptions: sendOptions?.mailOptions,
          smtpUtf8: hasExtn("smtputf8")
        })
        return yield* send(prepared.from, prepared.to, prepared.data, {
          mailOptions: prepared.mailOptions,
          rcptOptions: sendOptions?.rcptOptions,
          dsn: sendOptions?.dsn,
          requireTls: sendOptions?.requireTls
        })
      })
    const sendMessage = sendMessageWith(sendmail)

    /**
     * smtplib's `starttls`: EHLO if needed, `SmtpNotSupportedError` without the extension,
     * `SmtpResponseException` unless 220, then the handshake; all session knowledge is dropped.
     */
    const starttls = (tls?: SmtpTransport.TlsOptions) =>
      Effect.gen(function*() {
        yield* ehloOrHeloIfNeeded
        if (!hasExtn("starttls")) {
          return yield* Effect.fail(
            new SmtpNotSupportedError({ feature: "STARTTLS", detail: "the server did not advertise it" })
          )
        }
        const reply = yield* cmd("STARTTLS")
        if (reply.code !== 220) return yield* Effect.fail(new SmtpResponseException(replyFields(reply, "STARTTLS")))
        const tlsOptions = { ...options.tls, ...tls }
        yield* engine.startTls((connection) => connection.upgradeTls(tlsOptions))
        resetState()
        return reply
      })

    const quit = Effect.gen(function*() {
      const reply = yield* cmd("QUIT")
      resetState()
      state.utf8 = false
      yield* engine.closeAfterQuit
      return reply
    })

    const authContext: Auth.AuthContext = {
      engine,
      ehloOrHeloIfNeeded,
      features: () => state.features,
      loopback: options.loopback,
      host: options.host,
      port: options.port,
      authenticated: () => {
        state.authenticated = true
      },
      onInterrupted: (r) => {
        recover = r
      }
    }

    /**
     * A batch item's message: a string or bytes. A JavaScript caller may give anything: an item
     * that is not an object is refused here too (its sender and recipients are checked as they are
     * encoded), as that item's outcome, never as a failure of the whole batch.
     */
    const batchMessage = (item: SmtpConnection.BatchItem): Either.Either<string | Uint8Array, SmtpInvalidInput> =>
      !Predicate.isObject(item) ?
        Either.left(new SmtpInvalidInput({ reason: "A batch item must be an object with from, to and message" })) :
        typeof item.message === "string" || item.message instanceof Uint8Array ?
        Either.right(item.message) :
        Either.left(new SmtpInvalidInput({ reason: "A message of a batch must be a string or bytes" }))

    /** One message of a batch on its own (no PIPELINING, or LMTP), as an outcome. */
    const sendOne = (item: SmtpConnection.BatchItem, index: number): Effect.Effect<SmtpConnection.BatchOutcome> => {
      const message = batchMessage(item)
      if (Either.isLeft(message)) return Effect.succeed({ _tag: "NotSent", index, error: message.left })
      return transact<SmtpConnection.BatchOutcome, never, never>(
        item.from,
        item.to,
        item.message,
        item.options,
        (outcome, reply) => ({ _tag: "Sent", index, refused: outcome.refused, reply })
      ).pipe(
        Effect.catchAll((error) =>
          Effect.succeed<SmtpConnection.BatchOutcome>(
            error._tag === "SmtpDeliveryUnknown" ?
              { _tag: "Unknown", index, error } :
              error._tag === "SmtpSenderRefused" || error._tag === "SmtpRecipientsRefused" ||
                error._tag === "SmtpDataError" ?
              { _tag: "Refused", index, error } :
              { _tag: "NotSent", index, error }
          )
        )
      )
    }

    /**
     * One scoped Stream over the batch's pull: the span (when a tracer is installed), the session's
     * hold and the batch live in its one Scope, and the consuming fiber is noted (`heldFor`) as each
     * chunk goes out. Ending a Stream costs every layer it has (about 1 ms of CPU for four layers,
     * 3 ms in a cold process, measured): this has one.
     */
    const sendBatch = <E, R>(
      items: Iterable<SmtpConnection.BatchItem> | Stream.Stream<SmtpConnection.BatchItem, E, R>
    ): Stream.Stream<SmtpConnection.BatchOutcome, SmtpError | E, R> =>
      Streams.unwrapScoped(Effect.flatMap(Effect.scope, (scope) =>
        Effect.flatMap(Effect.tracer, (tracer): Effect.Effect<
          Stream.Stream<SmtpConnection.BatchOutcome, SmtpError | E, R>,
          SmtpError,
          R | Scope.Scope
        > => {
          // the fiber that pulls the outcomes is the one the batch waits for (see `makeLock`)
          const outcomes = (
            pull: Effect.Effect<Chunk.Chunk<SmtpConnection.BatchOutcome>, Option.Option<SmtpError | E>, R>
          ) => Stream.repeatEffectChunkOption(Effect.zipLeft(pull, lock.heldFor))
          if (tracer === Operation.defaultTracer) return Effect.map(batchPull(items, true, scope), outcomes)
          return Effect.flatMap(
            Effect.makeSpanScoped("SmtpConnection.sendBatch", spanFor("sendBatch")),
            (span) =>
              Effect.withParentSpan(
                Effect.map(batchPull(items, true, scope), (pull) => outcomes(Effect.withParentSpan(pull, span))),
                span
              )
          )
        })))

    /**
     * `sendBatch` as one Effect: every outcome, in an array. No Stream runs (in a cold process
     * running a Stream costs several ms of CPU, and a few tenths of a ms a batch after that).
     */
    const sendBatchAll = (
      items: Iterable<SmtpConnection.BatchItem>
    ): Effect.Effect<ReadonlyArray<SmtpConnection.BatchOutcome>, SmtpError> =>
      Operation.withSpan(
        Stream.StreamTypeId in items ?
          Effect.fail(
            new SmtpInvalidInput({
              reason: "sendBatchAll takes an iterable of messages (for a Stream of them, use sendBatch)"
            })
          ) :
          // in a Scope of its own, not provided to what runs in it (`Effect.scoped` provides it:
          // a comparison of the whole Context each way)
          Effect.scopedWith((scope) => Effect.flatMap(batchPull<never, never>(items, false, scope), collectOutcomes)),
        "SmtpConnection.sendBatchAll",
        spanFor("sendBatchAll")
      )

    /** Every outcome of a batch's pull (an iterable's: it fails with nothing, or dies). */
    const collectOutcomes = (
      pull: Effect.Effect<Chunk.Chunk<SmtpConnection.BatchOutcome>, Option.Option<SmtpError>>
    ): Effect.Effect<ReadonlyArray<SmtpConnection.BatchOutcome>, SmtpError> => {
      const outcomes: Array<SmtpConnection.BatchOutcome> = []
      const loop: Effect.Effect<ReadonlyArray<SmtpConnection.BatchOutcome>, SmtpError> = Effect.matchEffect(pull, {
        onFailure: (failure) => Option.isNone(failure) ? Effect.succeed(outcomes) : Effect.fail(failure.value),
        onSuccess: (chunk) => {
          for (const outcome of chunk) outcomes.push(outcome)
          return loop
        }
      })
      return loop
    }

    /**
     * The batch's pull of outcomes, in `scope` (the caller's), which holds the session until it closes:
     * one chunk of outcomes per pull, `None` once every item has one. `interruptibleWait`: waiting
     * for the session is interruptible even where the caller's region is not (a Stream's scoped
     * set-up is not, by default); else it is as the caller's.
     */
    const batchPull = <E, R>(
      items: Iterable<SmtpConnection.BatchItem> | Stream.Stream<SmtpConnection.BatchItem, E, R>,
      interruptibleWait: boolean,
      scope: Scope.Scope
    ): Effect.Effect<
      Effect.Effect<Chunk.Chunk<SmtpConnection.BatchOutcome>, Option.Option<SmtpError | E>, R>,
      SmtpError,
      R
    > =>
      Effect.gen(function*() {
        // the session is held for the whole batch
        yield* interruptibleWait ? Effect.interruptible(lock.scoped(scope)) : lock.scoped(scope)
        yield* runRecovery
        yield* ehloOrHeloIfNeeded
        if (!hasExtn("pipelining")) {
          // one message at a time, each read as it is sent, under the batch's span as the pipelined
          // batch's pulls are (an input that fails or dies ends the pull with it after the
          // outcomes of the items before)
          let index = 0
          if (Stream.StreamTypeId in items) {
            const pull = yield* Scope.extend(
              Stream.toPull(items as Stream.Stream<SmtpConnection.BatchItem, E, R>),
              scope
            )
            let pulled: ReadonlyArray<SmtpConnection.BatchItem> = []
            let at = 0
            const next: Effect.Effect<SmtpConnection.BatchItem, Option.Option<E>, R> = Effect.suspend(() =>
              at < pulled.length ? Effect.succeed(pulled[at++]) : Effect.flatMap(pull, (chunk) => {
                pulled = Chunk.toReadonlyArray(chunk)
                at = 0
                return next
              })
            )
            return Effect.flatMap(next, (item) => Effect.map(sendOne(item, index++), Chunk.of))
          }
          const reader = new Iterators.Reader((items as Iterable<SmtpConnection.BatchItem>)[Symbol.iterator]())
          // read part of the way (the consumer stopped): closed, as a for...of left by break
          yield* Scope.addFinalizer(scope, Effect.sync(() => reader.close()))
          // (what the iterator throws, Effect.suspend makes a defect)
          return Effect.suspend(() => {
            const next = reader.next()
            return next.done === true ? Effect.fail(Option.none()) : Effect.map(sendOne(next.value, index++), Chunk.of)
          })
        }
        return yield* Batch.make(
          {
            engine,
            chunking: options.chunking && hasExtn("chunking"),
            greet: ehloOrHeloIfNeeded,
            prepare: (item) =>
              Either.flatMap(
                batchMessage(item),
                (message) => {
                  const recipients = recipientList(item.to)
                  if (recipients === undefined) return Either.left(noRecipient())
                  return Either.flatMap(messageStream(message), (body) =>
                    Either.map(prepareCommands(item.from, recipients, body, item.options), (prepared) => ({
                      recipients,
                      mail: prepared.mail,
                      rcpts: prepared.rcpts,
                      bytes: body.bytes!
                    })))
                }
              ),
            onInterrupted: (r) => {
              recover = r
            },
            rset: quietRset
          },
          items,
          scope
        )
      })

    const service: SmtpConnection.Service = {
      tls: Effect.sync(() => Option.fromNullable(engine.tlsDetails())),
      send: (message, sendOptions) => serialised(() => send(message, sendOptions), "send"),
      sendBatch,
      sendBatchAll,
      greeting,
      helo: (name) => serialised(() => helo(name), "helo"),
      ehlo: (name) => serialised(() => ehlo(name), "ehlo"),
      ehloOrHeloIfNeeded: serialised(() => ehloOrHeloIfNeeded, "ehloOrHeloIfNeeded"),
      hasExtn: (name) => Effect.sync(() => hasExtn(name)),
      extnParams: (name) => Effect.sync(() => Option.fromNullable(state.features.get(name.toLowerCase()))),
      esmtpFeatures: Effect.sync(() => new Map(state.features)),
      doesEsmtp: Effect.sync(() => state.doesEsmtp),
      ehloResp: Effect.sync(() => Option.fromNullable(state.ehloResp)),
      heloResp: Effect.sync(() => Option.fromNullable(state.heloResp)),
      docmd: (command, args) => serialised(() => cmd(command, args), "docmd"),
      noop: serialised(() => cmd("NOOP"), "noop"),
      rset: serialised(() => cmd("RSET"), "rset"),
      verify: (address) =>
        serialised(
          () => Effect.flatMap(Codec.checkAddress("VRFY", address), (a) => cmd("VRFY", Codec.addressOnly(a))),
          "verify"
        ),
      expn: (address) =>
        serialised(
          () => Effect.flatMap(Codec.checkAddress("EXPN", address), (a) => cmd("EXPN", Codec.addressOnly(a))),
          "expn"
        ),
      help: (args) => serialised(() => cmd("HELP", args), "help"),
      mail: (sender, mailOptions = []) =>
        serialised(
          () =>
            Effect.flatMap(mailCommand(sender, mailOptions), (command) => {
              if (mailOptions.some(isSmtpUtf8)) state.utf8 = true
              return engine.command(command)
            }),
          "mail"
        ),
      rcpt: (recipient, rcptOptions = []) =>
        serialised(() => Effect.flatMap(rcptCommand(recipient, rcptOptions, state.utf8), engine.command), "rcpt"),
      data: (message) => serialised(() => data(message), "data"),
      sendmail: (from, to, message, sendOptions) =>
        serialised(() => sendmail(from, to, message, sendOptions), "sendmail"),
      sendMessage: (message, sendOptions) => serialised(() => sendMessage(message, sendOptions), "sendMessage"),
      starttls: (tls) => serialised(() => starttls(tls), "starttls"),
      login: (user, password, loginOptions) =>
        serialised(() => Auth.login(authContext, user, password, loginOptions), "login"),
      loginOAuth2: (user, token, oauthOptions) =>
        serialised(() => Auth.loginOAuth2(authContext, user, token, oauthOptions), "loginOAuth2"),
      auth: (mechanism, authenticator, authOptions) =>
        serialised(() => Auth.auth(authContext, mechanism, authenticator, authOptions), "auth"),
      isAuthenticated: Effect.sync(() => state.authenticated),
      quit: serialised(() => quit, "quit"),
      close: engine.close,
      isClosed: Effect.sync(() => engine.isClosed()),
      isSecure: Effect.sync(() => engine.isSecure())
    }
    const deliverMessage = sendMessageWith(deliver)
    const { send: _send, sendBatch: _smtpOnly, sendBatchAll: _smtpOnlyAll, ...common } = service
    const lmtpService: LmtpConnection.Service = {
      ...common,
      sendmail: (from, to, message, sendOptions) =>
        serialised(() => deliver(from, to, message, sendOptions), "sendmail"),
      sendMessage: (message, sendOptions) => serialised(() => deliverMessage(message, sendOptions), "sendMessage")
    }
    return { service, lmtpService, state, resetState, lock, ehlo, ehloOrHeloIfNeeded, cmd, hasExtn, starttls }
  })
