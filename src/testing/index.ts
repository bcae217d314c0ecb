/**
 * Test layers for code that sends mail: `ScriptedTransport` plays a scripted server in memory
 * and records every byte the client wrote.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as ScriptedTransport from "./ScriptedTransport.js"
