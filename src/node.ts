/**
 * The Node.js entry: the transport over `node:net` and `node:tls`. The root entry is
 * platform-neutral; a Node program provides this transport's layer.
 *
 * ```ts
 * import { SmtpClient } from "effect-smtp"
 * import { NodeSmtpTransport } from "effect-smtp/node"
 * ```
 *
 * @since 0.2.0
 */

/**
 * @since 0.1.0
 */
export * as NodeSmtpTransport from "./NodeSmtpTransport.js"

/**
 * @since 0.2.0
 */
export * as NodeSmtpProxy from "./NodeSmtpProxy.js"
