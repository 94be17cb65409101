// `keystate serve`: start a node; `--examples` also deploys the built example modules.
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isKeystateError } from "../errors.js";
import { log, setLogLevel } from "../log.js";
import { startNode, type KeystateNode } from "../node.js";
import { hashModule } from "../runtime/loaded-module.js";
import { booleanSetting, numberSetting, resolveSetting } from "./config.js";
import { repoRoot } from "./paths.js";

const FLAG_NAMES = {
  leaseMs: "lease-ms",
  shardCount: "shard-count",
  antiEntropyMs: "anti-entropy-ms",
  idempotencyWindowMs: "idempotency-window-ms",
  idempotencyKeysPerEntity: "idempotency-keys-per-entity",
} as const;

function positive(name: keyof typeof FLAG_NAMES, flags: Record<string, unknown>, env: NodeJS.ProcessEnv): number {
  const value = numberSetting(name, flags, env);
  if (value < 1) throw new Error(`--${FLAG_NAMES[name]} must be at least 1`);
  return value;
}

/** --peer-port: a port number, or "off" (forwarded calls then come over the gRPC port). */
function peerPortSetting(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): number | "off" {
  return resolveSetting("peerPort", flags, env) === "off" ? "off" : numberSetting("peerPort", flags, env);
}

export async function serve(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<KeystateNode> {
  setLogLevel(resolveSetting("logLevel", flags, env)!);
  const dataDir = resolve(resolveSetting("data", flags, env)!);
  const node = await startNode({
    host: resolveSetting("host", flags, env),
    grpcPort: numberSetting("grpcPort", flags, env),
    httpPort: numberSetting("httpPort", flags, env),
    dataDir,
    redisUrl: resolveSetting("redis", flags, env),
    cluster: {
      name: resolveSetting("cluster", flags, env),
      nodeId: resolveSetting("nodeId", flags, env),
      advertise: resolveSetting("advertise", flags, env),
      peerPort: peerPortSetting(flags, env),
      advertisePeer: resolveSetting("advertisePeer", flags, env),
      leaseMs: positive("leaseMs", flags, env),
      shardCount: positive("shardCount", flags, env),
      antiEntropyMs: positive("antiEntropyMs", flags, env),
      redisCluster: booleanSetting("redisCluster", flags, env),
      onIdTaken: () => {
        // Paused past its heartbeat while another process took the id: exit, a supervisor restarts it.
        process.exit(1);
      },
    },
    adminToken: resolveSetting("adminToken", flags, env),
    insecureAdmin: booleanSetting("insecureAdmin", flags, env),
    lazyModules: booleanSetting("lazyModules", flags, env),
    keepVersions: numberSetting("keepVersions", flags, env),
    maxModuleBytes: numberSetting("maxModuleSize", flags, env),
    guestMemoryMb: numberSetting("guestMemoryMb", flags, env),
    guestFuelPerCall: numberSetting("guestFuel", flags, env),
    entityMemoryBudgetBytes: numberSetting("entityMemoryBudget", flags, env),
    entityParkAfterMs: numberSetting("parkAfterMs", flags, env),
    maxRequestBytes: numberSetting("maxRequestSize", flags, env),
    idempotency: { windowMs: positive("idempotencyWindowMs", flags, env), keysPerEntity: positive("idempotencyKeysPerEntity", flags, env) },
  });
  if (node.adminToken !== undefined) {
    // The CLI on this machine finds the token here, so `keystate deploy` just works.
    await mkdir(dataDir, { recursive: true });
    const tokenFile = join(dataDir, "admin-token");
    await writeFile(tokenFile, node.adminToken + "\n", { mode: 0o600 });
    await chmod(tokenFile, 0o600);
  }
  if (flags.examples === true) await deployExamples(node);
  for (const file of (flags.deploy as string[] | undefined) ?? []) {
    const deployed = await node.registry.deploy(await readFile(file));
    log().info({ module: deployed.name, version: deployed.version }, `deployed ${file}`);
  }
  return node;
}

/** Deploys modules/<name>/build/<name>.wasm unless that exact build is already the live version. */
async function deployExamples(node: KeystateNode): Promise<void> {
  const modulesDir = join(repoRoot(), "modules");
  const live = new Map(node.registry.modules.map((m) => [m.name, m.hash]));
  for (const name of await readdir(modulesDir)) {
    const file = join(modulesDir, name, "build", `${name}.wasm`);
    if (!existsSync(file)) continue;
    const bytes = await readFile(file);
    if (live.get(name) === hashModule(bytes)) continue;
    try {
      const deployed = await node.registry.deploy(bytes);
      log().info({ module: deployed.name, version: deployed.version }, "deployed example module");
    } catch (err) {
      // Another language's implementation of the same contract (shopping-cart-c beside
      // shopping-cart): one node serves one of them; the first in name order wins.
      if (!isKeystateError(err, "SERVICE_CONFLICT")) throw err;
      log().info({ module: name, reason: err.message }, "example module not deployed: another example serves its services (deploy it on a node of its own)");
    }
  }
}

export function banner(node: KeystateNode, dataDir: string | undefined): string {
  const services = node.registry.modules.flatMap((m) => [...m.api.services.keys()].map((s) => `    ${s}  (module ${m.name} v${m.version})`));
  return [
    "",
    `Keystate node ready: gRPC on 127.0.0.1:${node.grpcPort}, admin HTTP on 127.0.0.1:${node.httpPort} (store: ${node.store.kind})`,
    ...(node.cluster ? [`Cluster ${node.cluster.config.name}: node id ${node.cluster.nodeId}, advertised at ${node.cluster.config.advertise}`] : []),
    node.adminToken ? `Admin token: ${node.adminToken}${dataDir ? `  (saved to ${join(dataDir, "admin-token")})` : ""}` : "Admin API: no token required (--insecure-admin)",
    services.length ? "Serving:\n" + services.join("\n") : "No modules deployed yet: keystate deploy <file.wasm>",
    ...(services.length ? ["", "Try it:", ...tryIt(node)] : []),
    "",
  ].join("\n");
}

/** Example calls for the example modules that are live, so a new user can start at once. */
function tryIt(node: KeystateNode): string[] {
  const live = new Set(node.registry.modules.flatMap((m) => [...m.api.services.keys()]));
  const http = `http://127.0.0.1:${node.httpPort}`;
  const grpc = node.grpcPort === 8080 ? "" : ` --address 127.0.0.1:${node.grpcPort}`;
  const lines: string[] = [];
  if (live.has("keystate.examples.shoppingcart.ShoppingCart")) {
    lines.push(
      `  node bin/keystate.js call${grpc} keystate.examples.shoppingcart.ShoppingCart/AddItem '{"user_id":"ann","product_id":"apple","name":"Apple","quantity":2}'`,
      `  curl ${http}/carts/ann`,
    );
  }
  if (live.has("keystate.examples.counter.Counter")) {
    lines.push(`  curl -X POST ${http}/counters/c1/increase -d '{"value":3}'`, `  curl ${http}/counters/c1`);
  }
  lines.push(`  node bin/keystate.js call${grpc} --list`);
  return lines;
}
