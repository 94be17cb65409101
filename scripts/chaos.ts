// Chaos run of a Keystate cluster: its own redis-server (AOF, fsync always), N `keystate serve`
// nodes in cluster "chaos", the counter and shopping-cart examples deployed once, then the chaos
// workload while every --kill-every-s one random node is killed with SIGKILL and restarted (same
// node id, same data dir). Afterwards every touched entity is read back and checked.
//
//   node --import=tsx scripts/chaos.ts [--nodes 3] [--duration-s 120] [--kill-every-s 10] [--keys 10000]
//                                       [--concurrency 16] [--json results.json]
//
// Exit code 1 on any violation (or when the cluster never became ready).
import { randomBytes, randomInt } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { RedisLayout } from "../host/journal/redis-keys.js";
import { checkEntities, formatReport, grpcReaders, violationCount } from "../test/helpers/chaos-checker.js";
import { ClientPool, runWorkload, unary, type NodeAddress } from "../test/helpers/chaos-workload.js";
import { deploy, ensureExample } from "../test/helpers/deployed-node.js";
import { startNodeProcess, type NodeProcess } from "../test/helpers/node-process.js";
import { startRedis } from "../test/helpers/redis-server.js";
import { makeTempDir, removeDir } from "../test/helpers/temp-dir.js";

const { values: flags } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    "duration-s": { type: "string", default: "120" },
    "kill-every-s": { type: "string", default: "10" },
    keys: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "16" },
    "lease-ms": { type: "string", default: "2000" },
    json: { type: "string" },
  },
});
const positive = (name: keyof typeof flags): number => {
  const n = Number(flags[name]);
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`--${name} must be a number > 0, got "${String(flags[name])}"`);
  return n;
};
const NODES = positive("nodes");
const DURATION_MS = positive("duration-s") * 1000;
const KILL_EVERY_MS = positive("kill-every-s") * 1000;
const KEYS = positive("keys");
const CONCURRENCY = positive("concurrency");
const LEASE_MS = positive("lease-ms");
const TOKEN = randomBytes(16).toString("hex");
const log = (line: string) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const redis = await startRedis({ appendOnly: true });
log(`redis-server on ${redis.url} (appendonly yes, appendfsync always)`);
const dataDirs: string[] = [];
// Every node process's output is kept here (one file per process) for reading after a violation.
const logDir = await makeTempDir("chaos-logs");
const generation: number[] = [];
const saveLog = (i: number, node: NodeProcess | undefined) =>
  node ? writeFile(join(logDir, `n${i}-${(generation[i] = (generation[i] ?? 0) + 1)}.log`), node.output.join("")) : Promise.resolve();
const nodes: (NodeProcess | undefined)[] = [];
const addresses = (): ReadonlyArray<NodeAddress | undefined> => nodes;

async function startNode(i: number): Promise<NodeProcess> {
  const dataDir = dataDirs[i]!;
  // startNodeProcess reads <data>/admin-token: write the shared token first so the read cannot race.
  await writeFile(join(dataDir, "admin-token"), TOKEN + "\n", { mode: 0o600 });
  const args = ["--cluster", "chaos", "--node-id", `n${i}`, "--lease-ms", String(LEASE_MS), "--admin-token", TOKEN];
  // A restart right after kill -9 may be refused while the dead node's heartbeat is still live.
  const deadline = Date.now() + 4 * LEASE_MS + 30_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodeProcess({ dataDir, redisUrl: redis.url, extraArgs: args });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      log(`n${i}: start attempt ${attempt} failed (${String(err).split("\n")[0]}); retrying`);
      await sleep(500);
    }
  }
}

/** Resolves once the node in `slot` answers a call of both services. */
async function waitReady(pool: ClientPool, slot: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const clients = pool.get(slot);
    if (clients) {
      try {
        await unary(clients.counter, "Get", { counterId: "chaos-probe" }, 2000);
        await unary(clients.cart, "GetCart", { userId: "chaos-probe" }, 2000);
        return;
      } catch (err) {
        last = err;
      }
    }
    await sleep(200);
  }
  throw new Error(`node n${slot} did not answer both services within ${timeoutMs} ms: ${String(last)}`);
}

const kills: Array<{ at: number; node: string; restartMs?: number; error?: string }> = [];
let exitCode = 1;
let readers: ReturnType<typeof grpcReaders> | undefined;
let journal: Redis | undefined;
const pool = new ClientPool(addresses);
try {
  for (let i = 0; i < NODES; i++) {
    dataDirs.push(await makeTempDir(`chaos-n${i}`));
    nodes.push(await startNode(i));
    log(`n${i} up: gRPC ${nodes[i]!.grpcPort}, admin ${nodes[i]!.adminUrl}`);
  }
  for (const example of ["counter", "shopping-cart"]) {
    const wasm = await ensureExample(example);
    if (!wasm) throw new Error(`modules/${example} does not build`);
    await deploy(nodes[0]!, wasm);
    log(`deployed ${wasm} on n0`);
  }
  for (let i = 0; i < NODES; i++) await waitReady(pool, i);
  log(`all ${NODES} nodes answer both services; workload: ${CONCURRENCY} callers, ${KEYS} keys, ${DURATION_MS / 1000} s, a kill every ${KILL_EVERY_MS / 1000} s`);

  const workloadEnds = Date.now() + DURATION_MS;
  const chaos = (async () => {
    for (;;) {
      // No kill near the end (3 leases, at least 5 s): its keys must have time to recover.
      const next = Date.now() + KILL_EVERY_MS;
      if (next + Math.max(5000, 3 * LEASE_MS) >= workloadEnds) return;
      await sleep(next - Date.now());
      const i = randomInt(NODES);
      const kill: (typeof kills)[number] = { at: Date.now(), node: `n${i}` };
      kills.push(kill);
      const victim = nodes[i];
      nodes[i] = undefined;
      await victim?.kill("SIGKILL");
      await saveLog(i, victim);
      log(`killed n${i} (SIGKILL); restarting`);
      try {
        nodes[i] = await startNode(i);
        kill.restartMs = Date.now() - kill.at;
        log(`n${i} back after ${kill.restartMs} ms on gRPC ${nodes[i]!.grpcPort}`);
      } catch (err) {
        kill.error = String(err);
        log(`n${i} did not come back: ${String(err).split("\n")[0]}`);
      }
    }
  })();
  const record = await runWorkload({
    durationMs: DURATION_MS,
    nodes: addresses,
    concurrency: CONCURRENCY,
    keys: KEYS,
    onProgress: (s) => log(`${(s.elapsedMs / 1000).toFixed(0)} s: ${s.ops} operations, ${s.ok} ok`),
  });
  await chaos;
  log(`workload done: ${record.ops.length} operations; waiting for every node before reading back`);
  for (let i = 0; i < NODES; i++) if (nodes[i]) await waitReady(pool, i);

  journal = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
  await journal.connect();
  // The nodes' own key layout (cluster "chaos", the default shard count) names each journal stream.
  const layout = new RedisLayout("chaos");
  const stream = (persistenceId: string, key: string) => layout.entityKeys({ persistenceId, key }).journal;
  const client = journal;
  readers = grpcReaders(addresses);
  const report = await checkEntities(
    record,
    {
      counterValue: readers.counterValue,
      cartItems: readers.cartItems,
      readJournal: async (pid, key) => (await client.xrange(stream(pid, key), "-", "+")).map(([id]) => ({ seq: Number(id.split("-")[0]) })),
    },
    { kills },
  );
  process.stdout.write(formatReport(report) + "\n");
  if (kills.some((k) => k.error)) log(`${kills.filter((k) => k.error).length} restarts failed`);
  if (flags.json) {
    const { samples, ...recovery } = report.recovery;
    const settings = { nodes: NODES, durationMs: DURATION_MS, killEveryMs: KILL_EVERY_MS, keys: KEYS, concurrency: CONCURRENCY, leaseMs: LEASE_MS };
    await writeFile(flags.json, JSON.stringify({ settings, ...report, recovery: { ...recovery, samples: samples.length }, recoverySamplesMs: samples, kills, violations: violationCount(report) }, null, 2) + "\n");
    log(`results written to ${flags.json}`);
  }
  exitCode = violationCount(report) === 0 && !kills.some((k) => k.error) ? 0 : 1;
} catch (err) {
  log(`chaos run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  pool.close();
  readers?.close();
  journal?.disconnect();
  await Promise.all(nodes.map((node) => node?.kill("SIGKILL")));
  await Promise.all(nodes.map((node, i) => saveLog(i, node)));
  log(`node logs in ${logDir}`);
  await redis.stop();
  await Promise.all(dataDirs.map((dir) => removeDir(dir)));
}
process.exit(exitCode);
