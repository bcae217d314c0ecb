/**
 * Line-ending normalisation for message bodies: CRLF stays, a lone LF or a lone CR becomes
 * CRLF (what Python's generator does with `linesep="\r\n"`). Incremental, so a Stream body is
 * normalised chunk by chunk: a CR that ends one chunk and an LF that starts the next are one
 * line break, never two.
 *
 * @internal
 */
import * as Stream from "effect/Stream"
import { CR, LF } from "./bytes.js"

/**
 * An incremental normaliser. `push` returns the normalised chunk (the same array when nothing
 * had to change). There is nothing to flush: a CR at the end of a chunk is written as CRLF at
 * once and an LF at the start of the next chunk is then skipped.
 *
 * @internal
 */
export interface CrlfNormaliser {
  readonly push: (chunk: Uint8Array) => Uint8Array
}

/** @internal */
export const makeCrlfNormaliser = (): CrlfNormaliser => {
  // true when the previous chunk ended with a CR that was already written as CRLF
  let skipLf = false
  const push = (chunk: Uint8Array): Uint8Array => {
    const n = chunk.length
    if (n === 0) return chunk
    let out: Uint8Array | undefined
    let o = 0
    // switches to copying mode: everything before `i` is unchanged
    const start = (i: number) => {
      out = new Uint8Array(n * 2)
      out.set(chunk.subarray(0, i), 0)
      o = i
    }
    let i = 0
    if (skipLf && chunk[0] === LF) {
      start(0)
      i = 1
    }
    skipLf = false
    for (; i < n; i++) {
      const b = chunk[i]!
      if (b === CR) {
        if (i + 1 < n) {
          if (chunk[i + 1] === LF) {
            if (out !== undefined) {
              out[o++] = CR
              out[o++] = LF
            }
            i++
          } else {
            if (out === undefined) start(i)
            out![o++] = CR
            out![o++] = LF
          }
        } else {
          if (out === undefined) start(i)
          out![o++] = CR
          out![o++] = LF
          skipLf = true
        }
      } else if (b === LF) {
        if (out === undefined) start(i)
        out![o++] = CR
        out![o++] = LF
      } else if (out !== undefined) {
        out[o++] = b
      }
    }
    return out === undefined ? chunk : out.subarray(0, o)
  }
  return { push }
}

/** Normalises a whole byte array. @internal */
export const normaliseCrlf = (bytes: Uint8Array): Uint8Array => makeCrlfNormaliser().push(bytes)

/** Normalises a Stream of bytes, one chunk at a time, with fresh state for every run. @internal */
export const normaliseCrlfStream = <E, R>(
  self: Stream.Stream<Uint8Array, E, R>
): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    const normaliser = makeCrlfNormaliser()
    return Stream.filter(Stream.map(self, normaliser.push), (chunk) => chunk.length > 0)
  })

/** Normalises line breaks in a string: CRLF, lone CR and lone LF all become CRLF. @internal */
export const normaliseCrlfString = (s: string): string => s.replace(/\r\n|\r|\n/g, "\r\n")
