// Building a module (with the real `keystate build` CLI, through the build cache) into a temp
// dir of one test file's own, so a concurrent test never reads a half-written .wasm, and starting a
// `keystate serve` process with that module deployed through `keystate deploy`.
import type { ExecutionContext, TestFn } from "ava";
import { writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { buildModuleTo } from "./build-cache.js";
import { clusterNameFor, startNodeProcess, type NodeProcess } from "./node-process.js";
import { deploy } from "./deployed-node.js";
import { makeTempDir, removeDir, tempDirFor } from "./temp-dir.js";

/** Registers before/after hooks that build `moduleDir` (through the build cache); the returned function gives the .wasm path. */
export function buildBeforeAll(test: TestFn, moduleDir: string): () => string {
  let dir = "";
  let wasm = "";
  test.before(async () => {
    dir = await makeTempDir(`${basename(moduleDir)}-build`);
    wasm = await buildModuleTo(moduleDir, join(dir, `${basename(moduleDir)}.wasm`));
  });
  test.after.always(async () => {
    if (dir) await removeDir(dir);
  });
  return () => wasm;
}

/**
 * A `keystate serve` process (killed when `t` ends), with `wasm` deployed unless undefined.
 * Pass the `dataDir` of an earlier one to restart a node on the same store.
 */
export async function serveWith(
  t: ExecutionContext,
  wasm: string | undefined,
  redisUrl?: string,
  dataDir?: string,
  extraArgs: readonly string[] = [],
): Promise<NodeProcess & { dataDir: string }> {
  dataDir ??= await tempDirFor(t, "serve");
  // A fixed token written up front, so reading it cannot race the process writing it.
  await writeFile(join(dataDir, "admin-token"), "test-token\n", { mode: 0o600 });
  // Tests of one file may share a redis-server: each test is a cluster of its own.
  const node = await startNodeProcess({ dataDir, redisUrl, cluster: clusterNameFor(t.title), extraArgs: ["--admin-token", "test-token", ...extraArgs] });
  t.teardown(() => node.kill());
  if (wasm) await deploy(node, wasm);
  return Object.assign(node, { dataDir });
}
