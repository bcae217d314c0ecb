/**
 * A bounded first-in first-out queue between fibers with a synchronous `poll` (`Mailer.sendAll`'s
 * input: its workers take from it, and a batch's reply callbacks poll it). Effect's `Queue` makes a
 * `Deferred` for every offer to a full queue (~5 µs: an object spread of its prototype) and wakes
 * the offerer for each item taken; here the one offerer waits until the queue is at most half full
 * and then fills it in one go, and an item offered while a taker waits goes to that taker.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

export class Handoff<A> {
  private items: Array<A> = []
  private head = 0
  private readonly takers: Array<(a: A) => void> = []
  private offerer: (() => void) | undefined = undefined

  constructor(private readonly capacity: number) {}

  /** Items waiting. */
  size(): number {
    return this.items.length - this.head
  }

  /** The next item without waiting; `none` when there is none. */
  poll<B>(none: B): A | B {
    if (this.head === this.items.length) return none
    const item = this.items[this.head]
    this.items[this.head++] = undefined as A
    // (taken from the front, added at the end: the array is cut down as it empties, or once its
    // taken front is larger than the items left, so that it never grows with the items gone through)
    if (this.head === this.items.length) {
      this.items.length = 0
      this.head = 0
    } else if (this.head > 32 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    const offerer = this.offerer
    if (offerer !== undefined && this.size() <= this.capacity >> 1) {
      this.offerer = undefined
      offerer()
    }
    return item
  }

  /**
   * The next item, when there is one. (The fiber may yield between an Effect's steps: whether to
   * wait is decided where the wait is registered, never a step before.) An item handed to a taker
   * whose interruption is already under way is lost with it: only when everything is torn down.
   */
  readonly take: Effect.Effect<A> = Effect.suspend(() =>
    this.head < this.items.length ? Effect.succeed(this.poll(undefined as A)) : Effect.async<A>((resume) => {
      if (this.head < this.items.length) return resume(Effect.succeed(this.poll(undefined as A)))
      const taker = (item: A) => resume(Effect.succeed(item))
      this.takers.push(taker)
      return Effect.sync(() => {
        const at = this.takers.indexOf(taker)
        if (at !== -1) this.takers.splice(at, 1)
      })
    })
  )

  /** Adds an item, once there is room (one fiber offers). */
  offer(item: A): Effect.Effect<void> {
    return Effect.suspend(() => this.add(item) ? Effect.void : this.offerLater(item))
  }

  private offerLater(item: A): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.add(item)) return resume(Effect.void)
      this.offerer = () => {
        // woken at half full: there is room (the one offerer is this one)
        this.add(item)
        resume(Effect.void)
      }
      return Effect.sync(() => {
        this.offerer = undefined
      })
    })
  }

  /** Hands the item to the first taker waiting, or adds it when there is room. */
  private add(item: A): boolean {
    const taker = this.takers.shift()
    if (taker !== undefined) {
      taker(item)
      return true
    }
    if (this.size() >= this.capacity) return false
    this.items.push(item)
    return true
  }
}
