/**
 * `effect-smtp probe HOST`: what a server offers (greeting, EHLO extensions, SIZE, AUTH
 * mechanisms), its TLS (protocol, cipher, the certificate chain with days left, trust and the
 * host-name check) and optionally a login, as text or `--json`; the exit code says what failed.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as SmtpClient from "../SmtpClient.js"
import { isSmtpError, type SmtpError } from "../SmtpError.js"
import { clientOptions, connectionFlags } from "./connection.js"
import { ExitCode, exitCodesHelp, fromSmtpError } from "./exit.js"
import { fields, json, line } from "./output.js"
import * as ProbeTransport from "./probeTransport.js"

const flags = {
  ...connectionFlags,
  json: Options.boolean("json").pipe(Options.withDescription("Print the report as one JSON object"))
} as const

const host = Args.text({ name: "HOST" }).pipe(Args.withDescription("The server: a name, an address, or host:port"))

type Flags = Command.Command.ParseConfig<typeof flags> & { readonly host: string }

/** The report, as `--json` prints it. */
export interface Report {
  server: string
  greeting: { code: number; text: string } | null
  extensions: Record<string, string> | null
  sizeLimit: number | null
  authMechanisms: Array<string> | null
  tls: ProbeTransport.TlsReport | null
  login: { user: string; ok: boolean; reply: string } | null
  error: { kind: string; exitCode: number; message: string } | null
}

const kindOf = (code: number) =>
  code === ExitCode.unreachable ?
    "unreachable" :
    code === ExitCode.tls ?
    "tls" :
    code === ExitCode.auth ?
    "auth" :
    code === ExitCode.usage ?
    "input" :
    "smtp"

const mib = (bytes: number) => bytes === 0 ? "no limit given" : `${bytes} bytes (${(bytes / 1048576).toFixed(1)} MiB)`

const text = (report: Report): string => {
  const rows: Array<readonly [string, string]> = [["server", report.server]]
  if (report.greeting !== null) {
    rows.push(["greeting", `${report.greeting.code} ${report.greeting.text.replace(/\n/g, " / ")}`])
  }
  const tls = report.tls
  if (tls !== null) {
    rows.push([
      "tls",
      `${tls.protocol ?? "?"} ${tls.cipher ?? "?"} (${tls.mode === "implicit" ? "implicit TLS" : "STARTTLS"})`
    ])
    rows.push([
      "certificate",
      tls.verified ?
        `verified for ${tls.servername}` :
        `NOT verified for ${tls.servername}: ${
          [
            tls.trusted ? undefined : `untrusted (${tls.trustError})`,
            tls.hostnameMatches ? undefined : tls.hostnameError
          ]
            .filter((s) => s !== undefined).join("; ")
        }`
    ])
  } else if (report.greeting !== null) rows.push(["tls", "none (plaintext session)"])
  const out = [fields(rows, 11)]
  if (tls !== null) {
    tls.chain.forEach((cert, i) => {
      out.push(`  [${i}] subject: ${cert.subject}`)
      out.push(`      issuer:  ${cert.issuer}`)
      if (cert.subjectAltNames.length > 0) out.push(`      names:   ${cert.subjectAltNames.join(", ")}`)
      out.push(
        `      valid:   ${cert.validFrom.slice(0, 10)} to ${cert.validTo.slice(0, 10)} (${
          cert.daysLeft < 0 ? `expired ${-cert.daysLeft} days ago` : `${cert.daysLeft} days left`
        })`
      )
    })
  }
  const more: Array<readonly [string, string]> = []
  if (report.extensions !== null) {
    more.push([
      "extensions",
      Object.entries(report.extensions).map(([k, v]) => (v === "" ? k.toUpperCase() : `${k.toUpperCase()} ${v}`)).join(
        ", "
      )
    ])
    more.push(["size limit", report.sizeLimit === null ? "not advertised" : mib(report.sizeLimit)])
    more.push(["auth", report.authMechanisms!.length === 0 ? "not offered" : report.authMechanisms!.join(" ")])
  }
  if (report.login !== null) {
    more.push([
      "login",
      report.login.ok
        ? `ok as ${report.login.user} (${report.login.reply})`
        : `FAILED for ${report.login.user}: ${report.login.reply}`
    ])
  }
  if (more.length > 0) out.push(fields(more, 11))
  return out.join("\n")
}

const handler = (f: Flags) =>
  Effect.gen(function*() {
    const options = yield* clientOptions(f.host, f)
    const { auth, ...connectOptions } = options
    const probe = ProbeTransport.make(true)
    const report: Report = {
      server: Option.isSome(f.port) ? `${f.host}:${f.port.value}` : f.host,
      greeting: null,
      extensions: null,
      sizeLimit: null,
      authMechanisms: null,
      tls: null,
      login: null,
      error: null
    }
    const session = Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect(connectOptions)
      report.greeting = { code: smtp.greeting.code, text: smtp.greeting.text }
      yield* smtp.ehloOrHeloIfNeeded
      const extensions = yield* smtp.esmtpFeatures
      report.extensions = Object.fromEntries(Array.from(extensions, ([k, v]) => [k, v.trim()]))
      const size = extensions.get("size")
      const limit = size === undefined ? undefined : Number.parseInt(size || "0", 10)
      report.sizeLimit = limit === undefined || Number.isNaN(limit) ? null : limit
      report.authMechanisms = (extensions.get("auth") ?? "").split(/\s+/).filter((m) => m !== "").map((m) =>
        m.toUpperCase()
      )
      if (auth !== undefined && "user" in auth) {
        report.login = { user: auth.user, ok: false, reply: "" }
        const reply = yield* "password" in auth ?
          smtp.login(auth.user, auth.password, auth) :
          smtp.loginOAuth2(auth.user, auth.oauth2({ user: auth.user, renew: false }), auth).pipe(
            Effect.catchAll((e) => isSmtpError(e) ? Effect.fail(e) : Effect.die(e))
          )
        report.login = { user: auth.user, ok: true, reply: `${reply.code} ${reply.text.replace(/\n/g, " / ")}` }
      }
    }))
    const failure = yield* session.pipe(
      Effect.provide(probe.layer),
      Effect.as(undefined),
      Effect.catchIf(isSmtpError, (e: SmtpError) => Effect.succeed(e))
    )
    report.tls = probe.reports.at(-1) ?? null
    if (failure !== undefined && report.login !== null && !report.login.ok) {
      report.login.reply = fromSmtpError(failure).message
    }
    if (failure !== undefined) {
      const { code, message } = fromSmtpError(failure)
      report.error = { kind: kindOf(code), exitCode: code, message }
    }
    if (f.json) yield* json(report)
    else {
      yield* line(text(report))
      if (report.error !== null) {
        yield* Effect.sync(() => process.stderr.write(`effect-smtp: ${report.error!.message}\n`))
      }
    }
    if (report.error !== null) {
      const code = report.error.exitCode
      yield* Effect.sync(() => {
        process.exitCode = code
      })
    }
  })

/** The command. */
export const command = Command.make("probe", { ...flags, host }, handler).pipe(
  Command.withDescription(
    "Report what a server offers: the greeting, EHLO extensions, SIZE, AUTH mechanisms, TLS (protocol, cipher, " +
      "certificate chain with days left, trust and host-name check), and with --user a login test. " +
      "STARTTLS is used when offered (--security starttls requires it, tls for implicit TLS). " +
      exitCodesHelp
  )
)
