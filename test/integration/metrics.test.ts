// GET /metrics end to end: after a burst of calls over HTTP/JSON and gRPC, the Prometheus
// exposition shows exactly the calls, failures and latency observations they caused.
import test from "ava";
import { join } from "node:path";
import { contractClient, statusOf } from "../helpers/grpc-client.js";
import { deploy, ensureExample, fetchJson, postJson, startDeployedNode } from "../helpers/deployed-node.js";
import { callLabels as labels, scrapeMetrics as scrape } from "../helpers/metrics-scrape.js";
import { REPO_ROOT, startNodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const CART = "keystate.examples.shoppingcart.ShoppingCart";

test("a burst of N calls shows as N calls, its failures by status, and N latency observations", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  const node = await startDeployedNode("metrics", [cart]);
  t.teardown(() => node.stop());
  const grpc = contractClient(join(REPO_ROOT, "modules", "shopping-cart", "proto"), "shoppingcart.proto", CART, node.node.grpcPort);
  t.teardown(() => grpc.close());

  const before = await scrape(node.http);
  t.regex(before.contentType, /^text\/plain/);
  t.is(before.samples.get("keystate_modules_deployed"), 1);
  t.is(before.samples.get('keystate_module_deploys_total{result="ok"}'), 1);
  t.is(before.samples.get("keystate_entities_active"), 0);

  const N = 7;
  for (let i = 0; i < N; i++) {
    t.is((await postJson(`${node.http}/cart/user-${i % 3}/items/add`, { productId: `p${i}`, name: "P", quantity: 1 })).status, 200);
  }
  await Promise.all([0, 1, 2].map((i) => grpc.methods.GetCart!({ userId: `user-${i}` })));
  t.is((await fetchJson(`${node.http}/cart/user-0/items/nothing/remove`, { method: "POST" })).status, 404);
  t.is((await statusOf(grpc.methods.RemoveItem!({ userId: "user-1", productId: "nothing" }))).code, 5);
  t.is((await postJson(`${node.http}/cart/user-2/items/add`, { productId: "p", quantity: "lots" })).status, 400);
  t.is((await fetchJson(`${node.http}/not/a/route`)).status, 404);

  const after = (await scrape(node.http)).samples;
  const http = (method: string, extra = "") => labels(CART, method, "http", extra);
  const grpcLabels = (method: string, extra = "") => labels(CART, method, "grpc", extra);
  t.is(after.get(`keystate_calls_total${http("AddItem")}`), N + 1, "N adds and the refused one");
  t.is(after.get(`keystate_calls_total${grpcLabels("GetCart")}`), 3);
  t.is(after.get(`keystate_calls_total${http("RemoveItem")}`), 1);
  t.is(after.get(`keystate_calls_total${grpcLabels("RemoveItem")}`), 1);
  t.is(after.get(`keystate_call_failures_total${http("RemoveItem", ',status="NOT_FOUND"')}`), 1);
  t.is(after.get(`keystate_call_failures_total${grpcLabels("RemoveItem", ',status="NOT_FOUND"')}`), 1);
  t.is(after.get(`keystate_call_failures_total${http("AddItem", ',status="INVALID_ARGUMENT"')}`), 1);
  t.is(after.get(`keystate_call_failures_total${grpcLabels("GetCart", ',status="NOT_FOUND"')}`), undefined, "successful calls are not failures");
  t.is(after.get(`keystate_call_duration_seconds_count${http("AddItem")}`), N + 1);
  t.is(after.get(`keystate_call_duration_seconds_count${grpcLabels("GetCart")}`), 3);
  t.is(after.get(`keystate_call_duration_seconds_bucket{le="+Inf",service="${CART}",method="GetCart",ingress="grpc"}`), 3);
  t.true(after.get(`keystate_call_duration_seconds_sum${http("AddItem")}`)! > 0);
  // An unmatched route names no method, so it is not a call of any.
  t.false([...after.keys()].some((key) => key.includes("not/a/route")));
  t.is(after.get("keystate_entities_active"), 3, "three carts were touched and none has passivated yet");
  t.true(after.has("process_cpu_user_seconds_total"), "process metrics are exported too");

  // The entity layer's hooks: activations, journal appends (7 sequential adds: 7 appends of
  // one event each; refusals append nothing), and one guest call per command that reached
  // the entity (the JSON that did not parse never did).
  t.is(after.get(`keystate_entity_activations_total{service="${CART}"}`), 3);
  t.is(after.get(`keystate_entity_passivations_total{service="${CART}"}`), undefined, "nothing passivated");
  const journal = (name: string) => after.get(`keystate_journal_append_${name}{persistence_id="shopping-cart"}`);
  t.is(journal("events_count"), N);
  t.is(journal("events_sum"), N);
  t.is(journal("duration_seconds_count"), N);
  t.true(journal("duration_seconds_sum")! > 0);
  t.is(after.get(`keystate_guest_call_duration_seconds_count{service="${CART}"}`), N + 3 + 2, "N adds, 3 gets, 2 refused removes");
  t.true(after.get(`keystate_guest_call_duration_seconds_sum{service="${CART}"}`)! > 0);
  t.true(after.get(`keystate_guest_fuel_used_total{service="${CART}"}`)! > N + 3 + 2, "each command runs at least one metered function");
});

test("entities pushed out by the memory budget count as passivated, and come back as new activations", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  // A 1-byte budget: after each batch every other idle entity leaves memory.
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "metrics-passivation"), extraArgs: ["--entity-memory-budget", "1"] });
  t.teardown(() => node.kill());
  await deploy(node, cart);
  const http = node.adminUrl;
  for (const user of ["a", "b", "c"]) t.is((await postJson(`${http}/cart/${user}/items/add`, { productId: "p", name: "P", quantity: 1 })).status, 200);
  let samples = (await scrape(http)).samples;
  t.is(samples.get(`keystate_entity_activations_total{service="${CART}"}`), 3);
  t.is(samples.get(`keystate_entity_passivations_total{service="${CART}"}`), 2, "a and b left when the next cart ran");
  t.is(samples.get("keystate_entities_active"), 1);

  // Cart a comes back from its journal (a fourth activation), and c leaves.
  t.deepEqual((await fetchJson(`${http}/carts/a`)).body, { items: [{ productId: "p", name: "P", quantity: 1 }] });
  samples = (await scrape(http)).samples;
  t.is(samples.get(`keystate_entity_activations_total{service="${CART}"}`), 4);
  t.is(samples.get(`keystate_entity_passivations_total{service="${CART}"}`), 3);
});

test("a counter idle past --park-after-ms shows as parked, still active; its next call answers from it with no new activation", async (t) => {
  const counter = (await ensureExample("counter"))!;
  const COUNTER = "keystate.examples.counter.Counter";
  // 0: parked by the first idle sweep (once a second) that sees it idle.
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "metrics-parked"), extraArgs: ["--park-after-ms", "0"] });
  t.teardown(() => node.kill());
  await deploy(node, counter);
  const http = node.adminUrl;
  t.deepEqual((await postJson(`${http}/counters/c1/increase`, { value: 5 })).body, { value: "5" });
  let samples = (await scrape(http)).samples;
  t.is(samples.get("keystate_entities_active"), 1);
  const deadline = Date.now() + 5_000;
  while (samples.get("keystate_entities_parked") !== 1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    samples = (await scrape(http)).samples;
  }
  t.is(samples.get("keystate_entities_parked"), 1, "parked within a few sweeps");
  t.is(samples.get("keystate_entities_active"), 1, "a parked entity is still resident");

  t.deepEqual((await fetchJson(`${http}/counters/c1`)).body, { value: "5" });
  // (Whether it is a record now is not asserted here: the next sweep may park it again at once.)
  samples = (await scrape(http)).samples;
  t.is(samples.get(`keystate_entity_activations_total{service="${COUNTER}"}`), 1, "taken back from its row, not activated again");
  t.is(samples.get(`keystate_entity_passivations_total{service="${COUNTER}"}`), undefined);
});
