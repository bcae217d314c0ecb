// A meeting invitation with the agenda attached from a file, sent to a group, with the fields a
// bulk sender needs (README recipe).
import { NodeFileSystem } from "@effect/platform-node"
import { Effect } from "effect"
import { Mailer, Message } from "effect-smtp"

/** An iCalendar REQUEST (RFC 5545): the METHOD line gives the invitation's method. */
const invitation = (uid: string, start: string, end: string) =>
  [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//Example Corp//Planner//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${uid}`,
    `DTSTAMP:${start}`,
    `DTSTART:${start}`,
    `DTEND:${end}`,
    "SUMMARY:Quarterly review",
    "ORGANIZER;CN=Ann:mailto:ann@example.com",
    "ATTENDEE;RSVP=TRUE;CN=Bob:mailto:bob@example.com",
    "ATTENDEE;RSVP=TRUE;CN=Carl:mailto:carl@example.com",
    "END:VEVENT",
    "END:VCALENDAR"
  ].join("\r\n")

export const inviteToReview = (agendaPath: string) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    // checked now (a missing file fails here), streamed with fs.stream when the message is sent
    const agenda = yield* Message.attachmentFromPath(agendaPath, { filename: "agenda.pdf" })
    const message = yield* Message.make({
      from: "Ann <ann@example.com>",
      // a group: the members receive it, the header shows them under the group's name
      to: { group: "Review team", members: ["bob@example.com", "Carl <carl@example.com>"] },
      subject: "Invitation: Quarterly review",
      text: "Quarterly review, Monday 9:00-10:00. The agenda is attached.",
      html: "<p>Quarterly review, <b>Monday 9:00-10:00</b>. The agenda is attached.</p>",
      // text/calendar; method=REQUEST in multipart/alternative, and invite.ics as an attachment
      icalEvent: invitation("review-2026-q2@example.com", "20260601T090000Z", "20260601T100000Z"),
      attachments: [agenda],
      list: {
        id: { id: "reviews.example.com", name: "Review invitations" },
        // Gmail and Yahoo require one-click unsubscribe (RFC 8058) from bulk senders
        unsubscribe: {
          url: "https://example.com/unsubscribe?list=reviews",
          mailto: "unsubscribe@example.com",
          oneClick: true
        }
      }
    })
    return yield* mailer.sendMessage(message)
  }).pipe(Effect.provide(NodeFileSystem.layer))

// a reply to a message read back (Message.parse / parseStream): To, "Re: " subject, In-Reply-To, References
export const acceptInvitation = (original: Message.Message) =>
  Effect.gen(function*() {
    const mailer = yield* Mailer.Mailer
    const fields = yield* Message.reply(original)
    const answer = yield* Message.make({ ...fields, from: "bob@example.com", text: "I will be there." })
    return yield* mailer.sendMessage(answer)
  })
