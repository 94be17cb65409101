// Durable timers (ctx.schedule / ctx.cancelTimer) against real `keystate serve` processes:
// test/fixtures/timers has an Alarms value entity whose timers call back its own Fire (which
// counts firings and keeps the idempotency key it came with), and an AlarmDesk action that
// schedules the same from a stateless handler.
import test from "ava";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { status } from "@grpc/grpc-js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { percentile, runTimers } from "../helpers/timers-run.js";

const PROTO_DIR = join(REPO_ROOT, "test", "fixtures", "timers", "proto");
const wasm = buildBeforeAll(test, join(REPO_ROOT, "test", "fixtures", "timers"));
let redis: RunningRedis | undefined;

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  await redis?.stop();
});

function clients(port: number): { alarms: ContractClient; desk: ContractClient; close(): void } {
  const alarms = contractClient(PROTO_DIR, "alarms.proto", "keystate.test.timers.Alarms", port);
  const desk = contractClient(PROTO_DIR, "alarms.proto", "keystate.test.timers.AlarmDesk", port);
  return { alarms, desk, close: () => (alarms.close(), desk.close()) };
}

async function firedCount(alarms: ContractClient, id: string): Promise<number> {
  return Number((await alarms.methods.Get!({ id })).fired);
}

/** Polls until alarm `id` has fired `count` times; resolves the ms it took. */
async function untilFired(alarms: ContractClient, id: string, count: number, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if ((await firedCount(alarms, id)) >= count) return Date.now() - start;
    await sleep(25);
  }
  throw new Error(`alarm ${id} did not fire ${count} time(s) within ${timeoutMs} ms`);
}

for (const store of ["embedded", "redis"] as const) {
  test.serial(`${store}: a timer fires once after its delay, with its idempotency key; a cancelled one never; a rescheduled name fires once, at its new time`, async (t) => {
    const node = await serveWith(t, wasm(), store === "redis" ? `${redis!.url}/${store === "redis" ? 1 : 0}` : undefined);
    const { alarms, close } = clients(node.grpcPort);
    t.teardown(close);

    const scheduledAt = Date.now();
    await alarms.methods.Schedule!({ id: "plain", delayMs: "400" });
    const waited = await untilFired(alarms, "plain", 1);
    t.true(Date.now() - scheduledAt >= 400, "not before its delay");
    t.true(waited < 3_000, `fired within a few hundred ms of its due time (took ${waited} ms after scheduling)`);
    const fired = await alarms.methods.Get!({ id: "plain" });
    t.regex(fired.lastIdempotencyKey, /^alarms\/plain@\d+\.t0\./, "delivered with the outbox entry's id as its idempotency key");

    await alarms.methods.Schedule!({ id: "cancelled", delayMs: "500", name: "reminder" });
    await alarms.methods.Cancel!({ id: "cancelled", name: "reminder" });
    // One command scheduling the name twice keeps the second; the first never fires.
    await alarms.methods.Schedule!({ id: "replaced", delayMs: "300", name: "reminder", secondDelayMs: "1200" });
    await sleep(900);
    t.is(await firedCount(alarms, "cancelled"), 0, "cancelled before its time: never fires");
    t.is(await firedCount(alarms, "replaced"), 0, "the replaced 300 ms timer did not fire");
    await untilFired(alarms, "replaced", 1);
    await sleep(700);
    t.is(await firedCount(alarms, "cancelled"), 0);
    t.is(await firedCount(alarms, "replaced"), 1, "the name's last timer fired, once");
  });
}

test.serial("an action schedules and cancels named timers too (stored before its reply)", async (t) => {
  const node = await serveWith(t, wasm());
  const { alarms, desk, close } = clients(node.grpcPort);
  t.teardown(close);
  await desk.methods.Schedule!({ id: "from-desk", delayMs: "300" });
  await desk.methods.Schedule!({ id: "desk-cancelled", delayMs: "600", name: "later" });
  await desk.methods.Cancel!({ id: "desk-cancelled", name: "later" });
  await untilFired(alarms, "from-desk", 1);
  await sleep(1_000);
  t.is(await firedCount(alarms, "from-desk"), 1);
  t.is(await firedCount(alarms, "desk-cancelled"), 0);
});

test.serial("a bad timer is refused with INVALID_ARGUMENT and stores nothing", async (t) => {
  const node = await serveWith(t, wasm());
  const { alarms, close } = clients(node.grpcPort);
  t.teardown(close);
  const refused = await statusOf(alarms.methods.Cancel!({ id: "nameless", name: "" }));
  t.is(refused.code, status.INVALID_ARGUMENT);
  t.regex(refused.details, /cancelTimer\(\) needs the name/);
  t.is(Number((await alarms.methods.Get!({ id: "nameless" })).cancelled), 0, "the failed command stored nothing");
});

test.serial("timers survive SIGKILL: 200 timers due over 3 s, the node killed in the middle, all fire, each once", async (t) => {
  const report = await runTimers({ wasm: wasm(), count: 200, spreadMs: 3_000, killAtMs: 2_000, store: "redis" });
  t.log(
    `fired once ${report.firedOnce}/${report.scheduled}; lateness p50 ${percentile(report.latenessMs, 50)} ms, p99 ${percentile(report.latenessMs, 99)} ms ` +
      `(before the kill p50 ${percentile(report.latenessBeforeKillMs, 50)} / p99 ${percentile(report.latenessBeforeKillMs, 99)} ms); ` +
      `restart ${report.restartMs} ms, ${report.dueWhileDown} due while down`,
  );
  t.deepEqual(report.neverFired, [], "every timer fired");
  t.deepEqual(report.firedTwice, [], "none fired twice (a redelivery is deduplicated by its idempotency key)");
  t.is(report.firedOnce, 200);
  t.true(report.latenessMs.length >= 200, "each firing was logged with its lateness");
  t.true(report.latenessBeforeKillMs.length > 0, "some fired before the kill");
  t.true(percentile(report.latenessBeforeKillMs, 50) < 250, "on a running node a timer fires within a few hundred ms of its due time");
});
