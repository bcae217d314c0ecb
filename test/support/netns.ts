/**
 * A Linux network namespace joined to this host by a veth pair: a non-loopback address that the
 * test owns, for tests that must talk to a server that is not on loopback (the plaintext rules)
 * without touching any real network. The host end gets 10.199.a.(b+1)/30, the namespace end
 * 10.199.a.(b+2)/30; nothing else is reachable through it. Names are unique per process and per
 * call (`esmtp-<pid>-<n>`, interfaces `es<pid36><n36>a|b`), so parallel runs do not clash; the
 * Scope deletes the veth pair and the namespace and kills what was spawned inside.
 *
 * Needs root and `ip netns` (iproute2). `skipReason()` says why they are unavailable, for
 * `describe.skipIf`; with `SMTP_NETNS_REQUIRED=1` (set by .ci/run) nothing is skipped and `make`
 * fails the test with that reason instead.
 *
 * ```ts
 * describe.skipIf(Netns.skipReason() !== undefined)(Netns.skipReason() ?? "my suite", () => {
 *   it.live("...", () => Effect.scoped(Effect.gen(function*() {
 *     const ns = yield* Netns.make
 *     const child = yield* ns.spawn("node", ["server.mjs", ns.address])
 *   })))
 * })
 * ```
 */
import { Effect, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"

/** `SMTP_NETNS_REQUIRED=1`: an unavailable namespace fails the tests instead of skipping them. */
export const required: boolean = process.env.SMTP_NETNS_REQUIRED === "1"

const ipPath: string | undefined = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].find((p) => fs.existsSync(p))

/** Runs `ip args`; throws an Error carrying ip's stderr when it fails. */
const ip = (args: ReadonlyArray<string>): string => {
  if (ipPath === undefined) throw new Error("the ip command (iproute2) is not installed")
  const result = ChildProcess.spawnSync(ipPath, args, { encoding: "utf8", timeout: 10_000 })
  if (result.status !== 0) {
    const detail = (result.stderr || result.error?.message || `exit ${result.status}`).trim()
    throw new Error(`ip ${args.join(" ")}: ${detail}`)
  }
  return result.stdout
}

/** Best-effort removal (teardown): errors are ignored, the object may already be gone. */
const ipQuiet = (args: ReadonlyArray<string>): void => {
  try {
    ip(args)
  } catch {
    // already gone
  }
}

let counter = 0
const uniqueNames = () => {
  const n = counter++
  const short = `es${process.pid.toString(36)}${n.toString(36)}`
  return { namespace: `esmtp-${process.pid}-${n}`, hostLink: `${short}a`, nsLink: `${short}b` }
}

let probed: { readonly reason: string | undefined } | undefined

/**
 * Why a namespace with a veth pair cannot be made here, or undefined when it can. Probes once per
 * process (creates and deletes a namespace and a veth pair).
 */
export const unavailableReason = (): string | undefined => {
  if (probed !== undefined) return probed.reason
  const reason = (() => {
    if (process.platform !== "linux") return "network namespaces need Linux"
    if (process.getuid?.() !== 0) return "not root (ip netns and veth pairs need root)"
    if (ipPath === undefined) return "the ip command (iproute2) is not installed"
    const names = uniqueNames()
    try {
      ip(["netns", "add", names.namespace])
      ip(["link", "add", names.hostLink, "type", "veth", "peer", "name", names.nsLink])
      ip(["link", "set", names.nsLink, "netns", names.namespace])
      return undefined
    } catch (e) {
      return `ip netns / veth unavailable (${e instanceof Error ? e.message : String(e)})`
    } finally {
      ipQuiet(["link", "del", names.hostLink])
      ipQuiet(["netns", "del", names.namespace])
    }
  })()
  probed = { reason }
  return reason
}

/**
 * For `describe.skipIf`: the reason to skip, or undefined when the suite must run (namespaces
 * work, or `SMTP_NETNS_REQUIRED=1`, in which case `make` fails with the reason).
 */
export const skipReason = (): string | undefined => {
  const reason = unavailableReason()
  if (reason === undefined || required) return undefined
  return `skipped: ${reason}; set SMTP_NETNS_REQUIRED=1 to make this a failure`
}

/** A namespace made by `make`. */
export interface Netns {
  readonly namespace: string
  /** The namespace's end of the veth pair: the one non-loopback address a test may connect to. */
  readonly address: string
  /** This host's end of the veth pair. */
  readonly hostAddress: string
  /** Starts `command args` inside the namespace; it is killed (SIGKILL) when the Scope closes. */
  readonly spawn: (
    command: string,
    args: ReadonlyArray<string>
  ) => Effect.Effect<ChildProcess.ChildProcessWithoutNullStreams, never, Scope.Scope>
}

/** The 10.199.x.y addresses already on this host (another run's pairs), to pick a free /30. */
const usedSubnets = (): Set<string> => {
  const used = new Set<string>()
  for (const match of ip(["-o", "-4", "addr", "show"]).matchAll(/inet (10\.199\.\d+\.\d+)\//g)) {
    const [a, b, c, d] = match[1].split(".").map(Number)
    used.add(`${a}.${b}.${c}.${d & ~3}`)
  }
  return used
}

const pickSubnet = (seed: number): { readonly host: string; readonly ns: string } => {
  const used = usedSubnets()
  for (let i = 0; i < 16384; i++) {
    const index = (seed + i * 7919) % 16384
    const base = `10.199.${index >> 6}.${(index & 63) << 2}`
    if (!used.has(base)) {
      return {
        host: `10.199.${index >> 6}.${((index & 63) << 2) + 1}`,
        ns: `10.199.${index >> 6}.${((index & 63) << 2) + 2}`
      }
    }
  }
  throw new Error("no free /30 in 10.199.0.0/16")
}

/**
 * Creates a namespace, a veth pair with one end inside, the addresses, and brings the links (and the
 * namespace's loopback) up. Dies (a defect naming the reason) when namespaces are unavailable.
 */
export const make: Effect.Effect<Netns, never, Scope.Scope> = Effect.gen(function*() {
  const reason = unavailableReason()
  if (reason !== undefined) {
    return yield* Effect.dieMessage(
      `a network namespace is needed${required ? " (SMTP_NETNS_REQUIRED=1)" : ""} but ${reason}`
    )
  }
  const names = uniqueNames()
  const subnet = pickSubnet(process.pid * 31 + counter)
  yield* Effect.acquireRelease(
    Effect.try({
      try: () => {
        ip(["netns", "add", names.namespace])
        ip(["link", "add", names.hostLink, "type", "veth", "peer", "name", names.nsLink])
        ip(["link", "set", names.nsLink, "netns", names.namespace])
        ip(["addr", "add", `${subnet.host}/30`, "dev", names.hostLink])
        ip(["link", "set", names.hostLink, "up"])
        ip(["-n", names.namespace, "addr", "add", `${subnet.ns}/30`, "dev", names.nsLink])
        ip(["-n", names.namespace, "link", "set", names.nsLink, "up"])
        ip(["-n", names.namespace, "link", "set", "lo", "up"])
      },
      catch: (e) => e
    }).pipe(
      Effect.tapError(() => Effect.sync(() => teardown(names))),
      Effect.orDie
    ),
    () => Effect.sync(() => teardown(names))
  )
  const spawn = (command: string, args: ReadonlyArray<string>) =>
    Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn(ipPath!, ["netns", "exec", names.namespace, command, ...args], {
          stdio: ["pipe", "pipe", "pipe"]
        })
      ),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGKILL")
        })
    )
  return { namespace: names.namespace, address: subnet.ns, hostAddress: subnet.host, spawn }
})

const teardown = (names: ReturnType<typeof uniqueNames>) => {
  // deleting one end of a veth pair deletes both; the namespace goes once nothing runs in it
  ipQuiet(["link", "del", names.hostLink])
  ipQuiet(["netns", "del", names.namespace])
}
