/**
 * Setup file of vitest.bun.config.ts: a test file run by that config in anything but Bun fails
 * here, before its tests, instead of passing under Node unnoticed.
 */
if (process.versions.bun === undefined) {
  throw new Error(`vitest.bun.config.ts: this worker is not Bun (${process.execPath}, node ${process.version})`)
}
