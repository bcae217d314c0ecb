/**
 * What the process holds open, by kind, for the tests that compare before and after
 * (test/inprocess/leaks.test.ts, test/faults/sockets.test.ts).
 *
 * Node: `process.getActiveResourcesInfo()` (TCPSocketWrap, TCPServerWrap, Timeout, ...).
 *
 * Bun (1.4): `process.getActiveResourcesInfo()` exists but always returns `[]`, which would make
 * every comparison pass whatever leaks. There the sockets among the open file descriptors
 * (`/proc/self/fd`, Linux) stand in: a socket or server left open is still seen, a timer is not
 * (Bun shows its timers nowhere). Without `/proc/self/fd` this throws rather than compare nothing.
 */
import * as Fs from "node:fs"

const isBun = process.versions.bun !== undefined

const openSockets = (): number => {
  let names: Array<string>
  try {
    names = Fs.readdirSync("/proc/self/fd")
  } catch (cause) {
    throw new Error("Bun: process.getActiveResourcesInfo() is always empty and /proc/self/fd is unreadable", { cause })
  }
  let sockets = 0
  for (const name of names) {
    try {
      if (Fs.readlinkSync(`/proc/self/fd/${name}`).startsWith("socket:")) sockets++
    } catch {
      // closed between readdir and readlink (the directory's own descriptor, among others)
    }
  }
  return sockets
}

export const resources = (): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1
  if (isBun) counts["socket descriptors (/proc/self/fd)"] = openSockets()
  return counts
}
