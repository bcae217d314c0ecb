/**
 * The Cloudflare Workers entry, `effect-smtp/cloudflare`: the transport over `cloudflare:sockets`.
 * It imports that runtime module, so it loads only in Workers (and workerd); the sessions, the
 * `Mailer` and the errors come from the deep paths (`effect-smtp/SmtpClient`, `effect-smtp/Mailer`,
 * `effect-smtp/SmtpError`), which hold nothing of Node.
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 */
export * as CloudflareSmtpTransport from "./CloudflareSmtpTransport.js"
