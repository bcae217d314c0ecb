/**
 * The DKIM flags of `send` and `bulk`: a signer from a domain, a selector and a key file (PEM,
 * or the base64 Ed25519 seed), built once. The key is read into a `Redacted` and never printed.
 *
 * @internal
 */
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Dkim from "../Dkim.js"
import { describeFileError } from "./compose.js"
import type { CliFailure } from "./exit.js"
import { usage } from "./exit.js"

export const dkimFlags = {
  dkimDomain: Options.text("dkim-domain").pipe(
    Options.withDescription("Sign with DKIM for this domain (d=); needs --dkim-selector and --dkim-key-file"),
    Options.optional
  ),
  dkimSelector: Options.text("dkim-selector").pipe(
    Options.withDescription("The DKIM selector (s=): the key's DNS record is <selector>._domainkey.<domain>"),
    Options.optional
  ),
  dkimKeyFile: Options.file("dkim-key-file").pipe(
    Options.withDescription("The DKIM private key: PEM (RSA or Ed25519) or the base64 Ed25519 seed"),
    Options.optional
  )
} as const

export interface DkimFlags {
  readonly dkimDomain: Option.Option<string>
  readonly dkimSelector: Option.Option<string>
  readonly dkimKeyFile: Option.Option<string>
}

/** The signer the flags ask for, or none; all three flags or none of them. */
export const signer = (
  f: DkimFlags
): Effect.Effect<Option.Option<Dkim.Signer>, CliFailure, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const given = [f.dkimDomain, f.dkimSelector, f.dkimKeyFile].filter(Option.isSome).length
    if (given === 0) return Option.none()
    if (Option.isNone(f.dkimDomain) || Option.isNone(f.dkimSelector) || Option.isNone(f.dkimKeyFile)) {
      return yield* Effect.fail(usage("DKIM signing needs --dkim-domain, --dkim-selector and --dkim-key-file"))
    }
    const path = f.dkimKeyFile.value
    const fs = yield* FileSystem.FileSystem
    const key = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => usage(`--dkim-key-file ${path}: ${describeFileError(e)}`))
    )
    const made = yield* Dkim.signer({
      domain: f.dkimDomain.value,
      selector: f.dkimSelector.value,
      privateKey: Redacted.make(key.trim())
    }).pipe(
      // each reason names what it is about: the key (from the file), the domain, the selector
      Effect.mapError((e) =>
        usage(e.reason.startsWith("DKIM private key") ? `--dkim-key-file ${path}: ${e.reason}` : e.reason)
      )
    )
    return Option.some(made)
  })
