// The gRPC ingress under h2load, in one process, to run under the profiler:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import=tsx bench/profile/grpc-ingress.ts [seconds] [keys]
//   node --import=tsx bench/profile/top.ts /tmp/prof/CPU.*.0.001.cpuprofile   (the main thread's profile)
// The real GrpcIngress in front of the node's call path with storage acknowledging at once
// (no Redis), Counter/Increase on `keys` keys (one h2load process each, 1 connection x 8
// streams), so the profile shows the ingress and command path without waiting on storage.
// It also prints this process's CPU time per answered call: on a box shared with other
// work that moves far less between runs than req/s does.
import { readFileSync } from "node:fs";
import { GrpcIngress } from "../../host/ingress/grpc-server.js";
import { grpcFrame } from "../lib/grpc-client.js";
import { GRPC_HEADERS, runLoad } from "../lib/h2load.js";
import { inProcessNode } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { counterWorkload as w, grpcPath } from "../lib/workloads.js";

const seconds = Number(process.argv[2] ?? 8);
const keys = Number(process.argv[3] ?? 8);
const wasm = requireModuleBuilt("profile", w.module);
const node = await inProcessNode("discard");
const ingress = new GrpcIngress(node.registry, node.router);
await node.registry.deploy(readFileSync(wasm));
const port = await ingress.listen("127.0.0.1", 0);
const requests = Array.from({ length: keys }, (_, i) => ({
  url: `http://127.0.0.1:${port}${grpcPath(w, w.writeMethod)}`,
  body: grpcFrame(w.writePayload(`k-${i}`)),
}));
const cpuBefore = process.cpuUsage();
const result = await runLoad({ requests, headers: GRPC_HEADERS }, { durationS: seconds, connections: 1, streamsPerConnection: 8 });
const cpu = process.cpuUsage(cpuBefore);
const cpuPerCall = (cpu.user + cpu.system) / result.succeeded;
process.stdout.write(`grpc ingress, ${keys} key(s): ${result.rps.toFixed(0)} req/s, p50 ${result.latency.p50.toFixed(0)} us, ${result.succeeded} ok, ${result.failed} failed, cpu ${cpuPerCall.toFixed(1)} us/call\n`);
// grpc-js keeps its server open; the profile is written at exit.
process.exit(0);
