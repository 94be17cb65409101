// The bounds of asynchronous side-effect retries, in process (so the retry policy and
// the log are at hand): test/fixtures/effects-orders on the embedded store, with a side
// effect to a service that is never deployed.
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import protobuf from "protobufjs";
import { buildBeforeAll } from "../helpers/built-module.js";
import { EntityManager } from "../../host/entities/entity-manager.js";
import type { RetryPolicy } from "../../host/entities/effect-runner.js";
import { Router } from "../../host/entities/router.js";
import { openStore } from "../../host/journal/open-store.js";
import { setLogger } from "../../host/log.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const ORDERS = "keystate.test.orders.Orders";
const wasm = buildBeforeAll(test, join(REPO_ROOT, "test", "fixtures", "effects-orders"));
const logged: Array<Record<string, unknown>> = [];

test.before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) logged.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  setLogger(pino({ level: "info" }, sink));
});

async function orders(t: ExecutionContext, policy: RetryPolicy): Promise<Router> {
  const store = await openStore({ dataDir: await tempDirFor(t, "effects-retry") });
  const registry = new ModuleRegistry(store);
  const entities = new EntityManager(store);
  const router = new Router(registry, entities, { sideEffectRetry: policy });
  t.teardown(async () => {
    router.close();
    entities.close();
    await store.close();
  });
  await registry.deploy(await readFile(wasm()));
  return router;
}

const Order = new protobuf.Type("Order")
  .add(new protobuf.Field("orderId", 1, "string"))
  .add(new protobuf.Field("account", 2, "string"))
  .add(new protobuf.Field("amount", 3, "int64"))
  .add(new protobuf.Field("ledgerService", 4, "string"));
const OrderState = new protobuf.Type("OrderState").add(new protobuf.Field("orderId", 1, "string")).add(new protobuf.Field("placed", 2, "int64"));
new protobuf.Root().add(Order).add(OrderState);

const placeAsync = (router: Router, orderId: string) =>
  router.call(ORDERS, "PlaceWithAsyncEffect", Order.encode({ orderId, account: "x", amount: 1, ledgerService: "keystate.test.nowhere.Nowhere" }).finish());
const linesFor = (orderId: string, msg: string) => logged.filter((l) => l.entityKey === orderId && l.msg === msg);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial("a failing async side effect is retried with backoff up to its bound, then given up with an error log", async (t) => {
  const router = await orders(t, { attempts: 3, initialDelayMs: 40, maxDelayMs: 60 });
  const started = Date.now();
  const reply = OrderState.decode(await placeAsync(router, "r1")) as unknown as { orderId: string };
  t.is(reply.orderId, "r1", "the caller has its reply whatever becomes of the side effect");
  t.is(router.pendingSideEffects, 1, "scheduled, not yet run");

  const deadline = Date.now() + 3_000;
  while (linesFor("r1", "asynchronous side effect failed; giving up").length === 0 && Date.now() < deadline) await sleep(10);
  const elapsed = Date.now() - started;
  t.deepEqual(linesFor("r1", "asynchronous side effect failed; retrying").map((l) => [l.attempt, l.retryInMs]), [[1, 40], [2, 60]], "backoff doubles, capped");
  const gaveUp = linesFor("r1", "asynchronous side effect failed; giving up");
  t.is(gaveUp.length, 1);
  t.like(gaveUp[0], { level: 50, attempt: 3, module: "effects-orders", service: ORDERS, target: "keystate.test.nowhere.Nowhere/Record" });
  t.true(elapsed >= 100, `retries waited their backoff (${elapsed} ms)`);
  await sleep(200);
  t.is(router.pendingSideEffects, 0);
  t.is(linesFor("r1", "asynchronous side effect failed; retrying").length, 2, "no attempt after giving up");
});

test.serial("closing the router cancels retries still waiting", async (t) => {
  const router = await orders(t, { attempts: 5, initialDelayMs: 100, maxDelayMs: 100 });
  await placeAsync(router, "r2");
  const deadline = Date.now() + 2_000;
  while (linesFor("r2", "asynchronous side effect failed; retrying").length === 0 && Date.now() < deadline) await sleep(5);
  t.is(linesFor("r2", "asynchronous side effect failed; retrying").length, 1);
  t.is(router.pendingSideEffects, 1);
  router.close();
  t.is(router.pendingSideEffects, 0);
  await sleep(400);
  t.is(linesFor("r2", "asynchronous side effect failed; retrying").length, 1, "nothing ran after close");
});
