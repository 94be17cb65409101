// One chaos run of a Keystate cluster, for scripts/chaos.ts and the integration test: its own
// redis-server (AOF, fsync always), N `keystate serve` nodes in cluster "chaos", the counter and
// shopping-cart examples deployed once, then the chaos workload while every `killEveryMs` one
// random node is killed with SIGKILL and restarted (same node id, same data dir). Afterwards
// every touched entity is read back and checked (chaos-checker.ts).
//
// Always cleans up: node processes, redis-server and its data, the nodes' data dirs. Only the
// node logs stay (one file per process in `logDir`, for reading after a violation); the caller
// removes them when it has no use for them.
import { randomBytes, randomInt } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { checkEntities, grpcReaders, violationCount, type ChaosReport } from "./chaos-checker.js";
import { ClientPool, runWorkload, unary, type NodeAddress } from "./chaos-workload.js";
import { deploy, ensureExample } from "./deployed-node.js";
import { startNodeProcess, type NodeProcess } from "./node-process.js";
import { startRedis } from "./redis-server.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export interface ChaosSettings {
  readonly nodes: number;
  readonly durationMs: number;
  readonly killEveryMs: number;
  /** Entities: half counters, half carts. */
  readonly keys: number;
  /** Concurrent workload callers. */
  readonly concurrency: number;
  /** The nodes' --lease-ms. */
  readonly leaseMs: number;
}

export interface ChaosKill {
  /** Epoch ms of the SIGKILL. */
  at: number;
  node: string;
  /** Kill to the restarted node's "ready" banner. */
  restartMs?: number;
  /** Set when the node could not be restarted. */
  error?: string;
}

export interface ChaosResult {
  readonly report: ChaosReport;
  readonly kills: ChaosKill[];
  readonly violations: number;
  readonly restartsFailed: number;
  /** Every node process's output, one file per process (`n<i>-<generation>.log`). */
  readonly logDir: string;
}

/** The nodes' Keystate cluster name (each run has a redis-server of its own). */
export const CHAOS_CLUSTER = "chaos";

/**
 * Runs the cluster, the workload and the kills, and checks the result. Rejects (after cleaning
 * up) when the cluster cannot be started or never answers; violations are reported, not thrown.
 */
export async function runChaos(settings: ChaosSettings, log: (line: string) => void): Promise<ChaosResult> {
  const { nodes: nodeCount, durationMs, killEveryMs, keys, concurrency, leaseMs } = settings;
  const token = randomBytes(16).toString("hex");
  const redis = await startRedis({ appendOnly: true });
  log(`redis-server on ${redis.url} (appendonly yes, appendfsync always)`);
  const dataDirs: string[] = [];
  let logDir: string | undefined;
  const generation: number[] = [];
  const saveLog = (i: number, node: NodeProcess | undefined) =>
    node && logDir ? writeFile(join(logDir, `n${i}-${(generation[i] = (generation[i] ?? 0) + 1)}.log`), node.output.join("")) : Promise.resolve();
  const nodes: (NodeProcess | undefined)[] = [];
  const addresses = (): ReadonlyArray<NodeAddress | undefined> => nodes;
  // Ends the kill loop's waits when the run stops early (an error), so no node starts after cleanup.
  const stop = new AbortController();

  async function startNode(i: number): Promise<NodeProcess> {
    const dataDir = dataDirs[i]!;
    // startNodeProcess reads <data>/admin-token: write the shared token first so the read cannot race.
    await writeFile(join(dataDir, "admin-token"), token + "\n", { mode: 0o600 });
    const args = ["--cluster", CHAOS_CLUSTER, "--node-id", `n${i}`, "--lease-ms", String(leaseMs), "--admin-token", token];
    // A restart right after kill -9 may be refused while the dead node's heartbeat is still live.
    const deadline = Date.now() + 4 * leaseMs + 30_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await startNodeProcess({ dataDir, redisUrl: redis.url, extraArgs: args });
      } catch (err) {
        if (Date.now() > deadline || stop.signal.aborted) throw err;
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

  const kills: ChaosKill[] = [];
  let chaos: Promise<void> | undefined;
  let readers: ReturnType<typeof grpcReaders> | undefined;
  let journal: Redis | undefined;
  const pool = new ClientPool(addresses);
  try {
    logDir = await makeTempDir("chaos-logs");
    for (let i = 0; i < nodeCount; i++) {
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
    for (let i = 0; i < nodeCount; i++) await waitReady(pool, i);
    log(`all ${nodeCount} nodes answer both services; workload: ${concurrency} callers, ${keys} keys, ${durationMs / 1000} s, a kill every ${killEveryMs / 1000} s`);

    const workloadEnds = Date.now() + durationMs;
    chaos = (async () => {
      for (;;) {
        // No kill near the end (3 leases, at least 5 s): its keys must have time to recover.
        const next = Date.now() + killEveryMs;
        if (next + Math.max(5000, 3 * leaseMs) >= workloadEnds) return;
        await sleep(next - Date.now(), undefined, { signal: stop.signal });
        const i = randomInt(nodeCount);
        const kill: ChaosKill = { at: Date.now(), node: `n${i}` };
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
        if (stop.signal.aborted) return;
      }
    })();
    // Awaited below (or in finally); this only keeps an early failure from being unhandled meanwhile.
    chaos.catch(() => undefined);
    const record = await runWorkload({
      durationMs,
      nodes: addresses,
      concurrency,
      keys,
      onProgress: (s) => log(`${(s.elapsedMs / 1000).toFixed(0)} s: ${s.ops} operations, ${s.ok} ok`),
    });
    await chaos;
    log(`workload done: ${record.ops.length} operations; waiting for every node before reading back`);
    for (let i = 0; i < nodeCount; i++) if (nodes[i]) await waitReady(pool, i);

    journal = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    await journal.connect();
    // The nodes' own key layout (cluster "chaos", the default shard count) names each journal stream.
    const layout = new RedisLayout(CHAOS_CLUSTER);
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
    return { report, kills, violations: violationCount(report), restartsFailed: kills.filter((k) => k.error).length, logDir };
  } finally {
    stop.abort();
    // A kill in progress finishes its restart (or gives up) before the nodes are stopped.
    await chaos?.catch(() => undefined);
    pool.close();
    readers?.close();
    journal?.disconnect();
    await Promise.all(nodes.map((node) => node?.kill("SIGKILL")));
    await Promise.all(nodes.map((node, i) => saveLog(i, node)));
    if (logDir) log(`node logs in ${logDir}`);
    await redis.stop();
    await Promise.all(dataDirs.map((dir) => removeDir(dir)));
  }
}
