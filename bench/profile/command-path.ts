// A steady load on one hot path, to run under the profiler:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import=tsx bench/profile/command-path.ts [guest|router|redis] [counter|shopping-cart] [seconds]
//   node --import=tsx bench/profile/top.ts /tmp/prof/*.cpuprofile
// guest: the guest call alone; router: the node's command path with storage acknowledging
// at once; redis: the same path durable on a fresh redis-server.
import { readFileSync } from "node:fs";
import { inProcessNode } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { fmtRate } from "../lib/progress.js";
import { startBenchRedis } from "../lib/redis.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";
import { guestOnlyRate, routerRate } from "../suites/throughput-inproc.js";

const [mode = "router", module = "counter", seconds = "5"] = process.argv.slice(2);
const workload = module === "counter" ? counterWorkload : cartWorkload;
const wasm = requireModuleBuilt("profile", workload.module);
const redis = mode === "redis" ? await startBenchRedis() : undefined;
const node = await inProcessNode(redis ? { redisUrl: redis.url } : "discard");
await node.registry.deploy(readFileSync(wasm));
const budget = Number(seconds) * 1000;
if (mode === "guest") {
  process.stdout.write(`${mode} ${module}: ${fmtRate(await guestOnlyRate(node, workload, budget))}\n`);
} else {
  const { rate, latency, cpuRate } = await routerRate(node, workload, 10_000, 256, budget);
  process.stdout.write(`${mode} ${module}: ${fmtRate(rate)}, p50 ${latency.p50.toFixed(0)} us, ${fmtRate(cpuRate)} per CPU second\n`);
}
await node.close();
await redis?.stop();
