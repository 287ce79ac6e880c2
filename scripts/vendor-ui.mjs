// Copies the pinned nhsuk-frontend build (from node_modules) into ui/vendor/, which Tauri embeds.
// Run by the README's set-up commands (`npm ci` then `npm run vendor`); ui/vendor/ is not committed.
import { cpSync, mkdirSync, existsSync, rmSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const pkg = require(join(root, "node_modules", "nhsuk-frontend", "package.json"));
const dist = join(root, "node_modules", "nhsuk-frontend", "dist", "nhsuk");
if (!existsSync(dist)) {
  console.error("nhsuk-frontend is not installed: run `npm ci` first");
  process.exit(1);
}
const out = join(root, "ui", "vendor", "nhsuk");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(dist, `nhsuk-frontend-${pkg.version}.min.css`), join(out, "nhsuk-frontend.min.css"));
cpSync(join(dist, `nhsuk-frontend-${pkg.version}.min.js`), join(out, "nhsuk-frontend.min.js"));
cpSync(join(dist, "assets"), join(out, "assets"), { recursive: true });
console.log(`vendored nhsuk-frontend ${pkg.version} into ui/vendor/nhsuk`);
