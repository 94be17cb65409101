// Builds a test fixture module (test/fixtures/<name>) once per test file, into a directory
// of that file's own (see built-module.ts), and removes it when the file's tests are done.
import type { TestFn } from "ava";
import { join } from "node:path";
import { buildBeforeAll } from "./built-module.js";
import { REPO_ROOT } from "./node-process.js";

export function fixtureDir(name: string): string {
  return join(REPO_ROOT, "test", "fixtures", name);
}

/** Registers before/after hooks on `test`; the returned function gives the .wasm path (valid inside tests). */
export function useBuiltFixture(test: TestFn, name: string): () => string {
  return buildBeforeAll(test, fixtureDir(name));
}
