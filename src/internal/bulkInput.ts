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

export const notAnItem = () =>
  new SmtpInvalidInput({
    reason: "A sendAll item must be an object: { from, to, message } or { message } with a Message"
  })

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
