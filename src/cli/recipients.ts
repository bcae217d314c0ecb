/**
 * The recipients of `bulk`: a CSV file (a header row, RFC 4180 quoting) or JSONL (one object per
 * line), each row an address (`email`, `to` or `address`) and the fields its template uses; and
 * the template itself (`{{field}}` placeholders).
 *
 * @internal
 */
import * as Either from "effect/Either"

/** One recipient: its position in the file (from 0), its address, and every field as text. */
export interface Recipient {
  readonly index: number
  /** The line it starts on, for messages (from 1). */
  readonly line: number
  readonly address: string
  readonly fields: Readonly<Record<string, string>>
}

const addressKeys = ["email", "to", "address"]

/** RFC 4180 rows: quoted fields may hold commas, quotes (doubled) and line breaks. */
const csvRows = (text: string): Either.Either<Array<{ line: number; cells: Array<string> }>, string> => {
  const rows: Array<{ line: number; cells: Array<string> }> = []
  let cells: Array<string> = []
  let cell = ""
  let quoted = false
  let line = 1
  let rowLine = 1
  let fieldStart = true
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === "\"") {
        if (text[i + 1] === "\"") {
          cell += "\""
          i++
        } else quoted = false
      } else {
        if (c === "\n") line++
        cell += c
      }
      continue
    }
    if (c === "\"" && fieldStart) {
      quoted = true
      fieldStart = false
    } else if (c === ",") {
      cells.push(cell)
      cell = ""
      fieldStart = true
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++
      cells.push(cell)
      if (!(cells.length === 1 && cells[0] === "")) rows.push({ line: rowLine, cells })
      cells = []
      cell = ""
      fieldStart = true
      line++
      rowLine = line
    } else {
      cell += c
      fieldStart = false
    }
  }
  if (quoted) return Either.left(`line ${rowLine}: a quoted field is not closed`)
  cells.push(cell)
  if (!(cells.length === 1 && cells[0] === "")) rows.push({ line: rowLine, cells })
  return Either.right(rows)
}

const findAddressKey = (keys: ReadonlyArray<string>): string | undefined =>
  keys.find((k) => addressKeys.includes(k.trim().toLowerCase()))

/** Parses a CSV file's text. */
/**
 * A recipient's fields: an object without a prototype, so that a placeholder such as
 * `{{constructor}}` or `{{toString}}` is a field the file has or none (never Object's method), and a
 * column named `__proto__` is a field like any other.
 */
const noPrototype = (): Record<string, string> => Object.create(null)

export const parseCsv = (text: string): Either.Either<Array<Recipient>, string> =>
  Either.flatMap(csvRows(text.replace(/^\uFEFF/, "")), (rows) => {
    const [head, ...body] = rows
    if (head === undefined) return Either.left("the file is empty")
    const names = head.cells.map((c) => c.trim())
    const key = findAddressKey(names)
    if (key === undefined) return Either.left(`no address column: name one "email", "to" or "address"`)
    const recipients: Array<Recipient> = []
    for (const row of body) {
      if (row.cells.length !== names.length) {
        return Either.left(`line ${row.line}: ${row.cells.length} fields, the header has ${names.length}`)
      }
      const fields = noPrototype()
      names.forEach((name, i) => {
        fields[name] = row.cells[i]!
      })
      recipients.push({ index: recipients.length, line: row.line, address: fields[key]!.trim(), fields })
    }
    return Either.right(recipients)
  })

/** Parses a JSONL file's text: one object per line; values that are not strings become JSON text. */
export const parseJsonl = (text: string): Either.Either<Array<Recipient>, string> => {
  const recipients: Array<Recipient> = []
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const source = lines[i]!.trim()
    if (source === "") continue
    let value: unknown
    try {
      value = JSON.parse(source)
    } catch {
      return Either.left(`line ${i + 1}: not JSON`)
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return Either.left(`line ${i + 1}: not a JSON object`)
    }
    const fields = noPrototype()
    // null is no value (an empty field, as in a CSV); numbers, booleans, objects their JSON text
    for (const [k, v] of Object.entries(value)) {
      fields[k] = typeof v === "string"
        ? v
        : v === null
        ? ""
        : JSON.stringify(v)
    }
    const key = findAddressKey(Object.keys(fields))
    if (key === undefined) return Either.left(`line ${i + 1}: no "email", "to" or "address"`)
    recipients.push({ index: recipients.length, line: i + 1, address: fields[key]!.trim(), fields })
  }
  return Either.right(recipients)
}

const placeholder = /\{\{\s*([^{}\s]+)\s*\}\}/g

/** The fields a template text uses. */
export const placeholders = (template: string): Array<string> =>
  Array.from(template.matchAll(placeholder), (m) => m[1]!)

const escapeHtml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Fills a template's placeholders from a recipient's fields (HTML-escaped for an HTML body). */
export const fill = (template: string, fields: Readonly<Record<string, string>>, html = false): string =>
  template.replace(placeholder, (_, name: string) => {
    const value = fields[name] ?? ""
    return html ? escapeHtml(value) : value
  })
