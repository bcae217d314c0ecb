#!/usr/bin/env node
/**
 * The `effect-smtp` command (the package's `bin`): `send`, `probe`, `bulk` and `capture`, run with
 * `NodeRuntime.runMain`. Every failure ends with one line on stderr and the exit code of its kind
 * (`exit.ts`), never a stack trace.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { createRequire } from "node:module"
import * as Bulk from "./bulk.js"
import * as Capture from "./capture.js"
import { CliFailure, ExitCode, exitCodesHelp, oneLine } from "./exit.js"
import { errorLine, line, loggerLayer } from "./output.js"
import * as Probe from "./probe.js"
import * as Send from "./send.js"

const version: string = (createRequire(import.meta.url)("../../package.json") as { version: string }).version

const root = Command.make("effect-smtp").pipe(
  Command.withDescription(
    `Send, probe, bulk-send and capture mail over SMTP from a terminal (effect-smtp ${version}). ${exitCodesHelp}`
  ),
  Command.withSubcommands([Send.command, Probe.command, Bulk.command, Capture.command])
)

const cli = Command.run(root, { name: "effect-smtp", version })

const setExit = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

const ansi = /\x1b\[[0-9;]*m/g
const plain = process.stdout.isTTY !== true || (process.env.NO_COLOR ?? "") !== ""

/**
 * @effect/cli prints its usage errors with Console.error: as one line, prefixed, without colours;
 * and its help with Console.log: without colours unless stdout is a terminal (and NO_COLOR unset).
 */
const oneLineErrors = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Console.consoleWith((console) =>
    Effect.withConsole(effect, {
      ...console,
      error: (...args: ReadonlyArray<unknown>) => {
        const text = oneLine(args.map(String).join(" ").replace(ansi, ""))
        return text === "" ? Effect.void : errorLine(`effect-smtp: ${text}`)
      },
      log: (...args: ReadonlyArray<unknown>) =>
        plain ? line(args.map(String).join(" ").replace(ansi, "")) : console.log(...args)
    })
  )

const program = Effect.suspend(() => oneLineErrors(cli(process.argv))).pipe(
  Effect.catchAll((error) => {
    // @effect/cli has printed its message (a usage error) already
    if (ValidationError.isValidationError(error)) return setExit(ExitCode.usage)
    if (error instanceof CliFailure) {
      return Effect.zipRight(errorLine(`effect-smtp: ${error.message}`), setExit(error.code))
    }
    return Effect.zipRight(errorLine(`effect-smtp: ${oneLine(String(error))}`), setExit(1))
  }),
  Effect.catchAllDefect((defect) =>
    Effect.zipRight(
      errorLine(`effect-smtp: internal error: ${oneLine(defect instanceof Error ? defect.message : String(defect))}`),
      setExit(70)
    )
  ),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer))
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => {
    const set = process.exitCode
    if (typeof set === "number") return onExit(set)
    onExit(
      Exit.isSuccess(exit) ? 0 : Cause.isInterruptedOnly(exit.cause) ? ExitCode.interrupted : 1
    )
  }
})
