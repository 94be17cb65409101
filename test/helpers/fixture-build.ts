// Builds a test fixture module (test/fixtures/<name>) once per test file, into a directory
// of that file's own (see built-module.ts), and removes it when the file's tests are done.
import type { TestFn } from "ava";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildModuleTo } from "./build-cache.js";
import { buildBeforeAll } from "./built-module.js";
import { REPO_ROOT } from "./node-process.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export function fixtureDir(name: string): string {
  return join(REPO_ROOT, "test", "fixtures", name);
}

/** Registers before/after hooks on `test`; the returned function gives the .wasm path (valid inside tests). */
export function useBuiltFixture(test: TestFn, name: string): () => string {
  return buildBeforeAll(test, fixtureDir(name));
}

/**
 * test/fixtures/versioned built twice, as v1 and v2 (a value entity whose replies name the
 * version), once per test file; registers before/after hooks on `test`, and the returned
 * function gives the two .wasm paths (valid inside tests).
 */
export function useVersionedFixture(test: TestFn): () => { readonly v1: string; readonly v2: string } {
  let workDir = "";
  const wasm = { v1: "", v2: "" };
  test.before(async () => {
    workDir = await makeTempDir("versioned");
    await Promise.all(
      (["v1", "v2"] as const).map(async (version) => {
        const dir = join(workDir, version);
        await cp(fixtureDir("versioned"), dir, { recursive: true, filter: (source) => !source.includes("/build") && !source.includes("/generated") });
        const source = join(dir, "assembly", "index.ts");
        await writeFile(source, (await readFile(source, "utf8")).replace('const VERSION = "v1";', `const VERSION = "${version}";`));
        wasm[version] = join(workDir, `${version}.wasm`);
        await buildModuleTo(dir, wasm[version]);
      }),
    );
  });
  test.after.always(async () => {
    if (workDir) await removeDir(workDir);
  });
  return () => wasm;
}
