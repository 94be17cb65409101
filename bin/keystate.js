#!/usr/bin/env node
// The `keystate` command. The TypeScript sources are compiled to dist/ by `npm run build`.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/host/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error("keystate: dist/ is missing; run `npm run build` in the Keystate checkout first");
  process.exit(1);
}
await import(main.href);
