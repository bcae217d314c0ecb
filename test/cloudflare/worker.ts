/**
 * The Worker that test/cloudflare/workerd.test.ts runs in workerd (bundled with esbuild,
 * `cloudflare:sockets` left to the runtime). Each POST is one job: connect with `SmtpClient` or
 * a `Mailer` over `CloudflareSmtpTransport`, send one message, and answer with what happened as
 * JSON (the error's tag, reason and message when it failed). It imports the package's root
 * entry, which is platform-neutral, and runs without `nodejs_compat`. With `compose`, the
 * message is built in the Worker by `Message.make` (the MIME composer) and sent with `send`.
 */
import { Effect, Redacted } from "effect"
import { CloudflareSmtpTransport } from "../../src/cloudflare.js"
import { Mailer, Message, SmtpClient, type SmtpTransport } from "../../src/index.js"

export interface Job {
  readonly api: "client" | "mailer"
  readonly port: number
  readonly host?: string | undefined
  readonly security: "tls" | "starttls" | "opportunistic" | "none"
  readonly tls?: SmtpTransport.TlsOptions | undefined
  readonly auth?: { readonly user: string; readonly password: string; readonly mechanisms?: Array<string> } | undefined
  readonly from: string
  readonly to: ReadonlyArray<string>
  readonly message: string
  /** Compose the message in the Worker: this subject and text, an attachment named `attachment`. */
  readonly compose?: { readonly subject: string; readonly text: string; readonly attachment: string } | undefined
}

export type Outcome =
  | { readonly ok: true; readonly secure: boolean | null; readonly refused: ReadonlyArray<string> }
  | { readonly ok: false; readonly tag: string; readonly reason: string | undefined; readonly message: string }

const run = (job: Job): Effect.Effect<Outcome> => {
  const options: SmtpClient.Options = {
    host: job.host ?? "127.0.0.1",
    port: job.port,
    security: job.security,
    localHostname: "worker.test",
    timeout: "5 seconds",
    tls: job.tls,
    auth: job.auth === undefined ? undefined : {
      user: job.auth.user,
      password: Redacted.make(job.auth.password),
      mechanisms: job.auth.mechanisms
    }
  }
  const composed = job.compose === undefined ? undefined : Message.make({
    from: job.from,
    to: job.to,
    subject: job.compose.subject,
    text: job.compose.text,
    attachments: [{ filename: job.compose.attachment, content: new TextEncoder().encode(job.compose.text) }]
  })
  const sent: Effect.Effect<Outcome, unknown, SmtpTransport.SmtpTransport> = job.api === "client" ?
    Effect.scoped(Effect.gen(function*() {
      const smtp = yield* SmtpClient.connect(options)
      const secure = yield* smtp.isSecure
      if (composed !== undefined) {
        const result = yield* smtp.send(yield* composed)
        return { ok: true, secure, refused: Object.keys(result.refused) } as const
      }
      const refused = yield* smtp.sendmail(job.from, job.to, job.message)
      return { ok: true, secure, refused: Object.keys(refused) } as const
    })) :
    Effect.gen(function*() {
      const mailer = yield* Mailer.Mailer
      const refused = yield* mailer.sendmail(job.from, job.to, job.message)
      return { ok: true, secure: null, refused: Object.keys(refused) } as const
    }).pipe(Effect.provide(Mailer.layer({ ...options, retry: false })))
  return sent.pipe(
    Effect.provide(CloudflareSmtpTransport.layer),
    Effect.catchAll((error) =>
      Effect.succeed(
        {
          ok: false,
          tag: typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "unknown",
          reason: typeof error === "object" && error !== null && "reason" in error ? String(error.reason) : undefined,
          message: error instanceof Error ? error.message : String(error)
        } as const
      )
    )
  )
}

export default {
  async fetch(request: Request): Promise<Response> {
    const job = (await request.json()) as Job
    const outcome = await Effect.runPromise(run(job))
    return new Response(JSON.stringify(outcome), { headers: { "content-type": "application/json" } })
  }
}
