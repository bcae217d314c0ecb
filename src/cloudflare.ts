/**
 * The Cloudflare Workers entry, `effect-smtp/cloudflare`: the transport over `cloudflare:sockets`.
 * It imports that runtime module, so it loads only in Workers (and workerd). The sessions, the
 * `Mailer` and the errors come from the deep paths (`effect-smtp/SmtpClient`, `effect-smtp/Mailer`,
 * `effect-smtp/SmtpError`): the `effect-smtp` barrel also holds the Node transport. The Worker needs
 * the `nodejs_compat` compatibility flag (the message code's libmime imports `node:buffer` and
 * `node:stream`).
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 */
export * as CloudflareSmtpTransport from "./CloudflareSmtpTransport.js"
