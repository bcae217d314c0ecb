/** Splits `data` at the given offsets (any order, duplicates allowed, taken modulo the length + 1). */
export const splitAt = (data: Uint8Array, offsets: ReadonlyArray<number>): Array<Uint8Array> => {
  const cuts = [...new Set(offsets.map((o) => o % (data.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const cut of cuts) {
    out.push(data.subarray(from, cut))
    from = cut
  }
  out.push(data.subarray(from))
  return out
}
