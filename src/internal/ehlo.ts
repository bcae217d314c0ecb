/**
 * EHLO keyword parsing, as smtplib's `ehlo()` does it. Pure.
 *
 * @internal
 */

const oldStyleAuth = /^auth=(.*)$/i
const feature = /^([A-Za-z0-9][A-Za-z0-9-]*) ?/

/**
 * Parses the lines of a 250 EHLO reply (the first line is the greeting and is skipped) into a map
 * of lower-case keyword to parameters. AUTH lines (including the old `AUTH=` form) accumulate.
 */
export const parseFeatures = (lines: ReadonlyArray<string>): ReadonlyMap<string, string> => {
  const features = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const auth = oldStyleAuth.exec(line)
    if (auth !== null) {
      features.set("auth", `${features.get("auth") ?? ""} ${auth[1]}`)
      continue
    }
    const m = feature.exec(line)
    if (m === null) continue
    const name = m[1].toLowerCase()
    const params = line.slice(m[1].length).trim()
    if (name === "auth") features.set(name, `${features.get(name) ?? ""} ${params}`)
    else features.set(name, params)
  }
  return features
}
