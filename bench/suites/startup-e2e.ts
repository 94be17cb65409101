// Startup figures over the network: deploy through the admin API (HTTP upload → first
// gRPC reply), and a whole node process starting with the module in its store → first
// gRPC reply. The runtime has no lazy per-module load on a running node yet (modules
// load when the node starts), so "scale from zero" over gRPC means a process start.
import http from "node:http";
import { startNode } from "../../host/node.js";
import { GrpcClient } from "../lib/grpc-client.js";
import { Recorder, sample, type Latency } from "../lib/histogram.js";
import { tempDir } from "../lib/inproc.js";
import { startServe } from "../lib/node-process.js";
import { fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { grpcPath, type Workload } from "../lib/workloads.js";

export interface EndToEndStartup {
  readonly adminDeploy: Latency;
  /** spawn → "node started" log line. */
  readonly processReady: Latency;
  /** spawn → first gRPC reply. */
  readonly processFirstReply: Latency;
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
  const reply = new Recorder();
  try {
    // First start deploys the module into the embedded store; the timed starts find it there.
    await (await startServe({ dataDir: data.path, deploy: [wasmFile], readyMessage: "deployed" })).stop();
    const runs = ctx.quick ? 2 : 12;
    const deadline = performance.now() + ctx.budget(15_000, 4000);
    for (let i = 0; i < runs && (i < 2 || performance.now() < deadline); i++) {
      const start = performance.now();
      const serve = await startServe({ dataDir: data.path });
      const c = new GrpcClient(serve.grpcPort);
      await c.ok(grpcPath(workload, workload.readMethod), workload.readPayload(`proc-${i}`));
      reply.recordUs((performance.now() - start) * 1000);
      ready.recordUs(serve.startedMs * 1000);
      c.close();
      await serve.stop();
    }
  } finally {
    await data.remove();
  }
  const processFirstReply = reply.summary();
  progress(suite, `  process spawn -> first reply p50 ${fmtUs(processFirstReply.p50)} (n=${processFirstReply.n})`);
  return { adminDeploy, processReady: ready.summary(), processFirstReply };
}
