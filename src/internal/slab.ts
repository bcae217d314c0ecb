/**
 * Small byte arrays carved out of shared slabs, as Node's `Buffer.allocUnsafe` pool does: every
 * `new Uint8Array(n)` above V8's on-heap limit (64 bytes) allocates and tracks a backing store of
 * its own, which the garbage collector then has to sweep, and that cost more than the rest of a
 * message's work. The bytes of a message's commands and of a small message are written once and
 * never changed, so they can share a slab: a slab is never reused, only dropped once every array
 * carved from it is garbage. Pure.
 *
 * @internal
 */

/** Each slab's size. */
const SLAB = 64 * 1024
/** Larger arrays get a backing store of their own. */
const SMALL = 8 * 1024

let slab = new ArrayBuffer(SLAB)
let offset = 0

/** A new zero-length-or-more byte array of `size` bytes, contents unspecified (write it all). */
export const allocate = (size: number): Uint8Array => {
  if (size > SMALL) return new Uint8Array(size)
  if (offset + size > SLAB) {
    slab = new ArrayBuffer(SLAB)
    offset = 0
  }
  const bytes = new Uint8Array(slab, offset, size)
  // 8-byte aligned, as Node's pool
  offset = (offset + size + 7) & ~7
  return bytes
}

/** Joins byte arrays into one from a slab; a single one is returned as it is, not copied. */
export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  let size = 0
  for (const p of parts) size += p.length
  const out = allocate(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
