#!/usr/bin/env node
// The `keystate` command. `npm run build` compiles the TypeScript sources to dist/ and
// bundles the CLI into dist/bundle/ (scripts/bundle-node.ts): one bundle starts a node in
// about two thirds of the time the ~350 files it replaces took to load.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/bundle/keystate.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error("keystate: dist/bundle/ is missing; run `npm run build` in the Keystate checkout first");
  process.exit(1);
}
await import(main.href);
