// `keystate dev-cluster`: a throwaway local cluster (its own redis-server + N `keystate serve`
// children) for trying clustering out and for tests. Ctrl-C stops it and removes its data.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeExit, spawnDevNode, type DevNode, type DevNodePorts } from "./dev-cluster-node.js";
import { repoRoot } from "./paths.js";
import { launchRedis, type LaunchedRedis } from "./redis-launcher.js";

export interface DevClusterOptions {
  readonly nodes: number;
  /** 0: every port free-picked; else node-i gets gRPC P+2(i-1) and HTTP P+2(i-1)+1. */
  readonly basePort: number;
  readonly leaseMs: number | undefined;
  readonly verbose: boolean;
}

const CLUSTER_NAME = "dev";
const NODE_STOP_TIMEOUT_MS = 12_000;

function wholeNumber(flag: string, raw: unknown, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${flag} must be a whole number >= ${min}, got "${String(raw)}"`);
  return value;
}

export function devClusterOptions(flags: Record<string, unknown>): DevClusterOptions {
  const nodes = wholeNumber("nodes", flags.nodes ?? 3, 1);
  const basePort = wholeNumber("base-port", flags["base-port"] ?? 0, 0);
  if (basePort > 0 && basePort + 2 * nodes - 1 > 65535) throw new Error(`--base-port ${basePort} leaves no room for ${nodes} nodes (2 ports each)`);
  const leaseMs = flags["lease-ms"] === undefined ? undefined : wholeNumber("lease-ms", flags["lease-ms"], 1);
  return { nodes, basePort, leaseMs, verbose: flags.verbose === true };
}

export function nodeArgs(index: number, options: DevClusterOptions, redisUrl: string, dir: string, token: string): string[] {
  const port = (offset: number) => String(options.basePort === 0 ? 0 : options.basePort + 2 * (index - 1) + offset);
  const args = ["serve", "--redis", redisUrl, "--cluster", CLUSTER_NAME, "--node-id", `node-${index}`];
  args.push("--grpc-port", port(0), "--http-port", port(1), "--data", join(dir, `node-${index}`), "--admin-token", token);
  if (options.leaseMs !== undefined) args.push("--lease-ms", String(options.leaseMs));
  // Only the first node deploys the examples; the others get them through the cluster's module notices.
  if (index === 1) args.push("--examples");
  return args;
}

export function summary(redisUrl: string, dir: string, token: string, nodes: ReadonlyArray<{ id: string; pid: number; ports: DevNodePorts }>): string {
  const at = (i: number) => nodes[Math.min(i, nodes.length) - 1]!.ports;
  const cartBuilt = existsSync(join(repoRoot(), "modules", "shopping-cart", "build", "shopping-cart.wasm"));
  return [
    "",
    `Keystate dev cluster "${CLUSTER_NAME}": ${nodes.length} nodes on Redis ${redisUrl} (data in ${dir})`,
    ...nodes.map((n) => `  ${n.id}  gRPC 127.0.0.1:${n.ports.grpcPort}  HTTP 127.0.0.1:${n.ports.httpPort}  pid ${n.pid}`),
    `Admin token: ${token}`,
    "",
    "Try it:",
    `  node bin/keystate.js call --address 127.0.0.1:${at(2).grpcPort} keystate.examples.shoppingcart.ShoppingCart/AddItem '{"user_id":"ann","product_id":"apple","name":"Apple","quantity":2}'`,
    `  curl http://127.0.0.1:${at(3).httpPort}/carts/ann`,
    `  node bin/keystate.js cluster --admin http://127.0.0.1:${at(1).httpPort} --token ${token}`,
    ...(cartBuilt ? [] : ["  (the example modules are not built: npm run build:examples, then restart dev-cluster)"]),
    "",
    "Fail-over: kill -9 a node's pid and watch `keystate cluster`. Ctrl-C stops the cluster and removes its data.",
    "",
  ].join("\n");
}

export async function runDevCluster(options: DevClusterOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "keystate-dev-cluster-"));
  const token = randomBytes(20).toString("hex");
  const nodes: DevNode[] = [];
  let redisStarting: Promise<LaunchedRedis> | undefined;
  let redis: LaunchedRedis | undefined;
  let closing: Promise<void> | undefined;

  // Children are detached (own process groups), so they would outlive a crashed dev-cluster: not on our watch.
  process.once("exit", () => {
    for (const node of nodes) if (node.running) node.child.kill("SIGKILL");
    if (redis && redis.child.exitCode === null) redis.child.kill("SIGKILL");
  });

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const running = nodes.filter((n) => n.running).length;
      if (running) process.stdout.write(`\nstopping: SIGTERM to ${running} nodes (they hand off their shards); Ctrl-C again to kill\n`);
      await Promise.all(
        nodes.map(async (node) => {
          if (!node.running) return;
          node.child.kill("SIGTERM");
          const timer = setTimeout(() => {
            process.stdout.write(`${node.id} did not stop within ${NODE_STOP_TIMEOUT_MS / 1000} s: SIGKILL\n`);
            node.child.kill("SIGKILL");
          }, NODE_STOP_TIMEOUT_MS);
          await node.exit;
          clearTimeout(timer);
        }),
      );
      // Redis may still be starting when a signal comes: wait for it, so it cannot be left behind.
      await (await redisStarting?.catch(() => undefined))?.stop();
      await rm(dir, { recursive: true, force: true });
    })());

  const onSignal = () => {
    if (closing) {
      for (const node of nodes) if (node.running) node.child.kill("SIGKILL");
      return;
    }
    void close().then(() => process.exit(0));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    await mkdir(join(dir, "redis"));
    if (closing) return;
    redisStarting = launchRedis(join(dir, "redis"));
    redis = await redisStarting;
    redis.child.once("exit", (code, signal) => {
      if (!closing) process.stderr.write(`redis-server exited (${describeExit(code, signal)}); the nodes have lost their cluster\n`);
    });
    for (let i = 1; i <= options.nodes; i++) {
      const args = [join(repoRoot(), "bin", "keystate.js"), ...nodeArgs(i, options, redis.url, dir, token)];
      await mkdir(join(dir, `node-${i}`), { recursive: true });
      if (closing) return; // a signal while starting: close() only stops the nodes it has seen
      nodes.push(spawnDevNode(`node-${i}`, process.execPath, args, repoRoot(), options.verbose));
    }
    const ports = await Promise.all(nodes.map((n) => n.ready));
    process.stdout.write(summary(redis.url, dir, token, nodes.map((n, i) => ({ id: n.id, pid: n.child.pid!, ports: ports[i]! }))));
  } catch (err) {
    if (closing) return; // interrupted while starting: the signal handler finishes and exits 0
    await close();
    throw err;
  }

  // A node dying is something to report, not to stop for: the user may be testing fail-over.
  for (const node of nodes) {
    void node.exit.then((how) => {
      if (closing) return;
      process.stdout.write(`${node.id} exited (${how}); its last lines:\n${node.tail.slice(-10).map((l) => `[${node.id}]   ${l}`).join("\n")}\n`);
      if (!nodes.some((n) => n.running)) process.stdout.write("no nodes left; Ctrl-C to stop Redis and remove the data\n");
    });
  }
}
