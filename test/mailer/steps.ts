/** Scripted-server steps shared by the Mailer tests. */

/** EHLO answered with PIPELINING. */
export const EHLO = { expect: "EHLO client.test", reply: "250-mx.test\r\n250 PIPELINING" }
export const QUIT = { expect: "QUIT", reply: "221 bye" }
/** One accepted transaction of `from` → b@x.test with the message "hi". */
export const accepted = (from = "a@x.test") => [
  { expect: `MAIL FROM:<${from}>`, reply: "250 ok" },
  { expect: "RCPT TO:<b@x.test>", reply: "250 ok" },
  { expect: "DATA", reply: "354 go" },
  { expect: "hi\r\n.\r\n", reply: "250 queued" }
]
