// What the peer link saves, measured in one run with the calls interleaved: three nodes on
// one Redis, all pinned to core 0 (this process runs the client; pin it elsewhere):
//   taskset -c 1 node --import=tsx bench/profile/forward-transports.ts [rounds]
// Node A is called with keys A owns ("local"), keys B owns (A forwards them over B's peer
// link: "peer") and keys C owns (C runs with --peer-port off, so A forwards them to C's gRPC
// port: "grpc"), 300 sequential calls per block, the blocks' order rotating each round (the
// first two rounds are warm-up). Prints p50/p99 per kind, what each hop adds at p50, and the
// CPU each node's process spent per call of each kind (/proc/<pid>/stat, all its threads): at
// one call at a time the hop's added time is mostly the added CPU on the nodes' shared core.
import { keysOwnedBy, persistenceIdOf, type ClusterViewJson } from "../lib/cluster.js";
import { GrpcJsUnary } from "../lib/grpcjs-unary.js";
import { Recorder } from "../lib/histogram.js";
import { processCpuUs } from "../lib/process-cpu.js";
import { tempDir } from "../lib/inproc.js";
import { startServe } from "../lib/node-process.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { startBenchRedis } from "../lib/redis.js";
import { counterWorkload as w, grpcPath } from "../lib/workloads.js";
const redis = await startBenchRedis();
const wasm = requireModuleBuilt("profile", w.module);
const dirs = [await tempDir("a"), await tempDir("b"), await tempDir("c")];
const pin = ["taskset", "-c", "0"];
const a = await startServe({ dataDir: dirs[0]!.path, redisUrl: redis.url, adminToken: "t", serveArgs: ["--cluster", "ab", "--node-id", "a"], deploy: [wasm], readyMessage: "deployed", prefix: pin });
const b = await startServe({ dataDir: dirs[1]!.path, redisUrl: redis.url, adminToken: "t", serveArgs: ["--cluster", "ab", "--node-id", "b"], prefix: pin });
const c = await startServe({ dataDir: dirs[2]!.path, redisUrl: redis.url, adminToken: "t", serveArgs: ["--cluster", "ab", "--node-id", "c", "--peer-port", "off"], prefix: pin });
let view: ClusterViewJson;
// Until the three nodes hold their shares of the 256 shards (then a moment for the routing tables).
for (;;) {
  view = (await (await fetch(`http://127.0.0.1:${a.httpPort}/cluster`, { headers: { authorization: "Bearer t" } })).json()) as ClusterViewJson;
  if (view.nodes.length === 3 && view.nodes.every((n) => n.shards.length >= 84)) break;
  await new Promise((r) => setTimeout(r, 200));
}
await new Promise((r) => setTimeout(r, 2000));
const pid = persistenceIdOf(w);
const keys = { local: keysOwnedBy(view, pid, "a", "ak", 8), peer: keysOwnedBy(view, pid, "b", "bk", 8), grpc: keysOwnedBy(view, pid, "c", "ck", 8) };
const ca = new GrpcJsUnary(a.grpcPort); await ca.ready();
const path = grpcPath(w, w.writeMethod);
const rec = { local: new Recorder(), peer: new Recorder(), grpc: new Recorder() };
const kinds = ["local", "peer", "grpc"] as const;
const nodes = { a, b, c };
const cpu = Object.fromEntries(kinds.map((kind) => [kind, { a: 0, b: 0, c: 0, calls: 0 }]));
const rounds = Number(process.argv[2] ?? 12);
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < 3; k++) {
    const kind = kinds[(k + r) % 3]!;
    const before = { a: processCpuUs(a.child.pid!), b: processCpuUs(b.child.pid!), c: processCpuUs(c.child.pid!) };
    for (let i = 0; i < 300; i++) {
      const start = process.hrtime.bigint();
      await ca.call(path, w.writePayload(keys[kind][i % 8]!));
      if (r >= 2) rec[kind].recordNs(Number(process.hrtime.bigint() - start));
    }
    if (r >= 2) {
      const spent = cpu[kind]!;
      for (const name of ["a", "b", "c"] as const) spent[name] += processCpuUs(nodes[name].child.pid!) - before[name];
      spent.calls += 300;
    }
  }
}
for (const kind of kinds) {
  const l = rec[kind].summary();
  const spent = cpu[kind]!;
  const per = (us: number) => (us / spent.calls).toFixed(0);
  console.log(kind.padEnd(6), "p50", l.p50.toFixed(0), "us p99", l.p99.toFixed(0), "n", l.n, "| CPU per call: A", per(spent.a), "us, B", per(spent.b), "us, C", per(spent.c), "us");
}
const l = rec.local.summary().p50;
console.log("forward adds: peer link +", (rec.peer.summary().p50 - l).toFixed(0), "us; gRPC port +", (rec.grpc.summary().p50 - l).toFixed(0), "us");
ca.close();
for (const node of [a, b, c]) await node.terminate();
await redis.stop();
for (const d of dirs) await d.remove();
