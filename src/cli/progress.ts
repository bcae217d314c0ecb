/**
 * Progress of `bulk` on stderr: on a terminal a bar redrawn in place with the rate and the ETA;
 * otherwise plain lines (one a second at most, and every tenth of the total); or nothing.
 *
 * @internal
 */

/** The counters a progress display shows. */
export interface Counts {
  sent: number
  failed: number
}

/** How progress is shown. */
export type Mode = "bar" | "lines" | "none"

const duration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "?"
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
}

/** A progress display for `total` messages. */
export const make = (mode: Mode, total: number, now: () => number = Date.now) => {
  const started = now()
  let lastDraw = 0
  let lastLinePercent = -1
  const summary = (counts: Counts) => {
    const done = counts.sent + counts.failed
    const elapsed = (now() - started) / 1000
    const rate = elapsed > 0 ? done / elapsed : 0
    const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY
    return { done, rate, eta, elapsed }
  }
  const bar = (counts: Counts) => {
    const { done, eta, rate } = summary(counts)
    const width = Math.max(10, Math.min(30, (process.stderr.columns ?? 80) - 60))
    const filled = total === 0 ? width : Math.round((done / total) * width)
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100)
    return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${percent}% ` +
      `${rate.toFixed(1)} msg/s ETA ${duration(eta)} | sent ${counts.sent} failed ${counts.failed}`
  }
  return {
    /** After each outcome; draws at most ten times a second (lines: once a second or each 10%). */
    update: (counts: Counts): void => {
      if (mode === "none") return
      const t = now()
      if (mode === "bar") {
        if (t - lastDraw < 100) return
        lastDraw = t
        process.stderr.write(`\r\x1b[2K${bar(counts)}`)
        return
      }
      const { done, eta, rate } = summary(counts)
      const percent = total === 0 ? 100 : Math.floor((done / total) * 10) * 10
      if (t - lastDraw < 1000 && percent === lastLinePercent) return
      lastDraw = t
      lastLinePercent = percent
      process.stderr.write(
        `progress: ${done}/${total} sent ${counts.sent} failed ${counts.failed} (${rate.toFixed(1)} msg/s, ETA ${
          duration(eta)
        })\n`
      )
    },
    /** The last state, then a line break (bar mode). */
    finish: (counts: Counts): void => {
      if (mode === "bar") process.stderr.write(`\r\x1b[2K${bar(counts)}\n`)
    },
    elapsed: () => duration(summary({ sent: 0, failed: 0 }).elapsed)
  }
}
