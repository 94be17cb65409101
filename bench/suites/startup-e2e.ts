// Startup figures over the network: deploy through the admin API (HTTP upload → first
// gRPC reply); a whole node process starting with the module in its store → first gRPC
// reply; and the cold start the runtime offers a running node: `keystate serve
// --lazy-modules` registers the stored module's services at start-up without compiling
// it, and the module is compiled and instantiated on its first call. That row is timed
// from the first call's request to its reply on a node that is already listening, over an
// HTTP/2 connection that is already set up and has carried one server reflection call (a
// round trip through the gRPC server that touches no module), and after calls to two other
// modules have warmed the host's own code (300 to the counter, a value entity, and 200 to
// the transfer example's Account, an event-sourced entity like the cart), so what it
// measures is the module's cold start plus one call, not process start, connection set-up
// or the host's first-ever JIT of a path.
import http from "node:http";
import { startNode } from "../../host/node.js";
import { GrpcClient } from "../lib/grpc-client.js";
import { Recorder, sample, type Latency } from "../lib/histogram.js";
import { tempDir } from "../lib/inproc.js";
import { startServe } from "../lib/node-process.js";
import { fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { ensureModuleBuilt } from "../lib/prepare.js";
import { counterWorkload, grpcPath, messageTypes, type Workload } from "../lib/workloads.js";

/** Calls to the warm-up modules before a lazy node's timed cold call (see below). */
const WARM_UP_CALLS = 300;
/** The event-sourced warm-up: accounts opened (activation, append), then each read once. */
const WARM_UP_ACCOUNTS = 100;
const ACCOUNT_SERVICE = "keystate.examples.transfer.Account";

export interface EndToEndStartup {
  readonly adminDeploy: Latency;
  /** spawn → "node started" log line. */
  readonly processReady: Latency;
  /** The node's own account of that start (its startMs): process start → our code running, store open, modules loaded. */
  readonly processPhases: { readonly code: Latency; readonly store: Latency; readonly modules: Latency };
  /** spawn → first gRPC reply. */
  readonly processFirstReply: Latency;
  /** `serve --lazy-modules`: spawn → "node started" log line (not part of the two below). */
  readonly lazyReady: Latency;
  /** Running lazy node, connection up: first call to the stored, uncompiled module → reply. */
  readonly lazyFirstReply: Latency;
  /** The same node, right after: a call on another new key (module compiled and instantiated). */
  readonly lazyWarmReply: Latency;
}

function upload(port: number, agent: http.Agent, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path: "/modules", method: "POST", agent, headers: { "content-type": "application/wasm", "content-length": bytes.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`deploy answered ${res.statusCode}: ${Buffer.concat(chunks).toString()}`))));
      },
    );
    req.on("error", reject);
    req.end(bytes);
  });
}

export async function measureEndToEndStartup(ctx: SuiteContext, workload: Workload, moduleBytes: Uint8Array, wasmFile: string): Promise<EndToEndStartup> {
  const suite = "startup";
  progress(suite, "deploy through the admin API: POST /modules -> first gRPC reply (node in this process, embedded store)");
  const dir = await tempDir("admin");
  const node = await startNode({ dataDir: dir.path, grpcPort: 0, httpPort: 0, insecureAdmin: true });
  const agent = new http.Agent({ keepAlive: true });
  const client = new GrpcClient(node.grpcPort);
  let key = 0;
  let adminDeploy: Latency;
  try {
    adminDeploy = await sample(
      { budgetMs: ctx.budget(6000, 1200), maxIterations: ctx.quick ? 30 : 300, warmup: 3 },
      () => uniqueCopy(moduleBytes),
      async (bytes) => {
        await upload(node.httpPort, agent, bytes);
        await client.ok(grpcPath(workload, workload.readMethod), workload.readPayload(`admin-${key++}`));
      },
    );
  } finally {
    client.close();
    agent.destroy();
    await node.stop();
    await dir.remove();
  }
  progress(suite, `  admin deploy p50 ${fmtUs(adminDeploy.p50)} p99 ${fmtUs(adminDeploy.p99)} (n=${adminDeploy.n})`);

  progress(suite, "node process cold start: module in the store, process spawned -> first gRPC reply");
  const data = await tempDir("cold");
  const ready = new Recorder();
  const phases = { code: new Recorder(), store: new Recorder(), modules: new Recorder() };
  const reply = new Recorder();
  const lazyReady = new Recorder();
  const lazyFirst = new Recorder();
  const lazyWarm = new Recorder();
  const path = grpcPath(workload, workload.readMethod);
  try {
    // First start deploys the module into the embedded store; the timed starts find it there.
    // The counter and transfer modules go in too: the lazy node's warm-up traffic (below) goes to them.
    const warmUpWasm = [counterWorkload.module, "transfer"].map((name) => {
      const built = ensureModuleBuilt(suite, name);
      if (!built) throw new Error(`modules/${name} does not build`);
      return built;
    });
    await (await startServe({ dataDir: data.path, deploy: [wasmFile, ...warmUpWasm], readyMessage: `deployed ${warmUpWasm.at(-1)}` })).stop();
    const runs = ctx.quick ? 2 : 12;
    const deadline = performance.now() + ctx.budget(15_000, 4000);
    for (let i = 0; i < runs && (i < 2 || performance.now() < deadline); i++) {
      const start = performance.now();
      const serve = await startServe({ dataDir: data.path });
      const c = new GrpcClient(serve.grpcPort);
      await c.ok(path, workload.readPayload(`proc-${i}`));
      reply.recordUs((performance.now() - start) * 1000);
      ready.recordUs(serve.startedMs * 1000);
      if (!serve.startPhases) throw new Error("the node's 'node started' line has no startMs");
      phases.code.recordUs(serve.startPhases.process * 1000);
      phases.store.recordUs(serve.startPhases.store * 1000);
      phases.modules.recordUs(serve.startPhases.modules * 1000);
      c.close();
      await serve.stop();
    }
    const eager = reply.summary();
    progress(suite, `  process spawn -> first reply p50 ${fmtUs(eager.p50)} (n=${eager.n})`);

    // A node compiles a module once, so each cold sample needs a node of its own; same data dir.
    progress(suite, "cold start over gRPC on a running node: serve --lazy-modules, module stored but not compiled -> first gRPC reply");
    const lazyRuns = ctx.quick ? 3 : 12;
    const lazyDeadline = performance.now() + ctx.budget(15_000, 4000);
    for (let i = 0; i < lazyRuns && (i < 2 || performance.now() < lazyDeadline); i++) {
      const serve = await startServe({ dataDir: data.path, lazyModules: true });
      const c = new GrpcClient(serve.grpcPort);
      try {
        await c.connected();
        // The service must be served before any call reached the module: at start-up it comes from the stored artifact.
        const services = await c.listServices();
        if (!services.includes(workload.service)) throw new Error(`serve --lazy-modules does not list ${workload.service} (lists ${services.join(", ")})`);
        // A node in service has run calls before: warm its own code paths (gRPC, router,
        // value and event-sourced entities, store) on the other modules, so the timed call
        // measures this module's cold start rather than the host's first-ever JIT of a path.
        // Warmed on the counter alone, the cart's first call read ~1 ms more (3.83 against
        // 2.84 ms, 8 nodes each): the first event-sourced call the process ever ran.
        const warmUpPath = grpcPath(counterWorkload, counterWorkload.writeMethod);
        for (let w = 0; w < WARM_UP_CALLS; w++) await c.ok(warmUpPath, counterWorkload.writePayload(`warm-${w % 16}`));
        await warmUpAccounts(c, i);
        let start = performance.now();
        await c.ok(path, workload.readPayload(`lazy-cold-${i}`));
        lazyFirst.recordUs((performance.now() - start) * 1000);
        start = performance.now();
        await c.ok(path, workload.readPayload(`lazy-warm-${i}`));
        lazyWarm.recordUs((performance.now() - start) * 1000);
        lazyReady.recordUs(serve.startedMs * 1000);
      } finally {
        c.close();
        await serve.stop();
      }
    }
  } finally {
    await data.remove();
  }
  const processFirstReply = reply.summary();
  const lazyFirstReply = lazyFirst.summary();
  const lazyWarmReply = lazyWarm.summary();
  progress(suite, `  lazy node: first call p50 ${fmtUs(lazyFirstReply.p50)}, next call (warm) p50 ${fmtUs(lazyWarmReply.p50)} (n=${lazyFirstReply.n})`);
  const processPhases = { code: phases.code.summary(), store: phases.store.summary(), modules: phases.modules.summary() };
  return { adminDeploy, processReady: ready.summary(), processPhases, processFirstReply, lazyReady: lazyReady.summary(), lazyFirstReply, lazyWarmReply };
}

/** Opens WARM_UP_ACCOUNTS new accounts on the transfer module's event-sourced Account, then reads each. */
async function warmUpAccounts(client: GrpcClient, run: number): Promise<void> {
  const ids = Array.from({ length: WARM_UP_ACCOUNTS }, (_, n) => `warm-${run}-${n}`);
  for (const accountId of ids) await client.ok(`/${ACCOUNT_SERVICE}/Open`, messageTypes.openAccount.encode({ accountId, initialBalance: 100 }).finish());
  for (const accountId of ids) await client.ok(`/${ACCOUNT_SERVICE}/GetAccount`, messageTypes.accountId.encode({ accountId }).finish());
}
