// Building a module (with the real `keystate build` CLI) into a temp dir of one test
// file's own, so a concurrent test never reads a half-written .wasm, and starting a
// `keystate serve` process with that module deployed through `keystate deploy`.
import type { ExecutionContext, TestFn } from "ava";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { KEYSTATE_BIN, REPO_ROOT, clusterNameFor, startNodeProcess, type NodeProcess } from "./node-process.js";
import { deploy } from "./deployed-node.js";
import { makeTempDir, removeDir, tempDirFor } from "./temp-dir.js";

const run = promisify(execFile);

/** Registers before/after hooks that build `moduleDir`; the returned function gives the .wasm path. */
export function buildBeforeAll(test: TestFn, moduleDir: string): () => string {
  let dir = "";
  let wasm = "";
  test.before(async () => {
    dir = await makeTempDir(`${basename(moduleDir)}-build`);
    wasm = join(dir, `${basename(moduleDir)}.wasm`);
    await run(process.execPath, [KEYSTATE_BIN, "build", moduleDir, "-o", wasm], { cwd: REPO_ROOT });
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
