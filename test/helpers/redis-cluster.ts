// Starts a real Redis Cluster for a test: N masters (no replicas) as separate
// redis-server processes on free loopback ports, each with a data dir of its own, joined
// with `redis-cli --cluster create`. No mocks: a missing binary fails the test and says
// how to get it.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { makeTempDir, removeDir } from "./temp-dir.js";
import { freeLoopbackPort, killOnExit, requireBinary, terminate, untilAnswersPing } from "./server-process.js";

export interface RedisClusterOptions {
  /** Master count; Redis Cluster needs at least 3. Default 3. */
  readonly masters?: number;
}

export interface RunningRedisCluster {
  /** One entry per master, in start order: what ioredis `new Cluster(seeds)` takes. */
  readonly seeds: readonly { readonly host: string; readonly port: number }[];
  /** `redis://127.0.0.1:<port>` per master, same order as `seeds`. */
  readonly urls: readonly string[];
  /** Graceful shutdown of every node (SIGTERM), waits for them, removes their data dirs. */
  stop(): Promise<void>;
  /** kill -9 of master `index`; its slots stay unserved (no replicas). stop() still cleans up. */
  kill(index: number): void;
}

const HOST = "127.0.0.1";
const NODE_START_TIMEOUT_MS = 5000;
const CREATE_TIMEOUT_MS = 20_000;
const CLUSTER_OK_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5000;
const run = promisify(execFile);

interface ClusterNode {
  readonly port: number;
  readonly dir: string;
  readonly child: ChildProcess;
}

function binaries(): { server: string; cli: string } {
  return {
    server: requireBinary(
      "redis-server",
      "The Redis Cluster tests need a real server: `apt-get install redis-server`, or run `bash scripts/ensure-system-deps.sh` as root.",
    ),
    cli: requireBinary(
      "redis-cli",
      "It joins the test cluster; Debian ships it in redis-tools (installed with redis-server): `apt-get install redis-tools`.",
    ),
  };
}

async function launch(binary: string, port: number, busPort: number, dir: string): Promise<ChildProcess> {
  // The bus port is chosen explicitly: the default port + 10000 can be taken or above 65535.
  const args = ["--port", String(port), "--bind", HOST, "--dir", dir, "--daemonize", "no"];
  args.push("--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`);
  args.push("--cluster-port", String(busPort), "--cluster-node-timeout", "2000");
  args.push("--appendonly", "yes", "--appendfsync", "always", "--save", "");
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  killOnExit(child);
  await untilAnswersPing(child, port, NODE_START_TIMEOUT_MS, `redis-server (cluster node, port ${port})`);
  return child;
}

async function startNode(binary: string): Promise<ClusterNode> {
  const dir = await makeTempDir("redis-cluster");
  // Auto-picked ports can be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    const port = await freeLoopbackPort();
    let busPort = await freeLoopbackPort();
    while (busPort === port) busPort = await freeLoopbackPort();
    try {
      return { port, dir, child: await launch(binary, port, busPort, dir) };
    } catch (err) {
      if (attempt >= 2) {
        await removeDir(dir);
        throw err;
      }
    }
  }
}

async function clusterInfo(cli: string, port: number): Promise<string> {
  try {
    const { stdout } = await run(cli, ["-h", HOST, "-p", String(port), "cluster", "info"], { timeout: 2000 });
    return stdout;
  } catch (err) {
    return `redis-cli failed: ${String(err)}`;
  }
}

/** Every node must see the whole cluster and every slot served, not just the first one. */
async function waitUntilOk(cli: string, nodes: readonly ClusterNode[]): Promise<void> {
  const deadline = Date.now() + CLUSTER_OK_TIMEOUT_MS;
  for (;;) {
    const infos = await Promise.all(nodes.map((node) => clusterInfo(cli, node.port)));
    const ready = (info: string) =>
      /^cluster_state:ok\r?$/m.test(info) && new RegExp(`^cluster_known_nodes:${nodes.length}\\r?$`, "m").test(info);
    if (infos.every(ready)) return;
    if (Date.now() > deadline) {
      const report = nodes.map((node, i) => `--- port ${node.port}:\n${infos[i]}`).join("\n");
      throw new Error(`Redis Cluster not ok on every node within ${CLUSTER_OK_TIMEOUT_MS} ms:\n${report}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopAll(nodes: readonly ClusterNode[]): Promise<void> {
  await Promise.all(nodes.map((node) => terminate(node.child, STOP_TIMEOUT_MS)));
  await Promise.all(nodes.map((node) => removeDir(node.dir)));
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RunningRedisCluster> {
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3) throw new Error(`Redis Cluster needs at least 3 masters, got ${masters}`);
  const { server, cli } = binaries();

  const started = await Promise.allSettled(Array.from({ length: masters }, () => startNode(server)));
  const nodes = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const failed = started.find((result) => result.status === "rejected");
  try {
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    const addresses = nodes.map((node) => `${HOST}:${node.port}`);
    try {
      await run(cli, ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"], {
        timeout: CREATE_TIMEOUT_MS,
      });
    } catch (err) {
      const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
      throw new Error(`redis-cli --cluster create ${addresses.join(" ")} failed: ${String(err)}\n${stdout}\n${stderr}`);
    }
    await waitUntilOk(cli, nodes);
  } catch (err) {
    await stopAll(nodes);
    throw err;
  }

  return {
    seeds: nodes.map((node) => ({ host: HOST, port: node.port })),
    urls: nodes.map((node) => `redis://${HOST}:${node.port}`),
    stop: () => stopAll(nodes),
    kill(index) {
      const node = nodes[index];
      if (node === undefined) throw new Error(`no cluster node ${index} (there are ${nodes.length})`);
      node.child.kill("SIGKILL");
    },
  };
}
