/**
 * Test layers for code that sends mail, all in memory and platform-neutral:
 *
 * - `TestMailer`: provides `Mailer` and records every message, with assertions;
 * - `TestTransport`: a permissive SMTP server behind `SmtpTransport`, for `SmtpClient` code;
 * - `TestServer`: that server's options (refusals, replies at any stage) and captures;
 * - `ScriptedTransport`: plays a scripted conversation and records every byte.
 *
 * A real server on loopback (STARTTLS, AUTH) is `TestSmtpServer`, in `effect-smtp/testing/node`.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as ScriptedTransport from "./ScriptedTransport.js"

/**
 * @since 0.2.0
 */
export * as TestServer from "./TestServer.js"

/**
 * @since 0.2.0
 */
export * as TestTransport from "./TestTransport.js"

/**
 * @since 0.2.0
 */
export * as TestMailer from "./TestMailer.js"
