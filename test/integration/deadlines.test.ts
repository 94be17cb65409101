// Deadlines and cancellation reach the entity, on a real `keystate serve` process:
// test/fixtures/slow-entity's Work command busy-loops in the guest, so calls back up in
// one entity's mailbox. A call whose caller is gone (deadline passed, HTTP client hung
// up) before it reached the guest never runs and no longer holds the mailbox; what ran
// stays done. The node's own /metrics tell which calls ran (answered OK on the server)
// and which were skipped (DEADLINE_EXCEEDED / CANCELLED), and the entity's count must
// equal the number that ran.
import test, { type ExecutionContext } from "ava";
import { status } from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { deploy, postJson } from "../helpers/deployed-node.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { callLabels, scrapeMetrics } from "../helpers/metrics-scrape.js";
import { KEYSTATE_BIN, REPO_ROOT, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { makeTempDir, removeDir, tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "slow-entity");
const SLOW = "keystate.test.slow.Slow";
let buildDir = "";
let WASM = "";

test.before(async () => {
  buildDir = await makeTempDir("slow-build");
  WASM = join(buildDir, "slow-entity.wasm");
  await run(process.execPath, [KEYSTATE_BIN, "build", FIXTURE_DIR, "-o", WASM], { cwd: REPO_ROOT });
});

test.after.always(async () => {
  if (buildDir) await removeDir(buildDir);
});

async function slowNode(t: ExecutionContext): Promise<{ node: NodeProcess; slow: ContractClient }> {
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "deadlines") });
  t.teardown(() => node.kill());
  await deploy(node, WASM);
  const slow = contractClient(join(FIXTURE_DIR, "proto"), "slow.proto", SLOW, node.grpcPort);
  t.teardown(() => slow.close());
  return { node, slow };
}

/** Guest work per command: ~10 ms (well above the node's per-call gRPC cost, well inside the default fuel budget). */
const COMMAND_MS = 10;
const MAX_SPINS = 5_000_000;

/** Loop iterations that keep the guest busy for about `ms` (measured on this machine, this node), at most MAX_SPINS. */
async function spinsFor(slow: ContractClient, ms: number): Promise<number> {
  const probe = 1_000_000;
  const time = async (spins: number) => {
    const start = performance.now();
    await slow.methods.Work!({ key: "calibrate", spins });
    return performance.now() - start;
  };
  await time(probe); // warm up: activation, JIT
  const busy = Math.min(await time(probe), await time(probe)) - Math.min(await time(0), await time(0));
  return Math.min(MAX_SPINS, Math.max(1, Math.round((probe * ms) / Math.max(busy, 0.05))));
}

/** Work calls the node answered OK (they ran) and answered DEADLINE_EXCEEDED or CANCELLED (skipped), from its /metrics. */
async function workOutcomes(node: NodeProcess): Promise<{ ok: number; skipped: number }> {
  const samples = (await scrapeMetrics(node.adminUrl)).samples;
  const labels = (extra = "") => callLabels(SLOW, "Work", "grpc", extra);
  let failures = 0;
  for (const [key, value] of samples) if (key.startsWith(`keystate_call_failures_total${labels().slice(0, -1)},status=`)) failures += value;
  const failed = (name: string) => samples.get(`keystate_call_failures_total${labels(`,status="${name}"`)}`) ?? 0;
  return { ok: (samples.get(`keystate_calls_total${labels()}`) ?? 0) - failures, skipped: failed("DEADLINE_EXCEEDED") + failed("CANCELLED") };
}

const count = async (slow: ContractClient, key: string) => Number((await slow.methods.Get!({ key })).count);

test("calls whose deadline passed while queued never run; a normal call after them answers promptly", async (t) => {
  const { node, slow } = await slowNode(t);
  const spins = await spinsFor(slow, COMMAND_MS);
  t.is(await count(slow, "hot"), 0); // activates the entity; no Work ran on it yet
  const before = await workOutcomes(node);

  // 200 commands of a few ms each: ~1 s of guest work if they all ran. Their 200 ms deadline
  // passes after the first dozen or so.
  const N = 200;
  const burst = Array.from({ length: N }, () => slow.methods.Work!({ key: "hot", spins }, { deadlineMs: 200 }));
  const outcomes = Promise.allSettled(burst);
  await new Promise((resolve) => setTimeout(resolve, 300));

  const start = performance.now();
  const after = await count(slow, "hot");
  const latency = performance.now() - start;
  const settled = await outcomes;
  const okClient = settled.filter((s) => s.status === "fulfilled").length;
  for (const s of settled) {
    if (s.status === "rejected") t.is((s.reason as { code: number }).code, status.DEADLINE_EXCEEDED);
  }

  const after_ = await workOutcomes(node);
  const ranOnServer = after_.ok - before.ok;
  const skipped = after_.skipped - before.skipped;
  t.log({ spins, latencyMs: Math.round(latency), ranOnServer, skipped, okClient, countAfter: after });
  t.true(skipped > N / 2, `most of the burst was skipped (${skipped} of ${N})`);
  t.is(after, ranOnServer, "the count is exactly the Work commands that ran: skipped ones changed nothing");
  t.true(okClient <= after, "every call the client saw succeed is in the count");
  t.true(ranOnServer >= 1 && ranOnServer < N / 2, `some of the burst ran before the deadline (${ranOnServer})`);
  t.true(latency < 400, `the Get after the burst answered in ${Math.round(latency)} ms, not after the ~${(N - ranOnServer) * COMMAND_MS} ms the skipped commands would have taken`);

  // The entity keeps serving normally, and what ran stays done.
  t.is(Number((await slow.methods.Work!({ key: "hot", spins: 0 })).count), after + 1);
});

/** Keeps the entity `key` (and the node's event loop: guest calls are synchronous) busy for about `ms`. */
function keepBusy(slow: ContractClient, key: string, spins: number, ms: number): Promise<unknown> {
  return Promise.all(Array.from({ length: Math.ceil(ms / COMMAND_MS) }, () => slow.methods.Work!({ key, spins })));
}

test("a call that arrives with its deadline already passed is answered DEADLINE_EXCEEDED and never runs", async (t) => {
  const { slow } = await slowNode(t);
  const spins = await spinsFor(slow, COMMAND_MS);
  // ~150 ms of work queued first; the late call's 20 ms deadline passes before the node reads it.
  const busy = keepBusy(slow, "k", spins, 150);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const late = await statusOf(slow.methods.Work!({ key: "k", spins: 0 }, { deadlineMs: 20 }));
  t.is(late.code, status.DEADLINE_EXCEEDED);
  await busy;
  t.is(await count(slow, "k"), Math.ceil(150 / COMMAND_MS), "the late call did not run");
});

test("an HTTP/JSON client that hangs up while the entity is busy: its command never runs", async (t) => {
  const { node, slow } = await slowNode(t);
  const spins = await spinsFor(slow, COMMAND_MS);
  const busy = keepBusy(slow, "h", spins, 300);
  // Sent once the entity runs its long batch (the node reads them only after it); one client
  // waits, the other gives up at 150 ms, while the node is still busy.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const waiting = postJson(`${node.adminUrl}/${SLOW}/Work`, { key: "h", spins: 0 });
  const abandon = new AbortController();
  const gone = fetch(`${node.adminUrl}/${SLOW}/Work`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: "h", spins: 0 }),
    signal: abandon.signal,
  }).catch((err: Error) => err.name);
  setTimeout(() => abandon.abort(), 100);
  t.is(await gone, "AbortError");
  await busy;
  t.is((await waiting).status, 200, "the client that waited got its answer");
  t.is(await count(slow, "h"), Math.ceil(300 / COMMAND_MS) + 1, "the busy calls and the waiting HTTP call ran; the abandoned one did not");
});
