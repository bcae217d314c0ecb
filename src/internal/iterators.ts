/**
 * Iterators of a caller's input. Pure.
 *
 * @internal
 */

/**
 * Closes an iterator read only part of the way (what a `for...of` left by `break` does): a
 * generator runs its `finally` blocks (a cursor or a file it holds is let go). A `return` that
 * throws is ignored: the input had been given up already, and the outcomes are what they are.
 */
export const close = (iterator: Iterator<unknown>): void => {
  try {
    iterator.return?.()
  } catch {
    // (ignored: see above)
  }
}

/**
 * An iterator read one item at a time, which knows whether it was left part of the way: `close`
 * closes it then only (not once it has ended, nor after it threw).
 */
export class Reader<A> {
  private open = true
  constructor(private readonly iterator: Iterator<A>) {}

  /** The next item, or `done`; what the iterator throws is thrown (and it is not closed after). */
  next(): IteratorResult<A> {
    try {
      const next = this.iterator.next()
      if (next.done === true) this.open = false
      return next
    } catch (defect) {
      this.open = false
      throw defect
    }
  }

  /** Closes the iterator if it was left part of the way. */
  close(): void {
    if (this.open) {
      this.open = false
      close(this.iterator)
    }
  }
}
