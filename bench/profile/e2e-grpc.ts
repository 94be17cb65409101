// The end-to-end gRPC rows alone (Keystate `serve --redis`, bare grpc-js, FaaS + CRUD),
// 8 keys, pinned like the throughput suite, for before/after pairs of an ingress change
// without the in-process rows of `npm run bench:throughput`:
//   node --import=tsx bench/profile/e2e-grpc.ts [seconds] [always|everysec] [all|keystate]
// For Keystate it also prints calls per write: answered calls per Redis script run (INFO
// commandstats), how many calls shared each entity write (a few lease renewals a second count too).
// With CPU_PROF_DIR=<dir> the Keystate node runs under `node --cpu-prof` and is stopped
// with SIGTERM so that its profile is written (summarise it with bench/profile/top.ts).
// KEYSTATE_NODE_ARGS="--max-semi-space-size=32 ..." passes V8/Node flags to that node only.
// Prints one line per system: req/s, p50, p99, and for Keystate the CPU time its process
// spent per answered call. On a box shared with other work the rates swing by 2x between
// runs; CPU per call barely moves, so compare that first.
import { grpcFrame } from "../lib/grpc-client.js";
import { GRPC_HEADERS, runLoad, type LoadTarget } from "../lib/h2load.js";
import { tempDir } from "../lib/inproc.js";
import { startServe } from "../lib/node-process.js";
import { choosePinning } from "../lib/pinning.js";
import { ensureDist, requireModuleBuilt } from "../lib/prepare.js";
import { processCpuUs } from "../lib/process-cpu.js";
import { fmtRate, fmtRatio, fmtUs } from "../lib/progress.js";
import { setAppendFsync, startBenchRedis } from "../lib/redis.js";
import { grpcPath, counterWorkload as workload } from "../lib/workloads.js";
import { systems } from "../suites/throughput-systems.js";

const seconds = Number(process.argv[2] ?? 5);
const fsync = process.argv[3] === "everysec" ? "everysec" : "always";
const keystateOnly = process.argv[4] === "keystate";
ensureDist("e2e");
const wasm = requireModuleBuilt("e2e", workload.module);
const pin = choosePinning();
const redis = await startBenchRedis();
pin.pinPid(redis.pid, "load");
const rates = new Map<string, number>();

/**
 * Scripts Redis has run so far (INFO commandstats, EVALSHA and EVAL): each entity write is
 * one, as are the cluster's lease renewals (a few a second). The commands a script runs
 * are counted too, under their own names, so those are left out.
 */
async function redisScripts(): Promise<number> {
  const { Redis } = await import("ioredis");
  const client = new Redis(redis.url);
  try {
    const info = await client.info("commandstats");
    return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  } finally {
    client.disconnect();
  }
}

async function measure(name: string, target: (keys: string[]) => LoadTarget, pid?: number): Promise<void> {
  const run = `r${Date.now() % 100000}`;
  const keys = (label: string) => Array.from({ length: 8 }, (_, i) => `${run}-${label}-${i}`);
  const load = (target: LoadTarget, durationS: number) => runLoad(target, { durationS, connections: 1, streamsPerConnection: 8, pin: pin.load });
  await load(target(keys("warm")), 1);
  const cpuBefore = pid === undefined ? 0 : processCpuUs(pid);
  const scriptsBefore = pid === undefined ? 0 : await redisScripts();
  const result = await load(target(keys("k")), seconds);
  let cpu = "";
  if (pid !== undefined) {
    const cpuUs = processCpuUs(pid) - cpuBefore;
    // How many calls shared each entity write (the mailbox's batching).
    const scripts = (await redisScripts()) - scriptsBefore;
    cpu = `  cpu ${(cpuUs / result.succeeded).toFixed(1)} us/call  ${(result.succeeded / scripts).toFixed(2)} calls/write`;
  }
  rates.set(name, result.rps);
  process.stdout.write(`${name.padEnd(13)} ${fmtRate(result.rps).padStart(8)}  p50 ${fmtUs(result.latency.p50)}  p99 ${fmtUs(result.latency.p99)}  failed ${result.failed}${cpu}\n`);
}

try {
  if (fsync === "everysec") await setAppendFsync(redis.url, "everysec");
  // Keystate is started here rather than through systems() to know its pid.
  const dir = await tempDir("e2e");
  const profileDir = process.env.CPU_PROF_DIR;
  const extraNodeArgs = [...(process.env.KEYSTATE_NODE_ARGS?.split(" ").filter(Boolean) ?? []), ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [])];
  const serve = await startServe({ dataDir: dir.path, redisUrl: redis.url, deploy: [wasm], readyMessage: "deployed", prefix: pin.server, extraNodeArgs });
  const path = `http://127.0.0.1:${serve.grpcPort}${grpcPath(workload, workload.writeMethod)}`;
  try {
    await measure("Keystate", (keys) => ({ requests: keys.map((key) => ({ url: path, body: grpcFrame(workload.writePayload(key)) })), headers: GRPC_HEADERS }), serve.child.pid);
  } finally {
    if (profileDir) await new Promise((resolve) => serve.child.once("exit", resolve).kill("SIGTERM"));
    await serve.stop();
    await dir.remove();
  }
  if (!keystateOnly) {
    for (const spec of systems(workload, wasm, redis.url, pin, "not run here").slice(1, 3)) {
      const system = await spec.start();
      try {
        await measure(spec.name.includes("(a)") ? "bare grpc-js" : "FaaS + CRUD", (keys) => system.target(keys));
      } finally {
        await system.stop();
      }
    }
    const ks = rates.get("Keystate");
    process.stdout.write(`Keystate vs bare grpc-js ${fmtRatio(ks, rates.get("bare grpc-js"))}, vs FaaS + CRUD ${fmtRatio(ks, rates.get("FaaS + CRUD"))} (appendfsync ${fsync})\n`);
  }
} finally {
  await redis.stop();
}
