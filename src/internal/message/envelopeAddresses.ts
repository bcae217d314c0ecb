/**
 * The envelope addresses of an address-list header, as smtplib's `send_message` takes them from
 * `email.utils.getaddresses` (then `quoteaddr`): RFC 5322 address lists with the obsolete and
 * lax forms mail really carries, and nothing that cannot be an address.
 *
 * Accepted, as smtplib: an address without a domain (`root`: cron mail to a local MTA), display
 * names (`Cron Daemon <root>`, quoted, with dots, RFC 2047 words), comments anywhere, groups
 * (flattened; an empty group gives no address; `g: a; h: b;` without a comma too), quoted local
 * parts (`"a b"@x`), domain literals, the odd dots some real local parts have (`a..b@x`), UTF-8
 * (RFC 6532), empty list elements.
 * A source route (`<@relay:a@b>`) is dropped (RFC 5321 §4.1.2 lets a server ignore it).
 *
 * Refused, where getaddresses guesses: words with no address (`Foo Bar`: smtplib sends `Foo`),
 * several words as one address (`John Smith john@x`), `<>` or an empty quoted string, anything
 * after an address but a separator, `;` outside a group, a group inside a group, a domain with an
 * empty label, unterminated quotes, comments and literals, control characters.
 *
 * An address without a domain is sent the way smtplib ends up sending it: a quoted local part
 * unquoted when it does not need the quotes (`"root"` is `root`); one that does keeps them
 * (`"a b"`, where smtplib would send the first word only). An address with a domain keeps its
 * local part as written, less comments and blanks (as getaddresses).
 *
 * @internal
 */
import * as Either from "effect/Either"
import { SmtpInvalidInput } from "../../SmtpError.js"

type Word = { readonly kind: "atom" | "quoted"; readonly text: string } | "."

type Token =
  | { readonly kind: "atom" | "quoted" | "literal"; readonly text: string }
  | { readonly kind: "special"; readonly text: "<" | ">" | "@" | "," | ";" | ":" | "." }
  | { readonly kind: "end" }

/** Why the header is refused; never the header's text. */
class Refusal {
  constructor(readonly why: string) {}
}

const END: Token = { kind: "end" }
const ATOM_ENDS = new Set([" ", "\t", "(", ")", "<", ">", "@", ",", ";", ":", "\\", "\"", ".", "[", "]"])
const isControl = (c: number) => (c < 0x20 && c !== 0x09) || c === 0x7f
/** Atom characters and dots, not dots alone: a local part that needs no quotes. */
const needsNoQuotes = (local: string) => /^[^\x00-\x20\x7f()<>@,;:\\"[\]]+$/.test(local) && /[^.]/.test(local)
const quote = (text: string) => `"${text.replace(/[\\"]/g, "\\$&")}"`

const scanner = (input: string) => {
  let pos = 0
  let ahead: Token | undefined

  const delimited = (close: string, what: string, keepEscapes: boolean): string => {
    let out = ""
    pos++
    while (pos < input.length) {
      const c = input[pos]
      if (c === close) {
        pos++
        return out
      }
      if (c === "\\" && pos + 1 < input.length) {
        if (isControl(input.charCodeAt(pos + 1))) throw new Refusal("a control character")
        out += keepEscapes ? input.slice(pos, pos + 2) : input[pos + 1]
        pos += 2
        continue
      }
      if (isControl(c.charCodeAt(0))) throw new Refusal("a control character")
      if (close === "]" && c === "[") throw new Refusal("a \"[\" inside a domain literal")
      out += c
      pos++
    }
    throw new Refusal(`an unterminated ${what}`)
  }

  const skipComment = () => {
    let depth = 0
    while (pos < input.length) {
      const c = input[pos]
      if (c === "\\") pos += 2
      else {
        if (c === "(") depth++
        else if (c === ")" && --depth === 0) {
          pos++
          return
        } else if (isControl(c.charCodeAt(0))) throw new Refusal("a control character")
        pos++
      }
    }
    throw new Refusal("an unterminated comment")
  }

  const scan = (): Token => {
    for (;;) {
      if (pos >= input.length) return END
      const c = input[pos]
      if (c === " " || c === "\t") pos++
      else if (c === "(") skipComment()
      else break
    }
    const c = input[pos]
    if (isControl(c.charCodeAt(0))) throw new Refusal("a control character")
    switch (c) {
      case "\"":
        return { kind: "quoted", text: delimited("\"", "quoted string", false) }
      case "[":
        return { kind: "literal", text: delimited("]", "domain literal", true) }
      case "<":
      case ">":
      case "@":
      case ",":
      case ";":
      case ":":
      case ".":
        pos++
        return { kind: "special", text: c }
      case ")":
      case "]":
      case "\\":
        throw new Refusal(`a stray "${c}"`)
    }
    const start = pos
    while (pos < input.length && !ATOM_ENDS.has(input[pos]) && !isControl(input.charCodeAt(pos))) pos++
    return { kind: "atom", text: input.slice(start, pos) }
  }

  return {
    peek: (): Token => (ahead ??= scan()),
    next: (): Token => {
      const t = ahead ?? scan()
      ahead = undefined
      return t
    }
  }
}

const isSpecial = (t: Token, text: string) => t.kind === "special" && t.text === text

/**
 * The envelope addresses of one address-list header value (unfolded), in order; an empty value
 * or an empty group gives none. `field` names the header in the refusal, with the position of the
 * address (counting every list element, group members included).
 *
 * @internal
 */
export const parseEnvelopeAddresses = (
  value: string,
  field: string
): Either.Either<Array<string>, SmtpInvalidInput> => {
  // the value is unfolded: a CR or LF in it is refused as a control character
  const tokens = scanner(value)
  const out: Array<string> = []
  let index = 0

  const words = (): Array<Word> => {
    const items: Array<Word> = []
    for (;;) {
      const t = tokens.peek()
      if (t.kind === "atom" || t.kind === "quoted") items.push({ kind: t.kind, text: t.text })
      else if (isSpecial(t, ".")) items.push(".")
      else return items
      tokens.next()
    }
  }

  /** The local part as written (quoted strings in canonical form); refused unless one dotted word. */
  const localPart = (items: ReadonlyArray<Word>, several: string): string => {
    let previous: Word | undefined
    let any = false
    for (const item of items) {
      if (item !== ".") {
        if (previous !== undefined && previous !== ".") throw new Refusal(several)
        any = true
      }
      previous = item
    }
    if (!any) throw new Refusal("no address")
    return items.map((w) => (w === "." ? "." : w.kind === "quoted" ? quote(w.text) : w.text)).join("")
  }

  /** An address without a domain: unquoted when it can be (smtplib's re-parse unquotes it). */
  const bareAddress = (items: ReadonlyArray<Word>, several: string): string => {
    const written = localPart(items, several)
    const value = items.map((w) => (w === "." ? "." : w.text)).join("")
    if (value === "") throw new Refusal("an empty address")
    return needsNoQuotes(value) ? value : written
  }

  const domain = (): string => {
    const first = tokens.next()
    if (first.kind === "literal") return `[${first.text}]`
    if (first.kind !== "atom") throw new Refusal("no domain after \"@\"")
    const labels = [first.text]
    while (isSpecial(tokens.peek(), ".")) {
      tokens.next()
      const label = tokens.next()
      if (label.kind !== "atom") throw new Refusal("a domain with an empty label")
      labels.push(label.text)
    }
    return labels.join(".")
  }

  /** After `<`: [route] addr-spec `>`. */
  const angle = (): string => {
    const first = tokens.peek()
    if (isSpecial(first, ">")) throw new Refusal("an empty address (<>)")
    if (isSpecial(first, "@")) {
      // obsolete source route: @relay,@relay:
      for (;;) {
        tokens.next()
        domain()
        const t = tokens.next()
        if (isSpecial(t, ":")) break
        if (!isSpecial(t, ",")) throw new Refusal("a malformed source route")
        while (isSpecial(tokens.peek(), ",")) tokens.next()
        if (!isSpecial(tokens.peek(), "@")) throw new Refusal("a malformed source route")
      }
    }
    const items = words()
    if (items.length === 0) throw new Refusal("no address between \"<\" and \">\"")
    let address: string
    if (isSpecial(tokens.peek(), "@")) {
      tokens.next()
      const local = localPart(items, "several words before \"@\"")
      address = `${local}@${domain()}`
    } else {
      address = bareAddress(items, "several words between \"<\" and \">\"")
    }
    if (!isSpecial(tokens.next(), ">")) throw new Refusal("no \">\" closing the address")
    return address
  }

  /** One list element: nothing, a mailbox, or (outside a group) a group; true after a group. */
  const element = (inGroup: boolean): boolean => {
    index++
    const items = words()
    const t = tokens.peek()
    if (isSpecial(t, "<")) {
      tokens.next()
      out.push(angle())
      return false
    }
    if (isSpecial(t, "@")) {
      tokens.next()
      const local = localPart(items, "several words before \"@\"")
      out.push(`${local}@${domain()}`)
      return false
    }
    if (isSpecial(t, ":")) {
      if (inGroup) throw new Refusal("a group inside a group")
      tokens.next()
      // a group is not an address: its members are counted
      index--
      for (;;) {
        const u = tokens.peek()
        if (u.kind === "end") return true
        if (isSpecial(u, ";")) {
          tokens.next()
          return true
        }
        element(true)
        const v = tokens.peek()
        if (isSpecial(v, ",")) tokens.next()
        else if (!isSpecial(v, ";") && v.kind !== "end") throw new Refusal("something after the address")
      }
    }
    if (t.kind === "end" || isSpecial(t, ",") || (inGroup && isSpecial(t, ";"))) {
      if (items.length > 0) out.push(bareAddress(items, "several words and no address"))
      return false
    }
    if (isSpecial(t, ";")) throw new Refusal("a \";\" outside a group (addresses are separated by \",\")")
    throw new Refusal(items.length === 0 ? "no address" : "something after the address")
  }

  try {
    for (;;) {
      const group = element(false)
      // getaddresses takes `g: a; h: b;` without the comma between the groups
      if (group && tokens.peek().kind !== "end" && !isSpecial(tokens.peek(), ",")) continue
      const t = tokens.next()
      if (t.kind === "end") return Either.right(out)
      if (isSpecial(t, ";")) throw new Refusal("a \";\" outside a group (addresses are separated by \",\")")
      if (!isSpecial(t, ",")) throw new Refusal("something after the address")
    }
  } catch (e) {
    if (!(e instanceof Refusal)) throw e
    return Either.left(
      new SmtpInvalidInput({ reason: `The ${field} header is not a valid address list (address ${index}: ${e.why})` })
    )
  }
}
