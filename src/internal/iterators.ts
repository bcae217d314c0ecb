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
