/**
 * Byte helpers shared by the codec, the engine and the message model. Pure.
 *
 * @internal
 */

/** Joins byte arrays; a single one is returned as it is, not copied. */
export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  let size = 0
  for (const p of parts) size += p.length
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
