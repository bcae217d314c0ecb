import * as Path from "node:path"
import { defineConfig } from "vitest/config"

const src = (p: string) => Path.join(__dirname, "src", p)

export default defineConfig({
  resolve: {
    alias: [
      { find: /^effect-smtp$/, replacement: src("index.ts") },
      { find: /^effect-smtp\/testing$/, replacement: src("testing/index.ts") },
      { find: /^effect-smtp\/outbox$/, replacement: src("outbox/index.ts") },
      { find: /^effect-smtp\/(.*)$/, replacement: src("$1.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    // global.gc for the tests that check what becomes garbage (test/mailer/memory.test.ts)
    poolOptions: { forks: { execArgv: ["--expose-gc"] } },
    hookTimeout: 60_000
  }
})
