import * as effectEslint from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default [
  { ignores: ["**/dist", "**/node_modules", "**/build", "coverage", ".ci/out"] },
  ...tseslint.configs.recommended,
  ...effectEslint.configs.dprint,
  {
    rules: {
      "no-fallthrough": "off",
      "no-irregular-whitespace": "off",
      "object-shorthand": "error",
      "prefer-destructuring": "off",
      "no-unused-vars": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/ban-types": "off",
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-empty-interface": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/consistent-type-imports": "warn",
      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    files: ["src/**/*.ts"],
    // the Node entries (effect-smtp/node, effect-smtp/testing/node), the Workers one (effect-smtp/cloudflare)
    // and the command (bin effect-smtp, Node only)
    ignores: [
      "src/cli/**",
      "src/Node*.ts",
      "src/internal/node*.ts",
      "src/testing/node.ts",
      "src/testing/TestSmtpServer.ts",
      "src/Cloudflare*.ts"
    ],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["node:*"], message: "only Node* modules import node:*" },
          { group: ["cloudflare:*"], message: "only Cloudflare* modules import cloudflare:*" }
        ]
      }],
      "no-console": "error"
    }
  },
  {
    files: ["src/Cloudflare*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ["node:*"], message: "the Workers transport imports no node:*" }]
      }],
      "no-console": "error"
    }
  }
]
