/**
 * `Message.attachmentFromPath` on a real file system (NodeFileSystem) and on doubles that show
 * the file is streamed (`fs.stream`), never read whole; and messages with the 0.2.0 features
 * sent through `sendMessage` to the in-process server.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Random, Stream } from "effect"
import { Mailer, Message, SmtpClient } from "effect-smtp"
import { NodeSmtpTransport } from "effect-smtp/node"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import PostalMime from "postal-mime"
import * as calendarExample from "../../examples/calendar.js"
import * as EmbeddedServer from "../support/smtpServer.js"
import { invitation } from "./fixtures/goldenCases.js"
import { python } from "./fixtures/python.js"

/** 200,001 bytes: three chunks and a bit of `fs.stream`'s 64 KiB. */
const bytes = new Uint8Array(200_001).map((_, i) => (i * 131 + 7) % 256)

const tempFile = (name: string, content: Uint8Array) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-smtp-"))
      const path = Path.join(dir, name)
      Fs.writeFileSync(path, content)
      return path
    }),
    (path) => Effect.sync(() => Fs.rmSync(Path.dirname(path), { recursive: true, force: true }))
  )

/** The Node file system with `readFile` dying, counting the streams run. */
const streamingOnly = (opened: Array<string>) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs) =>
      FileSystem.makeNoop({
        stat: fs.stat,
        stream: (path, options) =>
          Stream.suspend(() => {
            opened.push(path)
            return fs.stream(path, options)
          }),
        readFile: () => Effect.die("attachmentFromPath must not read the file whole")
      }))
  ).pipe(Layer.provide(NodeFileSystem.layer))

describe("Message.attachmentFromPath", () => {
  it.scoped("streams the file (fs.stream, never readFile); bytes, file name and type read back", () =>
    Effect.gen(function*() {
      const path = yield* tempFile("Quarterly report.pdf", bytes)
      const opened: Array<string> = []
      const report = yield* Message.attachmentFromPath(path).pipe(Effect.provide(streamingOnly(opened)))
      assert.strictEqual(report.filename, "Quarterly report.pdf")
      assert.strictEqual(opened.length, 0, "nothing is read before the message is serialised")
      const message = yield* Message.make({
        from: "a@example.com",
        to: "b@example.com",
        text: "hi",
        attachments: [report]
      })
      const wire = yield* Message.toBytes(message)
      assert.deepStrictEqual(opened, [path])
      // serialised again (a retried send): the file is streamed again
      assert.deepStrictEqual(yield* Message.toBytes(message), wire)
      assert.strictEqual(opened.length, 2)

      // byte for byte what the same bytes held in memory give
      const fixed = { from: "a@example.com", date: new Date(0), messageId: "m@example.com" }
      const withFile = yield* Effect.flatMap(Message.make({ ...fixed, attachments: [report] }), Message.toBytes).pipe(
        Effect.withRandom(Random.make(1))
      )
      const inMemory = yield* Effect.flatMap(
        Message.make({ ...fixed, attachments: [{ ...report, content: bytes }] }),
        Message.toBytes
      ).pipe(Effect.withRandom(Random.make(1)))
      assert.deepStrictEqual(withFile, inMemory)

      const py = python([wire])[0]!
      assert.deepStrictEqual(py.defects, [])
      assert.strictEqual(py.attachments[0]!.filename, "Quarterly report.pdf")
      assert.strictEqual(py.attachments[0]!.contentType, "application/pdf")
      assert.deepStrictEqual(new Uint8Array(Buffer.from(py.attachments[0]!.content, "base64")), bytes)
      const p = yield* Effect.promise(() => PostalMime.parse(wire))
      assert.strictEqual(p.attachments[0]!.filename, "Quarterly report.pdf")
      assert.strictEqual(p.attachments[0]!.mimeType, "application/pdf")
      assert.deepStrictEqual(new Uint8Array(p.attachments[0]!.content as ArrayBuffer), bytes)
    }))

  it.scoped("options: file name, content type with parameters, Content-ID, chunk size", () =>
    Effect.gen(function*() {
      const path = yield* tempFile("data", bytes.subarray(0, 1000))
      const chunks: Array<number> = []
      const attachment = yield* Message.attachmentFromPath(path, {
        filename: "données.csv",
        contentType: "text/csv; header=present",
        cid: "data@x",
        disposition: "attachment",
        chunkSize: 100
      })
      const content = attachment.content as Stream.Stream<Uint8Array, unknown>
      const counted = { ...attachment, content: Stream.tap(content, (c) => Effect.sync(() => chunks.push(c.length))) }
      const message = yield* Message.make({ from: "a@example.com", attachments: [counted] })
      const wire = new TextDecoder().decode(yield* Message.toBytes(message))
      assert.include(wire, "Content-Type: text/csv; header=present; name*0*=utf-8''donn%C3%A9es.csv")
      assert.include(wire, "Content-ID: <data@x>")
      assert.strictEqual(chunks.length, 10)
      const bare = yield* Message.attachmentFromPath(`${path}.gz`.replace(/\.gz$/, ""))
      assert.strictEqual(bare.filename, "data")
      assert.isUndefined(bare.contentType, "the composer guesses (application/octet-stream for no extension)")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a missing file or a directory is a PlatformError before anything is composed", () =>
    Effect.gen(function*() {
      const path = yield* tempFile("x.txt", new Uint8Array([1]))
      const missing = yield* Effect.either(Message.attachmentFromPath(`${path}.missing`))
      assert.isTrue(Either.isLeft(missing) && missing.left._tag === "SystemError" && missing.left.reason === "NotFound")
      const dir = yield* Effect.either(Message.attachmentFromPath(Path.dirname(path)))
      assert.isTrue(Either.isLeft(dir) && dir.left._tag === "SystemError" && dir.left.reason === "BadResource")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("sendMessage: groups, a calendar invitation and a file, through smtp-server", () => {
  it.live("the envelope holds the group members; the parts arrive whole", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const path = yield* tempFile("agenda.pdf", bytes)
      const message = yield* Message.make({
        from: "Ann <ann@example.test>",
        to: ["undisclosed-recipients:;", { group: "Team", members: ["bob@example.test", "carl@example.test"] }],
        bcc: "Auditors: audit@example.test;",
        subject: "Invitation: stand-up",
        text: "Monday at 9:00",
        icalEvent: invitation,
        attachments: [yield* Message.attachmentFromPath(path)],
        list: { unsubscribe: { url: "https://example.test/u/1", oneClick: true } }
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const smtp = yield* SmtpClient.connect({ host: server.host, port: server.port })
        assert.deepStrictEqual(yield* smtp.sendMessage(message), {})
        const onlyEmpty = yield* Message.make({ from: "ann@example.test", to: "undisclosed-recipients:;" })
        const refused = yield* Effect.either(smtp.sendMessage(onlyEmpty))
        assert.isTrue(Either.isLeft(refused) && refused.left._tag === "SmtpInvalidInput")
      }))
      const [received] = yield* server.waitFor(1)
      assert.deepStrictEqual(received.to, ["bob@example.test", "carl@example.test", "audit@example.test"])
      assert.notInclude(received.data.toString("latin1"), "audit@example.test")
      const p = yield* Effect.promise(() => PostalMime.parse(received.data))
      const agenda = p.attachments.find((a) => a.filename === "agenda.pdf")!
      assert.deepStrictEqual(new Uint8Array(agenda.content as ArrayBuffer), bytes)
      assert.strictEqual(p.attachments.find((a) => a.mimeType === "text/calendar")!.method, "REQUEST")
      assert.isDefined(p.attachments.find((a) => a.filename === "invite.ics"))
      assert.strictEqual(p.headers.find((h) => h.key === "list-unsubscribe-post")?.value, "List-Unsubscribe=One-Click")
    }).pipe(Effect.provide(Layer.merge(NodeSmtpTransport.layer, NodeFileSystem.layer)), Effect.scoped))
})

describe("examples/calendar.ts", () => {
  it.live("the invitation is delivered to the group members; the reply threads", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedServer.make()
      const path = yield* tempFile("agenda-2026.pdf", bytes)
      const mailer = yield* Mailer.make({ host: server.host, port: server.port, security: "none" })
      const provided = <A, E>(effect: Effect.Effect<A, E, Mailer.Mailer>) =>
        Effect.provideService(effect, Mailer.Mailer, mailer)
      yield* provided(calendarExample.inviteToReview(path))
      const [received] = yield* server.waitFor(1)
      assert.deepStrictEqual(received.to, ["bob@example.com", "carl@example.com"])
      const p = yield* Effect.promise(() => PostalMime.parse(received.data))
      assert.strictEqual(p.attachments.find((a) => a.mimeType === "text/calendar")!.method, "REQUEST")
      assert.deepStrictEqual(p.attachments.map((a) => a.filename), [null, "agenda.pdf", "invite.ics"])
      assert.strictEqual(p.headers.find((h) => h.key === "list-unsubscribe-post")?.value, "List-Unsubscribe=One-Click")

      yield* provided(calendarExample.acceptInvitation(Either.getOrThrow(Message.parse(received.data))))
      const [, answer] = yield* server.waitFor(2)
      assert.deepStrictEqual(answer.to, ["ann@example.com"])
      const a = yield* Effect.promise(() => PostalMime.parse(answer.data))
      assert.strictEqual(a.subject, "Re: Invitation: Quarterly review")
      assert.strictEqual(a.inReplyTo, p.messageId)
    }).pipe(Effect.provide(NodeSmtpTransport.layer), Effect.scoped))
})
