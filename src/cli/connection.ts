/**
 * The options every command that connects shares (security, TLS trust, login, timeout, EHLO name)
 * and how they become `SmtpClient.Options`: the password from an environment variable or a hidden
 * prompt on a terminal, an OAuth 2.0 token from an environment variable.
 *
 * @internal
 */
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Terminal from "@effect/platform/Terminal"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as SmtpAuth from "../SmtpAuth.js"
import type * as SmtpClient from "../SmtpClient.js"
import { CliFailure, ExitCode, usage } from "./exit.js"

/** What the connection flags parse to. */
export interface ConnectionFlags {
  readonly port: Option.Option<number>
  readonly security: Option.Option<"tls" | "starttls" | "opportunistic" | "none">
  readonly ca: Option.Option<string>
  readonly insecure: boolean
  readonly servername: Option.Option<string>
  readonly helo: Option.Option<string>
  readonly timeout: number
  readonly user: Option.Option<string>
  readonly passwordEnv: string
  readonly oauth2TokenEnv: Option.Option<string>
  readonly mechanism: Option.Option<string>
  readonly allowPlaintextAuth: boolean
}

/** `--server` of the commands that send (`probe` takes the server as an argument). */
export const serverFlag = {
  server: Options.text("server").pipe(
    Options.withAlias("s"),
    Options.withDescription("The SMTP server, host or host:port"),
    Options.withDefault("localhost")
  )
}

/** The flags (the server itself is `--server` or an argument, per command). */
export const connectionFlags = {
  port: Options.integer("port").pipe(
    Options.withAlias("p"),
    Options.withDescription("Port (default 25; 465 with --security tls)"),
    Options.optional
  ),
  security: Options.choice("security", ["tls", "starttls", "opportunistic", "none"]).pipe(
    Options.withDescription(
      "tls: implicit TLS; starttls: STARTTLS required; opportunistic: STARTTLS when offered (default; tls on port 465); none: plaintext"
    ),
    Options.optional
  ),
  ca: Options.file("ca", { exists: "yes" }).pipe(
    Options.withDescription("Trust this CA certificate (PEM) instead of the system's"),
    Options.optional
  ),
  insecure: Options.boolean("insecure").pipe(
    Options.withDescription("Do not verify the server's certificate or host name")
  ),
  servername: Options.text("servername").pipe(
    Options.withDescription("Check the certificate for this name (and send it as SNI) instead of the server's"),
    Options.optional
  ),
  helo: Options.text("helo").pipe(Options.withDescription("The name to send with EHLO"), Options.optional),
  timeout: Options.integer("timeout").pipe(
    Options.withDescription("Seconds to wait for the connection and each reply"),
    Options.withDefault(30)
  ),
  user: Options.text("user").pipe(
    Options.withAlias("u"),
    Options.withDescription("Log in as this user"),
    Options.optional
  ),
  passwordEnv: Options.text("password-env").pipe(
    Options.withDescription("The environment variable holding the password (else a hidden prompt on a terminal)"),
    Options.withDefault("SMTP_PASSWORD")
  ),
  oauth2TokenEnv: Options.text("oauth2-token-env").pipe(
    Options.withDescription(
      "Log in with the OAuth 2.0 access token in this environment variable (XOAUTH2/OAUTHBEARER)"
    ),
    Options.optional
  ),
  mechanism: Options.text("auth-mechanism").pipe(
    Options.withDescription("The SASL mechanism to use (default: the best one offered)"),
    Options.optional
  ),
  allowPlaintextAuth: Options.boolean("allow-plaintext-auth").pipe(
    Options.withDescription("Allow PLAIN/LOGIN/OAuth over an unencrypted connection to a host that is not loopback")
  )
} as const

/**
 * How a message names the environment variable a flag gives: the default's name, else only the
 * flag (what was given may be the secret itself, typed in place of a variable's name).
 */
export const envVariable = (flag: string, name: string, defaultName?: string): string =>
  name === defaultName ? name : `the environment variable ${flag} names (a variable's name, not its value)`

const fromEnv = (name: string): string | undefined => {
  const value = process.env[name]
  return value === undefined || value === "" ? undefined : value
}

/** The password: the environment variable, else a hidden prompt when stdin is a terminal. */
const password = (
  flags: ConnectionFlags,
  user: string
): Effect.Effect<Redacted.Redacted<string>, CliFailure, Terminal.Terminal> => {
  const value = fromEnv(flags.passwordEnv)
  if (value !== undefined) return Effect.succeed(Redacted.make(value))
  if (process.stdin.isTTY !== true) {
    return Effect.fail(
      usage(
        `no password for ${user}: set ${envVariable("--password-env", flags.passwordEnv, "SMTP_PASSWORD")}` +
          (flags.passwordEnv === "SMTP_PASSWORD" ? " (or name another variable with --password-env)" : "")
      )
    )
  }
  return Prompt.hidden({ message: `Password for ${user}` }).pipe(
    Effect.catchAll(() => Effect.fail(new CliFailure({ code: ExitCode.interrupted, message: "no password given" })))
  )
}

/** The credentials the flags ask for, if any. */
export const credentials = (
  flags: ConnectionFlags
): Effect.Effect<SmtpAuth.Credentials | undefined, CliFailure, Terminal.Terminal> =>
  Effect.gen(function*() {
    if (Option.isNone(flags.user)) {
      if (Option.isSome(flags.oauth2TokenEnv)) return yield* Effect.fail(usage("--oauth2-token-env needs --user"))
      return undefined
    }
    const user = flags.user.value
    const allowInsecure = flags.allowPlaintextAuth ? { allowInsecure: true } : {}
    if (Option.isSome(flags.oauth2TokenEnv)) {
      const name = flags.oauth2TokenEnv.value
      const token = fromEnv(name)
      if (token === undefined) {
        return yield* Effect.fail(usage(`${envVariable("--oauth2-token-env", name)} is not set`))
      }
      const mechanism = Option.getOrUndefined(flags.mechanism)?.toUpperCase()
      if (mechanism !== undefined && mechanism !== "XOAUTH2" && mechanism !== "OAUTHBEARER") {
        return yield* Effect.fail(usage(`--auth-mechanism ${mechanism} does not take an OAuth 2.0 token`))
      }
      return {
        user,
        oauth2: () => Effect.succeed(Redacted.make(token)),
        ...allowInsecure,
        ...(mechanism === undefined ? {} : { mechanism })
      }
    }
    return {
      user,
      password: yield* password(flags, user),
      ...allowInsecure,
      ...(Option.isSome(flags.mechanism) ? { mechanisms: [flags.mechanism.value.toUpperCase()] } : {})
    }
  })

/** `SmtpClient.Options` for `server` (`host`, `host:port`, or `[v6]:port`) and the flags. */
export const clientOptions = (
  server: string,
  flags: ConnectionFlags,
  extra: { readonly debug?: 0 | 1 | undefined } = {}
): Effect.Effect<SmtpClient.Options, CliFailure, FileSystem.FileSystem | Terminal.Terminal> =>
  Effect.gen(function*() {
    if (server.trim() === "") return yield* Effect.fail(usage("the server name is empty"))
    if (flags.timeout <= 0) return yield* Effect.fail(usage("--timeout must be a positive number of seconds"))
    if (Option.isSome(flags.port) && (flags.port.value < 1 || flags.port.value > 65535)) {
      return yield* Effect.fail(usage(`--port ${flags.port.value} is not a port number`))
    }
    const fs = yield* FileSystem.FileSystem
    const ca = Option.isNone(flags.ca) ? undefined : yield* fs.readFileString(flags.ca.value).pipe(
      Effect.mapError((e) => usage(`cannot read --ca ${flags.ca.pipe(Option.getOrElse(() => ""))}: ${e.message}`))
    )
    const tls = {
      ...(ca === undefined ? {} : { ca }),
      ...(flags.insecure ? { rejectUnauthorized: false } : {}),
      ...(Option.isSome(flags.servername) ? { servername: flags.servername.value } : {})
    }
    const auth = yield* credentials(flags)
    return {
      host: server,
      ...(Option.isSome(flags.port) ? { port: flags.port.value } : {}),
      ...(Option.isSome(flags.security) ? { security: flags.security.value } : {}),
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
      ...(Option.isSome(flags.helo) ? { localHostname: flags.helo.value } : {}),
      timeout: Duration.seconds(flags.timeout),
      ...(auth === undefined ? {} : { auth }),
      ...(extra.debug === undefined ? {} : { debug: extra.debug })
    }
  })
