/**
 * Arrays for per-message objects. Pure.
 *
 * @internal
 */

/**
 * An empty array for objects, made without an allocation site (V8 pretenures the arrays of a
 * literal's site in a busy loop, and their old copies then keep each message's young objects alive
 * until a full collection) and born with object elements (an `Array.of()` starts with small-integer
 * elements: every first push of an object changes its kind, and optimised code that had not seen
 * that change deoptimises). W1 batch −8%, single sends −2% (bench/README.md).
 */
export const objectArray = <A extends object | boolean>(): Array<A> => {
  const array: Array<A> = Array.of(undefined as unknown as A)
  array.pop()
  return array
}
