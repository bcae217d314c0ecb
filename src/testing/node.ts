/**
 * The Node.js test entry: `TestSmtpServer`, a real SMTP server on loopback (`node:net`, with
 * STARTTLS under a generated certificate and AUTH) that captures what it receives. The in-memory
 * layers are in `effect-smtp/testing`.
 *
 * ```ts
 * import { TestSmtpServer } from "effect-smtp/testing/node"
 * ```
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 */
export * as TestSmtpServer from "./TestSmtpServer.js"
