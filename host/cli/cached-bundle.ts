// Runs a CommonJS bundle through V8's code cache: how `keystate serve` starts
// (bin/keystate.js → dist/bundle/serve.cjs, built by scripts/bundle-node.ts).
//
// Why: after Node's own start, the largest part of a node's start-up was V8 parsing and
// compiling Keystate's code (bench/RESULTS.md, "a start from V8's code cache"), and a pod
// restarted after a crash or added on scale-out waits for it. Node 20 keeps no compiled code
// between processes for ES modules (module.enableCompileCache() came with Node 22), but
// vm.Script accepts what V8 compiled in an earlier process (`cachedData`) and skips the
// parsing and compiling it covers. `npm run build` starts a node once through this loader to
// write that cache.
//
// The cache file starts with the SHA-256 of the bundle it was made from: V8 checks a cache
// against its source's length only, and a cache of other code of the same length would run
// that code. A cache of other code, or one V8 refuses (another Node or V8 version, V8 flags
// other than the training start's, such as --no-opt or --stack-size), costs only the check:
// the bundle compiles as without one.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";
import { type CodeCacheUse, setLoaderHooks } from "../loader-hooks.js";

// Node's own CommonJS wrapper, on the bundle's first line so that line numbers stay the file's.
const WRAPPER_HEAD = "(function (exports, require, module, __filename, __dirname) { ";
const WRAPPER_TAIL = "\n})";
const HASH_BYTES = 32;

type CommonJsBody = (exports: unknown, require: NodeRequire, module: { exports: unknown }, filename: string, dirname: string) => void;

/** Where a bundle's code cache is kept: beside it (the build writes it there, a start reads it there). */
export function codeCacheFile(bundle: string): string {
  return `${bundle}.v8-cache`;
}

export interface CachedBundleOptions {
  /** Write what V8 compiled to the cache file when the process exits (the build's one training start). */
  readonly writeCacheAtExit?: boolean;
}

/** Runs the CommonJS file `file`, served from its code cache (codeCacheFile) when V8 accepts it. */
export function runCachedBundle(file: string, options: CachedBundleOptions = {}): CodeCacheUse {
  const cacheFile = codeCacheFile(file);
  // Read as bytes, then decoded: both faster than readFileSync(file, "utf8") on a 1.5 MB file, hash included.
  const bytes = readFileSync(file);
  const sourceHash = createHash("sha256").update(bytes).digest();
  const cache = readCache(cacheFile);
  const sameSource = cache !== undefined && cache.subarray(0, HASH_BYTES).equals(sourceHash);
  const cachedData = sameSource ? cache.subarray(HASH_BYTES) : undefined;
  const script = new Script(WRAPPER_HEAD + bytes.toString("utf8") + WRAPPER_TAIL, { filename: file, cachedData });
  const use: CodeCacheUse = cache === undefined ? "none" : !sameSource || script.cachedDataRejected ? "rejected" : "used";
  // A bare specifier resolves from here as from the bundle: both sit in the package's own tree.
  setLoaderHooks((specifier) => import(specifier), use);
  // At exit V8 has compiled everything the start ran, which is what the next start needs.
  if (options.writeCacheAtExit) process.once("exit", () => writeAtomically(cacheFile, Buffer.concat([sourceHash, script.createCachedData()])));
  const body = script.runInThisContext() as CommonJsBody;
  const module = { exports: {} };
  body.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return use;
}

function readCache(cacheFile: string): Buffer | undefined {
  try {
    return readFileSync(cacheFile);
  } catch (err) {
    // No cache (a build that did not write one, or a checkout without a build) compiles as before.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** A start reading the cache while it is written sees the old file or the new one, never half of one. */
function writeAtomically(path: string, bytes: Buffer): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, bytes);
  renameSync(temporary, path);
}
