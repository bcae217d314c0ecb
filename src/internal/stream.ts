/**
 * The few Stream combinators the send path needs, written on `Channel`. Effect's own `unwrap`,
 * `unwrapScoped`, `concat` and `fromIterable` are built on the concurrent `flatMap`
 * or `zipRight` (they take concurrency options), which bundles Effect's Queue and Schedule
 * machinery: ~28 KB minified in every program that sends mail, whether or not it streams. These
 * are sequential, which is all the session asks of them.
 *
 * @internal
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** `Stream.unwrap`, sequential. */
export const unwrap = <A, E, R, E2, R2>(
  effect: Effect.Effect<Stream.Stream<A, E, R>, E2, R2>
): Stream.Stream<A, E | E2, R | R2> => Stream.fromChannel(Channel.unwrap(Effect.map(effect, Stream.toChannel)))

/** `Stream.unwrapScoped`, sequential: the scope closes when the stream ends. */
export const unwrapScoped = <A, E, R, E2, R2>(
  effect: Effect.Effect<Stream.Stream<A, E, R>, E2, R2>
): Stream.Stream<A, E | E2, Exclude<R2, Scope.Scope> | R> =>
  Stream.fromChannel(Channel.unwrapScoped(Effect.map(effect, Stream.toChannel)))

/** `Stream.concat`: `self`, then `that`. */
export const concat = <A, E, R, E2, R2>(
  self: Stream.Stream<A, E, R>,
  that: Stream.Stream<A, E2, R2>
): Stream.Stream<A, E | E2, R | R2> =>
  Stream.fromChannel(Channel.flatMap(Stream.toChannel(self), () => Stream.toChannel(that)))

/** Elements per chunk of `fromIterable`: an iterable is read lazily, this many at a time. */
const ITERABLE_CHUNK = 64

/** `Stream.fromIterable`, read lazily (a generator is advanced only as far as the stream is pulled). */
export const fromIterable = <A>(items: Iterable<A>): Stream.Stream<A> =>
  Stream.fromChannel(Channel.suspend(() => {
    const iterator = items[Symbol.iterator]()
    const loop: Channel.Channel<Chunk.Chunk<A>> = Channel.suspend(() => {
      const batch: Array<A> = []
      let next = iterator.next()
      while (!next.done) {
        batch.push(next.value)
        if (batch.length === ITERABLE_CHUNK) break
        next = iterator.next()
      }
      if (next.done) return batch.length === 0 ? Channel.void : Channel.write(Chunk.unsafeFromArray(batch))
      return Channel.flatMap(Channel.write(Chunk.unsafeFromArray(batch)), () => loop)
    })
    return loop
  }))
