/**
 * Attachments from a file, through `@effect/platform`'s `FileSystem` (no `node:*`): the file is
 * checked once (it must exist and be a regular file), then streamed with `fs.stream` each time
 * the message is serialised, never read whole.
 *
 * @internal
 */
import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import type * as Message from "../../Message.js"

/** The last segment of a path (`/` or `\` separated), or `undefined` when there is none. */
const basename = (path: string): string | undefined => {
  const name = path.replace(/[\\/]+$/, "").split(/[\\/]/).pop()
  return name === undefined || name.length === 0 ? undefined : name
}

/** @internal */
export const attachmentFromPath = (
  path: string,
  options?: Message.AttachmentFromPathOptions
): Effect.Effect<Message.Attachment<PlatformError.PlatformError>, PlatformError.PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(path)
    if (info.type !== "File") {
      return yield* new PlatformError.SystemError({
        reason: "BadResource",
        module: "FileSystem",
        method: "attachmentFromPath",
        pathOrDescriptor: path,
        description: `not a regular file (${info.type})`
      })
    }
    const chunkSize = options?.chunkSize
    return {
      filename: options?.filename ?? basename(path),
      contentType: options?.contentType,
      cid: options?.cid,
      disposition: options?.disposition,
      content: fs.stream(path, chunkSize === undefined ? undefined : { chunkSize })
    }
  }).pipe(Effect.withSpan("Message.attachmentFromPath", { attributes: { "file.path": path } }))
