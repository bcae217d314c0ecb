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
export const objectArray = <A>(): Array<A> => template.slice() as Array<A>

/** An array of one element, made as {@link objectArray} (`Array.of(a)` costs ~100 ns). */
export const one = <A>(a: A): Array<A> => {
  const array = objectArray<A>()
  array.push(a)
  return array
}

/**
 * Empty, with object elements: a copy by `slice` keeps its elements' kind and has no allocation
 * site (~17 ns, against ~110 for `Array.of(undefined)` then `pop()`, and 13 for a literal).
 */
const template: Array<unknown> = [{}]
template.pop()
