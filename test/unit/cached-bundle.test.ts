// The loader `keystate serve` starts through (host/cli/cached-bundle.ts): a CommonJS file run
// with V8's code cache. Each run is a process of its own, as a node's start is.
import test from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { codeCacheFile } from "../../host/cli/cached-bundle.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const LOADER = pathToFileURL(join(REPO_ROOT, "dist", "host", "cli", "cached-bundle.js")).href;

/** A bundle whose answer is `value`: CommonJS's five names, the import hook and enough functions for a cache worth the name. */
function bundleSource(value: number): string {
  const helpers = Array.from({ length: 200 }, (_, i) => `function step${i}(x) { return (x * ${i + 3}) % 1000003; }`).join("\n");
  return `"use strict";
const { basename } = require("node:path");
${helpers}
const answer = ${value};
globalThis[Symbol.for("keystate.importEsm")]("node:os").then((os) => {
  process.stdout.write(JSON.stringify({
    answer,
    steps: step0(answer) + step199(answer),
    file: basename(__filename),
    dirIsFilesDir: __filename.startsWith(__dirname),
    exportsAreModules: module.exports === exports,
    imported: typeof os.cpus === "function",
    use: globalThis[Symbol.for("keystate.codeCache")],
  }));
});
`;
}

interface Run {
  answer: number;
  steps: number;
  file: string;
  dirIsFilesDir: boolean;
  exportsAreModules: boolean;
  imported: boolean;
  use: string;
}

function run(dir: string, writeCacheAtExit = false): Run {
  const script = `import { runCachedBundle } from ${JSON.stringify(LOADER)};
const use = runCachedBundle(${JSON.stringify(join(dir, "bundle.cjs"))}, { writeCacheAtExit: ${writeCacheAtExit} });
if (use !== globalThis[Symbol.for("keystate.codeCache")]) throw new Error("the hook and the return value disagree");`;
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })) as Run;
}

const expected = (value: number) => ({
  answer: value,
  steps: ((value * 3) % 1000003) + ((value * 202) % 1000003),
  file: "bundle.cjs",
  dirIsFilesDir: true,
  exportsAreModules: true,
  imported: true,
});

test("a first run compiles and writes the cache at exit; the next runs from it and does the same", async (t) => {
  const dir = await tempDirFor(t, "cached-bundle");
  writeFileSync(join(dir, "bundle.cjs"), bundleSource(4242));
  const first = run(dir, true);
  t.like(first, { ...expected(4242), use: "none" });
  const cache = readFileSync(codeCacheFile(join(dir, "bundle.cjs")));
  t.deepEqual(cache.subarray(0, 32), createHash("sha256").update(readFileSync(join(dir, "bundle.cjs"))).digest(), "the cache starts with its bundle's hash");
  t.true(cache.length > 1024, `V8's data follows: ${cache.length} bytes`);
  t.like(run(dir), { ...expected(4242), use: "used" });
  t.like(run(dir), { ...expected(4242), use: "used" });
});

test("a cache of other code of the same length is not used: the bundle as it is now runs", async (t) => {
  const dir = await tempDirFor(t, "cached-bundle");
  writeFileSync(join(dir, "bundle.cjs"), bundleSource(1111));
  run(dir, true);
  const changed = bundleSource(2222);
  t.is(changed.length, bundleSource(1111).length, "the two bundles have one length, which is all V8 checks");
  writeFileSync(join(dir, "bundle.cjs"), changed);
  t.like(run(dir), { ...expected(2222), use: "rejected" });
});

test("a damaged cache is refused by V8 and the bundle compiles as without one", async (t) => {
  const dir = await tempDirFor(t, "cached-bundle");
  writeFileSync(join(dir, "bundle.cjs"), bundleSource(77));
  run(dir, true);
  const cacheFile = codeCacheFile(join(dir, "bundle.cjs"));
  const cache = readFileSync(cacheFile);
  // The hash still matches; V8's part is garbled past its header, then cut short.
  for (let i = 64; i < cache.length; i += 7) cache[i] ^= 0x5a;
  writeFileSync(cacheFile, cache.subarray(0, Math.floor(cache.length / 2)));
  t.like(run(dir), { ...expected(77), use: "rejected" });
  // And a run that writes replaces it with one V8 takes again.
  run(dir, true);
  t.like(run(dir), { ...expected(77), use: "used" });
});
