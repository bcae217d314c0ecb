/**
 * What `Mailer.sendAll` and `TestMailer`'s `sendAll` take from a caller, checked the same way.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import { SmtpInvalidInput } from "../SmtpError.js"
import * as Iterators from "./iterators.js"

/** A JavaScript caller may give anything: an item that is not an object is refused as its outcome. */
export const isItem = Predicate.isObject

const notAnItem = () =>
  new SmtpInvalidInput({
    reason: "A sendAll item must be an object: { from, to, message } or { message } with a Message"
  })

/** Marks an item whose properties threw when read (`snapshot`): its outcome is its `refusal`. */
export const Unreadable: unique symbol = Symbol.for("effect-smtp/internal/bulkInput/Unreadable")

/**
 * The item read once into a plain object, as it is taken from the input: a JavaScript caller's
 * item may have getters, which run here, once. One that throws makes an item marked `Unreadable`
 * (its own outcome, nothing sent), never a defect further on. What is not an object is passed as
 * it is (`notAnItem`).
 */
export const snapshot = <I>(item: I): I => {
  if (!isItem(item)) return item
  try {
    const read = item as { from?: unknown; to?: unknown; message?: unknown; options?: unknown }
    return ("from" in read ?
      { from: read.from, to: read.to, message: read.message, options: read.options } :
      { message: read.message, options: read.options }) as I
  } catch {
    // (what was thrown is the caller's: not repeated in the error)
    return { [Unreadable]: true } as I
  }
}

/**
 * Why an item (as `snapshot` gave it) cannot be sent at all: not an object, or unreadable; else
 * undefined.
 */
export const refusal = (item: unknown): SmtpInvalidInput | undefined =>
  !isItem(item) ? notAnItem() : Unreadable in item ?
    new SmtpInvalidInput({ reason: "A sendAll item could not be read: reading one of its properties threw" }) :
    undefined

/**
 * The items of an iterable as a Stream read one at a time (`Stream.fromIterable` reads up to 4,096
 * ahead), the iterator closed when the Stream is left part of the way (as a `for...of` left by
 * `break`). What the iterator throws is a defect.
 */
export const fromIterable = <A>(iterable: Iterable<A>): Stream.Stream<A> =>
  Stream.unwrapScoped(
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => new Iterators.Reader(iterable[Symbol.iterator]())),
        (reader) => Effect.sync(() => reader.close())
      ),
      (reader) =>
        Stream.repeatEffectOption(Effect.suspend(() => {
          const next = reader.next()
          return next.done === true ? Effect.fail(Option.none()) : Effect.succeed(next.value)
        }))
    )
  )
