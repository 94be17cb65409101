#!/usr/bin/env node
// The `keystate` command. `npm run build` compiles the TypeScript sources to dist/ and
// bundles the CLI (scripts/bundle-node.ts) twice: as ES modules split by command in
// dist/bundle/ (each verb loads only what it uses), and as one CommonJS file that `serve`
// runs through V8's code cache (dist/bundle/serve.cjs; host/cli/cached-bundle.ts says why).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/bundle/keystate.js", import.meta.url);
const serveBundle = fileURLToPath(new URL("../dist/bundle/serve.cjs", import.meta.url));
if (!existsSync(fileURLToPath(main)) || !existsSync(serveBundle)) {
  console.error("keystate: dist/bundle/ is missing; run `npm run build` in the Keystate checkout first");
  process.exit(1);
}
if (process.argv[2] === "serve") {
  const { runCachedBundle } = await import("../dist/host/cli/cached-bundle.js");
  // KEYSTATE_WRITE_CODE_CACHE=1: the build's training start, which writes the cache at exit.
  runCachedBundle(serveBundle, { writeCacheAtExit: process.env.KEYSTATE_WRITE_CODE_CACHE === "1" });
} else {
  await import(main.href);
}
