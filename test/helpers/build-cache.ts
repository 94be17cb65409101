// Module builds for tests, cached. A test file that needs a fixture built used to run
// `keystate build` itself (3-5 s each: asc, binaryen, pre-initialisation), and ~30 of them
// built the same dozen modules again. A build is now kept in the OS temp dir under a hash of
// everything that goes into it and reused while none of that changed, so a run builds each
// module once, and the AssemblyScript ones together in one process (warmDefaultBuilds).
// Tests of the build itself still run the builder directly.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { promisify } from "node:util";
import { moduleLanguage, readModuleConfig } from "../../host/build/module-config.js";
import { KEYSTATE_BIN, REPO_ROOT } from "./node-process.js";

const run = promisify(execFile);
const CACHE_DIR = join(tmpdir(), "keystate-test-builds");

/** Every file under `dir` (sorted), leaving out build outputs and installed packages. */
export async function filesUnder(dir: string, skip: readonly string[] = ["build", "node_modules"]): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (skip.includes(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path, skip)));
    else out.push(path);
  }
  return out.sort();
}

/** A hash of the files' paths (relative to `root`) and contents. */
export async function hashFiles(hash: ReturnType<typeof createHash>, files: readonly string[], root: string): Promise<void> {
  for (const file of files) {
    hash.update(relative(root, file)).update("\0");
    hash.update(await readFile(file));
  }
}

function cachePath(label: string, key: string): string {
  return join(CACHE_DIR, `${label.replaceAll("/", "_")}-${key}.wasm`);
}

/**
 * The file `build` writes, kept in the cache as `<label>-<key>.wasm`: built once per key,
 * then reused. A concurrent reader never sees half a file (written aside, then renamed).
 */
export async function cachedArtifact(label: string, key: string, build: (out: string) => Promise<void>): Promise<string> {
  const target = cachePath(label, key);
  if (existsSync(target)) return target;
  await mkdir(CACHE_DIR, { recursive: true });
  await writeAside(target, build);
  return target;
}

/** `write` makes the file under another name, then it is renamed to `target`. */
async function writeAside(target: string, write: (partial: string) => Promise<void>): Promise<void> {
  const partial = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
  await write(partial);
  await rename(partial, target);
}

let builderHash: Promise<string> | undefined;

/**
 * What every `keystate build` depends on besides the module: the bundled CLI that builds
 * (host/build, bundled into dist/bundle), both guest SDKs, Keystate's own protos and the
 * installed packages (asc, binaryen, buf and componentize-js by their locked versions).
 */
function builder(): Promise<string> {
  builderHash ??= (async () => {
    const hash = createHash("sha256");
    const bundle = (await readdir(join(REPO_ROOT, "dist", "bundle"))).filter((name) => name.endsWith(".js")).sort();
    await hashFiles(hash, bundle.map((name) => join(REPO_ROOT, "dist", "bundle", name)), REPO_ROOT);
    for (const dir of ["guest-sdk", "guest-sdk-c", "proto"]) await hashFiles(hash, await filesUnder(join(REPO_ROOT, dir)), REPO_ROOT);
    await hashFiles(hash, [join(REPO_ROOT, "package-lock.json")], REPO_ROOT);
    return hash.digest("hex");
  })();
  return builderHash;
}

let clangVersion: Promise<string> | undefined;

/** The C compiler's own `--version` (a C module's build depends on the clang installed; KEYSTATE_CLANG as the build reads it). */
function cToolchain(): Promise<string> {
  clangVersion ??= run(process.env.KEYSTATE_CLANG ?? "clang-14", ["--version"]).then(
    (out) => out.stdout,
    () => "no clang-14", // the build itself will fail and say what to install
  );
  return clangVersion;
}

/**
 * `keystate build <moduleDir> [args]` (the real CLI) through the cache: the path of the
 * built .wasm. The key covers the module's own files (not its generated code, which the
 * build writes), the build's arguments and the builder.
 */
export async function builtModule(moduleDir: string, args: readonly string[] = []): Promise<string> {
  const key = await buildKey(moduleDir, args);
  if (args.length === 0 && !existsSync(cachePath(basename(moduleDir), key))) await warmDefaultBuilds();
  return cachedArtifact(basename(moduleDir), key, async (out) => {
    await run(process.execPath, [KEYSTATE_BIN, "build", moduleDir, ...args, "-o", out], { cwd: REPO_ROOT, timeout: 120_000 });
  });
}

/** The cache key of `keystate build <moduleDir> [args]`. */
async function buildKey(moduleDir: string, args: readonly string[]): Promise<string> {
  const hash = createHash("sha256").update(JSON.stringify(args)).update(await builder());
  await hashFiles(hash, await filesUnder(moduleDir, ["build", "generated", "node_modules"]), moduleDir);
  if (moduleLanguage(await readModuleConfig(moduleDir)) === "c") hash.update(await cToolchain());
  return hash.digest("hex").slice(0, 24);
}

let warming: Promise<void> | undefined;

/**
 * On a process's first miss, builds every AssemblyScript example and fixture whose plain
 * build is not cached yet, in one `keystate build` process (each into its own build/), and
 * caches them: a build in a process of its own took ~5 s (Node, the bundle, asc and binaryen
 * loaded each time), each after the first in a shared one ~1.3 s, and a run needs ~20. The
 * bytes do not depend on where a module is built (test/integration/build-cli.test.ts). A
 * module the shared build did not reach (one failed) is built alone as before.
 */
function warmDefaultBuilds(): Promise<void> {
  warming ??= (async () => {
    // Once per builder: after a shared build that stopped at a module that does not build,
    // the next processes build what they miss alone instead of trying again.
    const tried = join(CACHE_DIR, `warmed-${(await builder()).slice(0, 24)}`);
    if (existsSync(tried)) return;
    const missing: { dir: string; output: string; target: string }[] = [];
    for (const parent of [join(REPO_ROOT, "modules"), join(REPO_ROOT, "test", "fixtures")]) {
      for (const entry of await readdir(parent, { withFileTypes: true })) {
        const dir = join(parent, entry.name);
        if (!entry.isDirectory() || !existsSync(join(dir, "module.json"))) continue;
        const config = await readModuleConfig(dir);
        if (moduleLanguage(config) !== "assemblyscript") continue;
        const target = cachePath(entry.name, await buildKey(dir, []));
        if (!existsSync(target)) missing.push({ dir, output: join(dir, "build", `${config.name}.wasm`), target });
      }
    }
    if (missing.length < 2) return;
    const started = Date.now();
    await run(process.execPath, [KEYSTATE_BIN, "build", ...missing.map((m) => m.dir)], { cwd: REPO_ROOT, timeout: 300_000 }).catch(() => undefined);
    await mkdir(CACHE_DIR, { recursive: true });
    await writeFile(tried, "");
    for (const { output, target } of missing) {
      // Only what this build wrote: an older file there may be of other sources.
      if (!existsSync(output) || (await stat(output)).mtimeMs < started) continue;
      await writeAside(target, (partial) => copyFile(output, partial));
    }
  })();
  return warming;
}

/** builtModule, copied to `outFile` (for tests that keep their modules in a directory of their own). */
export async function buildModuleTo(moduleDir: string, outFile: string, args: readonly string[] = []): Promise<string> {
  await copyFile(await builtModule(moduleDir, args), outFile);
  return outFile;
}
