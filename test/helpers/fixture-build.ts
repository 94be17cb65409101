// Builds a test fixture module (test/fixtures/<name>) once per test file, into a directory
// of that file's own (a concurrent reader of a shared build/ never sees a half-written
// file), and removes it when the file's tests are done.
import type { TestFn } from "ava";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { KEYSTATE_BIN, REPO_ROOT } from "./node-process.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

const run = promisify(execFile);

export function fixtureDir(name: string): string {
  return join(REPO_ROOT, "test", "fixtures", name);
}

/** Registers before/after hooks on `test`; the returned function gives the .wasm path (valid inside tests). */
export function useBuiltFixture(test: TestFn, name: string): () => string {
  let buildDir = "";
  let wasm = "";
  test.before(async () => {
    buildDir = await makeTempDir(`${name}-build`);
    wasm = join(buildDir, `${name}.wasm`);
    await run(process.execPath, [KEYSTATE_BIN, "build", fixtureDir(name), "-o", wasm], { cwd: REPO_ROOT });
  });
  test.after.always(async () => {
    if (buildDir) await removeDir(buildDir);
  });
  return () => wasm;
}
