#!/usr/bin/env bash
# Packs the package, installs the tarball into a fresh project (the peer dependencies from the npm
# registry, at the versions this repository's lockfile has), and type-checks program.ts with
# NodeNext and with bundler resolution, then runs it. Also checks the tarball's contents: the source
# maps' sources are in it, and nothing in it imports a dev dependency. Then runs the effect-smtp command
# through npx (--help, send --dry-run).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/effect-smtp-package.XXXXXX)
trap 'rm -rf "$work"' EXIT

cd "$root"
npm run -s build >/dev/null
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
echo "packed $tarball ($(du -k "$work/$tarball" | cut -f1) KB)"

mkdir -p "$work/unpacked" && tar -xzf "$work/$tarball" -C "$work/unpacked"
node - "$work/unpacked/package" "$root" <<'JS'
const fs = require("node:fs"), path = require("node:path")
const [dir, root] = process.argv.slice(2)
const ts = require(path.join(root, "node_modules/typescript"))
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
const problems = []
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)])
for (const file of walk(dir)) {
  if (file.endsWith(".map")) {
    for (const source of JSON.parse(fs.readFileSync(file, "utf8")).sources) {
      if (!fs.existsSync(path.resolve(path.dirname(file), source))) problems.push(`${file}: missing source ${source}`)
    }
  }
  if (/\.(js|ts)$/.test(file)) {
    for (const { fileName: spec } of ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true).importedFiles) {
      if (spec.startsWith(".")) continue
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]
      if (!spec.startsWith("node:") && !spec.startsWith("cloudflare:") && name !== "effect-smtp" && !allowed.has(name)) {
        problems.push(`${path.relative(dir, file)} imports ${spec}, not a dependency`)
      }
    }
  }
}
if (problems.length > 0) { console.error(problems.join("\n")); process.exit(1) }
console.log("tarball: every source map's sources are shipped; every import is a dependency or peer")
JS

lockVersion() { node -p "require('$root/package-lock.json').packages['node_modules/$1'].version"; }
cd "$work"
npm init -y >/dev/null
npm pkg set type=module
npm install --silent --no-audit --no-fund "./$tarball" \
  "effect@$(lockVersion effect)" "@effect/platform@$(lockVersion @effect/platform)" \
  "@effect/platform-node@$(lockVersion @effect/platform-node)" \
  "typescript@$(lockVersion typescript)" "@types/node@$(lockVersion @types/node)"
cp "$here/program.ts" .
for resolution in nodenext bundler; do
  module=$([ "$resolution" = nodenext ] && echo NodeNext || echo ESNext)
  cat >"tsconfig.$resolution.json" <<JSON
{ "compilerOptions": { "strict": true, "exactOptionalPropertyTypes": true, "target": "ES2022", "lib": ["ES2022"],
  "types": ["node"], "module": "$module", "moduleResolution": "$resolution", "resolveJsonModule": true,
  "skipLibCheck": false, "outDir": "out-$resolution" }, "files": ["program.ts"] }
JSON
  npx tsc -p "tsconfig.$resolution.json"
  echo "type-checked program.ts with moduleResolution $resolution"
done
node --input-type=module -e 'import("effect-smtp").then(() => 0)'  # the root alone loads
node out-nodenext/program.js
# the command: npm links the bin (and sets its executable bit) on install
npx --no-install effect-smtp --help >/dev/null
npx --no-install effect-smtp --version
dry=$(npx --no-install effect-smtp send --dry-run --from a@example.com --to b@example.net --subject "package check" --text hi 2>&1)
grep -q "^Subject: package check" <<<"$dry" || { echo "effect-smtp send --dry-run printed: $dry" >&2; exit 1; }
echo "bin: npx effect-smtp --help and send --dry-run work"
echo "package check: ok"
