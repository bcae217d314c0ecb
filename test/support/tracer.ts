/** A tracer for tests that records every span: its name, parent, kind, attributes, events and exit. */
import { type Exit, Option, Tracer } from "effect"

export interface RecordedSpan {
  readonly name: string
  /** The parent span's name (undefined at the root or under an external span). */
  readonly parent: string | undefined
  readonly kind: Tracer.SpanKind
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ readonly eventName: string; readonly attributes: unknown }>
  exit: Exit.Exit<unknown, unknown> | undefined
}

/** A tracer and the spans it has recorded, in the order they started. */
export const recordingTracer = (): { readonly tracer: Tracer.Tracer; readonly spans: Array<RecordedSpan> } => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const recorded: RecordedSpan = {
        name,
        parent: Option.isSome(parent) && parent.value._tag === "Span" ? parent.value.name : undefined,
        kind,
        attributes: new Map(),
        events: [],
        exit: undefined
      }
      spans.push(recorded)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      return {
        _tag: "Span",
        name,
        spanId: `span-${spans.length}`,
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end(endTime, exit) {
          status = { _tag: "Ended", startTime, endTime, exit }
          recorded.exit = exit
        },
        attribute(key, value) {
          recorded.attributes.set(key, value)
        },
        event(eventName, _startTime, attributes) {
          recorded.events.push({ eventName, attributes })
        },
        addLinks() {}
      }
    },
    context: (f) => f()
  })
  return { tracer, spans }
}
