// `keystate dev-cluster` as a user runs it: one command brings up redis-server and two
// cluster nodes, prints where they are, and Ctrl-C (SIGINT) takes it all down again.
import test from "ava";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection } from "node:net";
import { promisify } from "node:util";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";

const execFileAsync = promisify(execFile);

interface Printed {
  readonly redisPort: number;
  readonly dataDir: string;
  readonly token: string;
  readonly nodes: ReadonlyArray<{ id: string; grpcPort: number; httpPort: number; pid: number }>;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Reads the summary dev-cluster prints once every node is up. */
function parseSummary(stdout: string): Printed | undefined {
  if (!stdout.includes("Ctrl-C stops the cluster")) return undefined;
  const head = /nodes on Redis redis:\/\/127\.0\.0\.1:(\d+) \(data in ([^)]+)\)/.exec(stdout)!;
  const nodes = [...stdout.matchAll(/^ {2}(node-\d+) {2}gRPC 127\.0\.0\.1:(\d+) {2}HTTP 127\.0\.0\.1:(\d+) {2}pid (\d+)$/gm)].map((m) => ({
    id: m[1]!,
    grpcPort: Number(m[2]),
    httpPort: Number(m[3]),
    pid: Number(m[4]),
  }));
  return { redisPort: Number(head[1]), dataDir: head[2]!, token: /^Admin token: (\S+)$/m.exec(stdout)![1]!, nodes };
}

test("dev-cluster brings up Redis and two nodes, shows them in one cluster, and stops everything on SIGINT", async (t) => {
  const child = spawn(process.execPath, [KEYSTATE_BIN, "dev-cluster", "--nodes", "2", "--lease-ms", "2000"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let printed: Printed | undefined;
  t.teardown(async () => {
    // A failed assertion must not leave a cluster behind: dev-cluster cleans up on SIGTERM; the pids are the backstop.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await Promise.race([exitOf(child), new Promise((r) => setTimeout(r, 20_000).unref())]);
    }
    for (const node of printed?.nodes ?? []) {
      try {
        process.kill(node.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });

  printed = await waitFor("the dev-cluster summary", 60_000, () => {
    if (child.exitCode !== null) throw new Error(`dev-cluster exited with ${child.exitCode}:\n${stdout}\n${stderr}`);
    return parseSummary(stdout);
  });
  t.deepEqual(printed.nodes.map((n) => n.id), ["node-1", "node-2"], stdout);
  t.regex(stdout, new RegExp(`call --address 127\\.0\\.0\\.1:${printed.nodes[1]!.grpcPort} `));
  t.regex(stdout, new RegExp(`cluster --admin http://127\\.0\\.0\\.1:${printed.nodes[0]!.httpPort} --token ${printed.token}`));

  for (const node of printed.nodes) {
    const health = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
    t.is(health.status, 200, node.id);
  }

  // Node 1 sees both members alive (node 2 may need a heartbeat to show up).
  const admin = `http://127.0.0.1:${printed.nodes[0]!.httpPort}`;
  const view = await waitFor("2 alive nodes in GET /cluster", 10_000, async () => {
    const response = await fetch(`${admin}/cluster`, { headers: { authorization: `Bearer ${printed!.token}` } });
    const body = (await response.json()) as { cluster: string; self: string; nodes: Array<{ id: string; alive: boolean }> };
    return response.ok && body.nodes.filter((n) => n.alive).length === 2 ? body : undefined;
  });
  t.is(view.cluster, "dev");
  t.is(view.self, "node-1");
  t.deepEqual(view.nodes.map((n) => n.id).sort(), ["node-1", "node-2"]);

  // The `cluster` verb prints the same view as a table.
  const table = await execFileAsync(process.execPath, [KEYSTATE_BIN, "cluster", "--admin", admin, "--token", printed.token], { cwd: REPO_ROOT });
  t.regex(table.stdout, /^cluster dev: \d+ shards, seen from node-1$/m);
  t.regex(table.stdout, /^\* node-1 .* alive /m);
  t.regex(table.stdout, /^ {2}node-2 .* alive /m);

  const stoppedAt = Date.now();
  child.kill("SIGINT");
  // Unref'd: a pending timer would keep this test file's process alive for its 20 s after the test.
  const exit = await Promise.race([exitOf(child), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 20_000).unref())]);
  t.deepEqual(exit, { code: 0, signal: null }, `${stdout}\n${stderr}`);
  t.log(`stopped in ${Date.now() - stoppedAt} ms`);

  t.false(await listening(printed.redisPort), "redis-server is stopped");
  for (const node of printed.nodes) {
    t.false(await listening(node.grpcPort), `${node.id} gRPC port is closed`);
    t.false(await listening(node.httpPort), `${node.id} HTTP port is closed`);
  }
  t.false(existsSync(printed.dataDir), "the temp dir is removed");
});

test("dev-cluster without redis-server on PATH fails and says how to install it", async (t) => {
  const error = await t.throwsAsync(execFileAsync(process.execPath, [KEYSTATE_BIN, "dev-cluster", "--nodes", "1"], { cwd: REPO_ROOT, env: { ...process.env, PATH: "/nonexistent" } }));
  const failed = error as unknown as { code: number; stderr: string };
  t.is(failed.code, 1);
  t.regex(failed.stderr, /redis-server is not installed.*apt-get install redis-server/);
});
