// Deadlines and cancellation reach the entity, on a real `keystate serve` process:
// test/fixtures/slow-entity's Work command busy-loops in the guest, so calls back up in
// one entity's mailbox. A call whose caller is gone (deadline passed, HTTP client hung
// up) before it reached the guest never runs and no longer holds the mailbox; what ran
// stays done. The node's own /metrics tell which calls ran (answered OK on the server)
// and which were skipped (DEADLINE_EXCEEDED), and the entity's count must
// equal the number that ran.
import test, { type ExecutionContext } from "ava";
import { status } from "@grpc/grpc-js";
import { readFile } from "node:fs/promises";
import protobuf from "protobufjs";
import { startCallContext } from "../../host/entities/call-context.js";
import { KeystateError } from "../../host/errors.js";
import { startNode } from "../../host/node.js";
import { join } from "node:path";
import { deploy, postJson } from "../helpers/deployed-node.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { callLabels, scrapeMetrics } from "../helpers/metrics-scrape.js";
import { fixtureDir, useBuiltFixture } from "../helpers/fixture-build.js";
import { startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const FIXTURE_DIR = fixtureDir("slow-entity");
const SLOW = "keystate.test.slow.Slow";
const wasm = useBuiltFixture(test, "slow-entity");

async function slowNode(t: ExecutionContext): Promise<{ node: NodeProcess; slow: ContractClient }> {
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "deadlines") });
  t.teardown(() => node.kill());
  await deploy(node, wasm());
  const slow = contractClient(join(FIXTURE_DIR, "proto"), "slow.proto", SLOW, node.grpcPort);
  t.teardown(() => slow.close());
  return { node, slow };
}

/**
 * Loop iterations per Work command: half the default fuel budget (10M units, one per loop
 * iteration), so never stopped by it, and 10 ms (optimized) to 150 ms (baseline-compiled,
 * busy machine) of guest work here — far above the node's per-call gRPC cost either way.
 * Fixed rather than calibrated: the JIT tier changes the speed tenfold between runs.
 */
const SPINS = 5_000_000;

/**
 * From the node's /metrics: Work calls answered OK (they ran), answered DEADLINE_EXCEEDED
 * (skipped), answered CANCELLED, and the time guest commands of the service took in all.
 */
async function workOutcomes(node: NodeProcess): Promise<{ ok: number; skipped: number; cancelled: number; guestSeconds: number; fuel: number }> {
  const samples = (await scrapeMetrics(node.adminUrl)).samples;
  const labels = (extra = "") => callLabels(SLOW, "Work", "grpc", extra);
  let failures = 0;
  for (const [key, value] of samples) if (key.startsWith(`keystate_call_failures_total${labels().slice(0, -1)},status=`)) failures += value;
  const failed = (name: string) => samples.get(`keystate_call_failures_total${labels(`,status="${name}"`)}`) ?? 0;
  return {
    ok: (samples.get(`keystate_calls_total${labels()}`) ?? 0) - failures,
    skipped: failed("DEADLINE_EXCEEDED"),
    cancelled: failed("CANCELLED"),
    guestSeconds: samples.get(`keystate_guest_call_duration_seconds_sum{service="${SLOW}"}`) ?? 0,
    fuel: samples.get(`keystate_guest_fuel_used_total{service="${SLOW}"}`) ?? 0,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const count = async (slow: ContractClient, key: string) => Number((await slow.methods.Get!({ key })).count);

test("calls whose deadline passed while queued never run; a normal call after them answers promptly", async (t) => {
  const { node, slow } = await slowNode(t);
  const spins = SPINS;
  t.is(await count(slow, "hot"), 0); // activates the entity; no Work ran on it yet
  const before = await workOutcomes(node);

  // 200 commands of milliseconds each: seconds of guest work if they all ran. Their 300 ms
  // deadline passes after the first few dozen at most.
  const N = 200;
  const burst = Array.from({ length: N }, () => slow.methods.Work!({ key: "hot", spins }, { deadlineMs: 300 }));
  const outcomes = Promise.allSettled(burst);
  await new Promise((resolve) => setTimeout(resolve, 400));

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
  // What the skipped commands would have cost, from the guest time the ones that ran took.
  // (The one Get in between adds microseconds to the sum, and is not counted as a Work.)
  const perCommandMs = ((after_.guestSeconds - before.guestSeconds) / ranOnServer) * 1000;
  const skippedWorkMs = skipped * perCommandMs;
  t.log({ spins, latencyMs: Math.round(latency), ranOnServer, skipped, okClient, countAfter: after, perCommandMs, skippedWorkMs });
  t.true(skipped > N / 2, `most of the burst was skipped (${skipped} of ${N})`);
  // The node saw each as what it was: a passed deadline, not a client cancel.
  t.is(after_.cancelled - before.cancelled, 0, "no call of the burst was counted CANCELLED");
  t.is(ranOnServer + skipped, N, "every call of the burst either ran or was counted DEADLINE_EXCEEDED");
  t.is(after, ranOnServer, "the count is exactly the Work commands that ran: skipped ones changed nothing");
  t.true(okClient <= after, "every call the client saw succeed is in the count");
  t.true(ranOnServer >= 1 && ranOnServer < N / 2, `some of the burst ran before the deadline (${ranOnServer})`);
  // One fuel unit per loop iteration: the commands that ran used at least their spins; skipped ones none.
  const fuel = after_.fuel - before.fuel;
  t.true(fuel >= spins * ranOnServer && fuel < (spins + 100_000) * ranOnServer + 100_000, `fuel ${fuel} for ${ranOnServer} x ${spins} spins`);
  t.true(skippedWorkMs > 300, `the skipped commands were worth waiting for: ~${Math.round(skippedWorkMs)} ms of guest work`);
  t.true(latency < skippedWorkMs / 3, `the Get after the burst answered in ${Math.round(latency)} ms, not after the ~${Math.round(skippedWorkMs)} ms the skipped commands would have taken`);

  // The entity keeps serving normally, and what ran stays done.
  t.is(Number((await slow.methods.Work!({ key: "hot", spins: 0 })).count), after + 1);
});

/** Keeps the entity `key` (and the node's event loop: guest calls are synchronous) busy with `commands` Work commands. */
function keepBusy(slow: ContractClient, key: string, commands: number): Promise<unknown> {
  return Promise.all(Array.from({ length: commands }, () => slow.methods.Work!({ key, spins: SPINS })));
}

test("a call that arrives with its deadline already passed is answered DEADLINE_EXCEEDED and never runs", async (t) => {
  const { slow } = await slowNode(t);
  // 10 commands of 6+ ms each queued first; the late call's 20 ms deadline passes before its
  // turn. Sent on the same channel right after them, so it reaches the node after them (HTTP/2
  // streams of one connection arrive in order): no sleep to guess.
  const busy = keepBusy(slow, "k", 10);
  const late = await statusOf(slow.methods.Work!({ key: "k", spins: 0 }, { deadlineMs: 20 }));
  t.is(late.code, status.DEADLINE_EXCEEDED);
  await busy;
  t.is(await count(slow, "k"), 10, "the late call did not run");
});

test("an HTTP/JSON call with a grpc-timeout header that passes while it is queued is answered 504 DEADLINE_EXCEEDED and never runs", async (t) => {
  const { node, slow } = await slowNode(t);
  const work = (headers: Record<string, string>) =>
    fetch(`${node.adminUrl}/${SLOW}/Work`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ key: "t", spins: 0 }) });
  // A malformed header is the client's mistake: 400, with the format in the message.
  const malformed = await work({ "grpc-timeout": "20ms" });
  t.is(malformed.status, 400);
  t.like(await malformed.json(), { error: { status: "INVALID_ARGUMENT" } });

  // A stream of 20 commands of 6+ ms each, one sent every 2 ms (over a gRPC channel already
  // connected): they come in faster than the entity runs them, so its queue grows. The HTTP
  // call comes in the middle of the stream, with a 20 ms deadline that passes before its turn.
  // It travels on another connection, so it can still find the entity idle (a slow client
  // side on a loaded box) and run at once (200, and it ran): whatever the answer, it must say
  // what happened; a 504 must have been seen once in a few tries, and every 504'd call never ran.
  const STREAM = 20;
  let expected = await count(slow, "t");
  let timedOut = 0;
  for (let attempt = 0; attempt < 4 && timedOut === 0; attempt++) {
    const busy = Promise.all(Array.from({ length: STREAM }, (_, i) => sleep(2 * i).then(() => slow.methods.Work!({ key: "t", spins: SPINS }))));
    await sleep(STREAM);
    const late = await work({ "grpc-timeout": "20m" });
    await busy;
    expected += STREAM;
    if (late.status === 504) {
      t.like(await late.json(), { error: { status: "DEADLINE_EXCEEDED" } });
      timedOut++;
    } else {
      t.is(late.status, 200, "a call that overtook the busy ones ran and succeeded");
      expected += 1;
    }
    t.is(await count(slow, "t"), expected, "a 504'd call did not run; a 200'd one ran once");
  }
  t.is(timedOut, 1, "a call queued behind the busy ones was answered 504 DEADLINE_EXCEEDED");
  // A generous timeout changes nothing for a call that finishes in time.
  const inTime = await work({ "grpc-timeout": "30S" });
  t.is(inTime.status, 200);
  t.is(await count(slow, "t"), expected + 1);
});

test("an HTTP/JSON client that hangs up mid-request: the call ends CANCELLED (not an error), nothing runs, the node keeps serving", async (t) => {
  const { node, slow } = await slowNode(t);
  // Headers and half a body, then the client gives up.
  const abandon = new AbortController();
  const half = new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(new TextEncoder().encode('{"key":"h","spi')) });
  const gone = fetch(`${node.adminUrl}/${SLOW}/Work`, { method: "POST", headers: { "content-type": "application/json" }, body: half, duplex: "half", signal: abandon.signal } as RequestInit).catch(
    (err: Error) => err.name,
  );
  await waitFor(async () => (await scrapeMetrics(node.adminUrl)).samples.get(`keystate_calls_total${callLabels(SLOW, "Work", "http")}`) === 1);
  abandon.abort();
  t.is(await gone, "AbortError");

  const cancelled = `keystate_call_failures_total${callLabels(SLOW, "Work", "http", ',status="CANCELLED"')}`;
  await waitFor(async () => (await scrapeMetrics(node.adminUrl)).samples.get(cancelled) === 1);
  const failedLines = () => node.output.join("").split("\n").filter((line) => line.includes('"call failed"') && line.includes('"ingress":"http"'));
  await waitFor(async () => failedLines().length > 0); // the log line may trail the metrics
  const failed = failedLines();
  t.is(failed.length, 1);
  t.like(JSON.parse(failed[0]!), { status: "CANCELLED", level: 30 }, "logged as a routine cancel, not an internal error");
  t.is(await count(slow, "h"), 0);
  t.is((await postJson(`${node.adminUrl}/${SLOW}/Work`, { key: "h", spins: 0 })).body.count, "1");
});

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("in process: a cancel reaches a command queued behind a busy entity through the Router, and it never runs", async (t) => {
  const node = await startNode({ grpcPort: 0, httpPort: 0, dataDir: await tempDirFor(t, "deadlines-inproc"), insecureAdmin: true });
  t.teardown(() => node.stop());
  await node.registry.deploy(await readFile(wasm()));
  const work = (key: string) => protobuf.Writer.create().uint32((1 << 3) | 2).string(key).uint32(2 << 3).int32(1000).finish();
  const countOf = (reply: Uint8Array) => {
    const reader = protobuf.Reader.create(reply);
    let count = 0;
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      if (tag === 1 << 3) count = reader.int32();
      else reader.skipType(tag & 7);
    }
    return count;
  };

  // The first command waits for the entity to load its value; the second queues behind it.
  const first = node.router.call(SLOW, "Work", work("q"), { context: { requestId: "first" } });
  const scope = startCallContext("second", undefined);
  const second = node.router.call(SLOW, "Work", work("q"), { context: scope.context });
  scope.cancel();
  const err = await t.throwsAsync(second);
  t.is((err as KeystateError).status, status.CANCELLED);
  t.is(countOf(await first), 1);
  t.is(countOf(await node.router.call(SLOW, "Get", protobuf.Writer.create().uint32((1 << 3) | 2).string("q").finish())), 1, "the cancelled command did not run");
});
