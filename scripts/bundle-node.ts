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
//
// `keystate serve` runs a second build of the same CLI: one CommonJS file (serve.cjs) that
// bin/keystate.js compiles through V8's code cache (host/cli/cached-bundle.ts says why), and
// this step starts a node once through it to write that cache (serve.cjs.v8-cache).
import { build } from "esbuild";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { codeCacheFile } from "../host/cli/cached-bundle.js";

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

/** What every bundle here shares. */
const NODE_BUNDLE = { bundle: true, platform: "node", target: "node20", logLevel: "warning" } as const;
const CLI_ENTRY = join(ROOT, "dist", "host", "cli", "main.js");
const SERVE_BUNDLE = join(OUT_DIR, "serve.cjs");

rmSync(OUT_DIR, { recursive: true, force: true });
await build({
  ...NODE_BUNDLE,
  entryPoints: { keystate: CLI_ENTRY },
  outdir: OUT_DIR,
  splitting: true,
  format: "esm",
  external: EXTERNAL,
  // CommonJS dependencies inside an ESM bundle call require() (protobufjs also looks up
  // optional modules such as "long" through it at run time): give each chunk a real one.
  banner: { js: 'import { createRequire as __keystateCreateRequire } from "node:module"; const require = __keystateCreateRequire(import.meta.url);' },
  sourcemap: "linked",
});
// proto-root.ts looks for the precompiled Root next to the code that runs (see PRECOMPILED_ROOT_FILE).
copyFileSync(join(ROOT, "dist", "host", "proto", "keystate-root.json"), join(OUT_DIR, "keystate-root.json"));

// The CommonJS build for `keystate serve`. One file: esbuild splits only ES modules, so the
// lazily imported parts (the cluster, the build) are in it, evaluated only when used; ioredis,
// ~0.45 MB that only `--redis` needs, is a file of its own that the bundle requires then.
const IOREDIS_FILE = "ioredis.cjs";
await build({
  ...NODE_BUNDLE,
  entryPoints: [join(ROOT, "node_modules", "ioredis", "built", "index.js")],
  outfile: join(OUT_DIR, IOREDIS_FILE),
  format: "cjs",
});
await build({
  ...NODE_BUNDLE,
  entryPoints: [CLI_ENTRY],
  outfile: SERVE_BUNDLE,
  format: "cjs",
  external: EXTERNAL,
  plugins: [{ name: "ioredis-own-file", setup: (b) => b.onResolve({ filter: /^ioredis$/ }, () => ({ path: `./${IOREDIS_FILE}`, external: true })) }],
  // The sources are ES modules (strict, with import.meta.url to find files next to the code).
  define: { "import.meta.url": "__keystateImportMetaUrl" },
  banner: { js: '"use strict"; const __keystateImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  sourcemap: "linked",
});
await writeCodeCache();

/**
 * Starts a node once through bin/keystate.js with KEYSTATE_WRITE_CODE_CACHE=1 on an empty
 * store and stops it once it has started: at exit it writes what V8 compiled for that start.
 */
async function writeCodeCache(): Promise<void> {
  const cacheFile = codeCacheFile(SERVE_BUNDLE);
  const dataDir = mkdtempSync(join(tmpdir(), "keystate-code-cache-"));
  // The user's KEYSTATE_* settings (a Redis URL, ports) are not this start's.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("KEYSTATE_")));
  const args = [join(ROOT, "bin", "keystate.js"), "serve", "--data", dataDir, "--grpc-port", "0", "--http-port", "0"];
  const child = spawn(process.execPath, args, { env: { ...env, KEYSTATE_WRITE_CODE_CACHE: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    // The banner comes after the "node started" line, once SIGTERM stops the node gracefully.
    if (output.includes("Keystate node ready")) child.kill("SIGTERM");
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const code = await exited;
  clearTimeout(timer);
  rmSync(dataDir, { recursive: true, force: true });
  if (code !== 0 || !existsSync(cacheFile)) {
    throw new Error(`the training start for serve.cjs's code cache failed (exit ${code}); its output:\n${output}`);
  }
  process.stdout.write(`${cacheFile}: ${statSync(cacheFile).size} bytes\n`);
}
