// `npm run build` step: bundles the compiled CLI (dist/host/cli/main.js) with its pure
// JavaScript dependencies into a few ESM files in dist/bundle/, which bin/keystate.js runs.
//
// Why: a node's start was mostly Node's module loader. Unbundled, `keystate serve` opened
// ~350 files (158 of dist/, 63 of @opentelemetry/api through prom-client, 55 of protobufjs)
// and resolved, read and compiled each one; bundled it opens about twenty. Same run,
// spawned → "node started", p50 of 10: 465-488 ms unbundled, 310-317 ms bundled.
//
// esbuild is made for this (and is already what tsx runs on). The bundle is built from
// tsc's output, not the sources, so it runs exactly the JavaScript the type-checked build
// produced. Dynamic imports stay lazy: each becomes a chunk of its own (code splitting), so
// Redis, the cluster and `keystate build` still load only when used.
import { build } from "esbuild";
import { copyFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = join(ROOT, "dist", "bundle");

/**
 * Packages left as imports of node_modules: native addons (lmdb and its msgpackr, which
 * load prebuilt binaries from their own directories), the toolchains only `keystate build`
 * and component deploys load (large, with files of their own), and grpc-js, which only the
 * CLI's client verbs use.
 */
const EXTERNAL = [
  "lmdb",
  "msgpackr",
  "@grpc/grpc-js",
  "@bytecodealliance/*",
  "@bufbuild/*",
  "binaryen",
  "assemblyscript",
  "assemblyscript/*",
];

rmSync(OUT_DIR, { recursive: true, force: true });
await build({
  entryPoints: { keystate: join(ROOT, "dist", "host", "cli", "main.js") },
  outdir: OUT_DIR,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: EXTERNAL,
  // CommonJS dependencies inside an ESM bundle call require() (protobufjs also looks up
  // optional modules such as "long" through it at run time): give each chunk a real one.
  banner: { js: 'import { createRequire as __keystateCreateRequire } from "node:module"; const require = __keystateCreateRequire(import.meta.url);' },
  sourcemap: "linked",
  logLevel: "warning",
});
// proto-root.ts looks for the precompiled Root next to the code that runs (see PRECOMPILED_ROOT_FILE).
copyFileSync(join(ROOT, "dist", "host", "proto", "keystate-root.json"), join(OUT_DIR, "keystate-root.json"));
