/**
 * @since 0.1.0
 */

/**
 * @since 0.2.0
 */
export * as Dkim from "./Dkim.js"

/**
 * @since 0.1.0
 */
export * as LmtpConnection from "./LmtpConnection.js"

/**
 * @since 0.1.0
 */
export * as Mailer from "./Mailer.js"

/**
 * @since 0.1.0
 */
export * as Message from "./Message.js"

/**
 * @since 0.1.0
 */
export * as SmtpAuth from "./SmtpAuth.js"

/**
 * @since 0.1.0
 */
export * as SmtpClient from "./SmtpClient.js"

/**
 * @since 0.1.0
 */
export * as SmtpConnection from "./SmtpConnection.js"

/**
 * @since 0.1.0
 */
export * as SmtpError from "./SmtpError.js"

/**
 * @since 0.1.0
 */
export * as SmtpReply from "./SmtpReply.js"

/**
 * @since 0.1.0
 */
export * as SmtpTransport from "./SmtpTransport.js"
