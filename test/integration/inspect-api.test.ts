// The inspection API (GET /entities/<service>/<key>[/events] on the admin port) and the
// `keystate inspect` verb, on one in-process node on the embedded store with the examples
// (shopping-cart: event-sourced; counter: value; presence: a Vote) and the fixtures
// crdt-kinds (replicated GCounter, ORSet, ORMap, LWWRegister) and echo-action (an action),
// every write made through the HTTP/JSON ingress as a client would. Then two `keystate
// serve` processes on one Redis: a cart written through node A reads the same on node B.
import test from "ava";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildModuleTo } from "../helpers/build-cache.js";
import { startNode, type KeystateNode } from "../../host/node.js";
import { CLUSTER_TOKEN, settledOn, startClusterNode, waitForCluster } from "../helpers/cluster-nodes.js";
import { deploy, ensureExample, fetchJson, postJson } from "../helpers/deployed-node.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";
import { startRedis } from "../helpers/redis-server.js";
import { makeTempDir, removeDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const TOKEN = "inspect-test-token";
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const COUNTER = "keystate.examples.counter.Counter";
const PRESENCE = "keystate.examples.presence.Presence";
const CRDTS = "keystate.test.crdts";

let node: KeystateNode;
let dataDir = "";
let base = "";
let cartWasm = "";

test.before(async () => {
  const examples = await Promise.all(["shopping-cart", "counter", "presence"].map((name) => ensureExample(name)));
  if (examples.some((wasm) => wasm === undefined)) throw new Error("the examples do not build (npm run build:examples)");
  cartWasm = examples[0]!;
  dataDir = await makeTempDir("inspect-api");
  // The fixtures are built from source into this test's own directory (a concurrent test may be building them too).
  const fixtures = await Promise.all(["crdt-kinds", "echo-action"].map(async (name) => {
    const wasm = join(dataDir, `${name}.wasm`);
    await buildModuleTo(join(REPO_ROOT, "test", "fixtures", name), wasm);
    return wasm;
  }));
  node = await startNode({ dataDir: join(dataDir, "store"), grpcPort: 0, httpPort: 0, adminToken: TOKEN });
  for (const wasm of [...(examples as string[]), ...fixtures]) await node.registry.deploy(await readFile(wasm));
  base = `http://127.0.0.1:${node.httpPort}`;
});

test.after.always(async () => {
  await node?.stop();
  if (dataDir) await removeDir(dataDir);
});

const auth = { authorization: `Bearer ${TOKEN}` };
const entityPath = (service: string, key: string) => `/entities/${encodeURIComponent(service)}/${encodeURIComponent(key)}`;
const inspect = (path: string, headers: Record<string, string> = auth) => fetchJson(base + path, { headers });

async function call(service: string, method: string, request: object): Promise<unknown> {
  const reply = await postJson(`${base}/${service}/${method}`, request);
  if (reply.status !== 200) throw new Error(`${service}/${method} answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return reply.body;
}

const addItem = (userId: string, productId: string, quantity = 1) => call(CART, "AddItem", { userId, productId, name: productId.toUpperCase(), quantity });

test("an event-sourced cart: its state decoded through the module's descriptors, sequence, residency", async (t) => {
  await addItem("ann", "pen", 2);
  const { status, headers, body } = await inspect(entityPath(CART, "ann"));
  t.is(status, 200);
  t.regex(headers.get("content-type") ?? "", /^application\/json/);
  t.is(headers.get("cache-control"), "no-store");
  t.is(headers.get("x-content-type-options"), "nosniff");
  t.deepEqual(body, {
    service: CART,
    kind: "event-sourced",
    module: { name: "shopping-cart", version: 1 },
    key: "ann",
    persistenceId: "shopping-cart",
    exists: true,
    sequence: 1,
    resident: true,
    snapshotSeq: null,
    stateType: "keystate.examples.shoppingcart.Cart",
    state: { items: [{ productId: "pen", name: "PEN", quantity: 2 }] },
  });
});

test("a cart's events: seq, type and the payload decoded as its event type", async (t) => {
  await addItem("bea", "ink", 3);
  await call(CART, "RemoveItem", { userId: "bea", productId: "ink" });
  const { status, body } = await inspect(`${entityPath(CART, "bea")}/events`);
  t.is(status, 200);
  t.deepEqual(body, {
    service: CART,
    module: { name: "shopping-cart", version: 1 },
    key: "bea",
    from: 1,
    limit: 50,
    events: [
      { seq: 1, type: "keystate.examples.shoppingcart.domain.ItemAdded", payload: { item: { productId: "ink", name: "INK", quantity: 3 } } },
      { seq: 2, type: "keystate.examples.shoppingcart.domain.ItemRemoved", payload: { productId: "ink" } },
    ],
    lastSeq: 2,
    more: false,
  });
  t.deepEqual((await inspect(entityPath(CART, "bea"))).body.state, {}, "an emptied cart is the empty message");
});

test("events page with from and limit; a huge limit is clamped to 500, a malformed one refused", async (t) => {
  for (let i = 1; i <= 5; i++) await addItem("pager", `p${i}`);
  const page = async (query: string) => (await inspect(`${entityPath(CART, "pager")}/events?${query}`)).body;

  const first = await page("from=2&limit=2");
  t.deepEqual(first.events.map((e: { seq: number }) => e.seq), [2, 3]);
  t.like(first, { from: 2, limit: 2, lastSeq: 5, more: true, nextFrom: 4 });
  const last = await page(`from=${first.nextFrom}&limit=2`);
  t.deepEqual(last.events.map((e: { seq: number }) => e.seq), [4, 5]);
  t.like(last, { more: false, lastSeq: 5 });
  t.false("nextFrom" in last);
  t.deepEqual((await page("from=9")).events, [], "past the end: no events");

  for (const huge of ["1000000", "99999999999999999999999999999"]) {
    const clamped = await page(`limit=${huge}`);
    t.is(clamped.limit, 500, `limit=${huge}`);
    t.is(clamped.events.length, 5);
  }
  for (const bad of ["limit=0", "limit=abc", "limit=-1", "from=0", "from=1.5"]) {
    const refused = await inspect(`${entityPath(CART, "pager")}/events?${bad}`);
    t.is(refused.status, 400, bad);
    t.regex(refused.body.error.message, /must be a whole number from 1 up/, bad);
  }
});

test("bytes the module cannot decode are shown as base64 with a note", async (t) => {
  // Written straight to the store: no module would write these.
  await node.store.journal.append({ persistenceId: "shopping-cart", key: "odd" }, 0, [{ type: "not.a.Known", payload: Uint8Array.of(1, 2, 3) }]);
  const events = (await inspect(`${entityPath(CART, "odd")}/events`)).body;
  t.deepEqual(events.events, [{ seq: 1, type: "not.a.Known", payloadBase64: "AQID", note: "the module's API defines no message not.a.Known; shown as base64" }]);
  await node.store.values.write({ persistenceId: "counter", key: "garbled" }, Uint8Array.of(0xff, 0xff), 0);
  const counter = (await inspect(entityPath(COUNTER, "garbled"))).body;
  t.like(counter, { exists: true, sequence: 1, state: null, stateBase64: "//8=", note: "the bytes do not decode as keystate.examples.counter.domain.CounterState; shown as base64" });
});

test("an entity never written answers 200 with exists false and the default state", async (t) => {
  const cart = (await inspect(entityPath(CART, "nobody-yet"))).body;
  t.like(cart, { exists: false, sequence: 0, resident: false, state: {} });
  const counter = (await inspect(entityPath(COUNTER, "nobody-yet"))).body;
  t.like(counter, { kind: "value", exists: false, sequence: 0, resident: false, state: {} });
  const hits = (await inspect(entityPath(`${CRDTS}.Hits`, "nobody-yet"))).body;
  t.like(hits, { kind: "replicated", exists: false, sequence: null, state: "0" });
  const presence = (await inspect(entityPath(PRESENCE, "nobody-yet"))).body;
  t.like(presence, { crdt: "Vote", exists: false, state: { votesFor: 0, total: 0, atLeastOne: false, majority: false, all: false } });
  t.deepEqual((await inspect(`${entityPath(CART, "nobody-yet")}/events`)).body.events, []);
});

test("a value entity: its stored version and its state message", async (t) => {
  await call(COUNTER, "Increase", { counterId: "visits", value: 5 });
  await call(COUNTER, "Increase", { counterId: "visits", value: 2 });
  const { status, body } = await inspect(entityPath(COUNTER, "visits"));
  t.is(status, 200);
  t.deepEqual(body, {
    service: COUNTER,
    kind: "value",
    module: { name: "counter", version: 1 },
    key: "visits",
    persistenceId: "counter",
    exists: true,
    sequence: 2,
    resident: true,
    stateType: "keystate.examples.counter.domain.CounterState",
    state: { value: "7" },
  });
  const events = await inspect(`${entityPath(COUNTER, "visits")}/events`);
  t.is(events.status, 400);
  t.regex(events.body.error.message, /is a value entity; only event-sourced entities have a journal of events/);
});

test("replicated entities: the CRDT's value as JSON (counter, set, map, register)", async (t) => {
  await call(`${CRDTS}.Hits`, "Add", { page: "home", amount: 5 });
  await call(`${CRDTS}.Tags`, "Add", { owner: "ann", tag: "red" });
  await call(`${CRDTS}.Tags`, "Add", { owner: "ann", tag: "blue" });
  await call(`${CRDTS}.Prefs`, "Count", { owner: "ann", field: "visits", amount: 3 });
  await call(`${CRDTS}.Prefs`, "Enable", { owner: "ann", field: "beta" });
  await call(`${CRDTS}.Motto`, "Set", { team: "core", text: "ship it ✓" });

  const hits = (await inspect(entityPath(`${CRDTS}.Hits`, "home"))).body;
  t.deepEqual(hits, {
    service: `${CRDTS}.Hits`,
    kind: "replicated",
    module: { name: "crdt-kinds", version: 1 },
    key: "home",
    persistenceId: hits.persistenceId,
    exists: true,
    sequence: null,
    resident: hits.resident, // the fixture passivates Hits after 200 ms: it may have left memory already
    crdt: "GCounter",
    state: "5",
  });
  t.like((await inspect(entityPath(`${CRDTS}.Tags`, "ann"))).body, { resident: true, crdt: "ORSet", state: [{ utf8: "blue" }, { utf8: "red" }] });
  t.deepEqual((await inspect(entityPath(`${CRDTS}.Prefs`, "ann"))).body.state, [
    { key: { utf8: "beta" }, crdt: "Flag", value: true },
    { key: { utf8: "visits" }, crdt: "PNCounter", value: "3" },
  ]);
  t.deepEqual((await inspect(entityPath(`${CRDTS}.Motto`, "core"))).body.state, { utf8: "ship it ✓" });
  const events = await inspect(`${entityPath(`${CRDTS}.Hits`, "home")}/events`);
  t.is(events.status, 400);
  t.regex(events.body.error.message, /is a replicated entity; only event-sourced entities have a journal/);
});

test("unknown service 404 naming it, action 400, no or wrong token 401, malformed routes", async (t) => {
  const unknown = await inspect(entityPath("no.such.Service", "k"));
  t.is(unknown.status, 404);
  t.is(unknown.body.error.code, "UNKNOWN_SERVICE");
  t.regex(unknown.body.error.message, /no service no\.such\.Service is deployed/);
  t.is((await inspect(`${entityPath("no.such.Service", "k")}/events`)).status, 404);

  const action = await inspect(entityPath("keystate.test.echo.Echo", "k"));
  t.is(action.status, 400);
  t.regex(action.body.error.message, /keystate\.test\.echo\.Echo is an action: actions are stateless/);

  for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: TOKEN }] as Record<string, string>[]) {
    const refused = await inspect(entityPath(CART, "ann"), headers);
    t.is(refused.status, 401);
    t.is(refused.body.error.status, "UNAUTHENTICATED");
    t.false(JSON.stringify(refused.body).includes("pen"), "nothing of the entity leaks");
  }
  t.is((await inspect("/entities")).status, 404);
  t.is((await inspect(`/entities/${CART}`)).status, 404);
  t.is((await inspect(`${entityPath(CART, "ann")}/other`)).status, 404);
  const badEncoding = await inspect(`/entities/${CART}/%E0%A4%A`);
  t.is(badEncoding.status, 400);
  t.regex(badEncoding.body.error.message, /not valid URL encoding/);
});

test("a key with '/', '<script>' and non-ASCII round-trips as data", async (t) => {
  const key = `o'brien/<script>alert("x")</script> ?#%2F ü`;
  await addItem(key, "<img src=x onerror=alert(1)>");
  const { status, body } = await inspect(entityPath(CART, key));
  t.is(status, 200);
  t.is(body.key, key);
  t.deepEqual(body.state.items, [{ productId: "<img src=x onerror=alert(1)>", name: "<IMG SRC=X ONERROR=ALERT(1)>", quantity: 1 }]);
  const events = (await inspect(`${entityPath(CART, key)}/events`)).body;
  t.is(events.key, key);
  t.is(events.events[0].payload.item.productId, "<img src=x onerror=alert(1)>");
  t.like((await inspect(entityPath(CART, `o'brien`))).body, { exists: false }, "the '/' did not split the key");
});

test("keystate inspect: a readable summary, --events, and --json", async (t) => {
  await addItem("cli-user", "pen", 4);
  const cli = async (...args: string[]) =>
    (await run(process.execPath, [KEYSTATE_BIN, "inspect", ...args, "--admin", base, "--token", TOKEN], { cwd: REPO_ROOT })).stdout;

  const summary = await cli(CART, "cli-user");
  t.regex(summary, /keystate\.examples\.shoppingcart\.ShoppingCart "cli-user" \(event-sourced, module shopping-cart v1\)/);
  t.regex(summary, /sequence: 1/);
  t.regex(summary, /resident on this node: yes/);
  t.regex(summary, /"productId": "pen"/);

  const events = await cli(CART, "cli-user", "--events", "--limit", "10");
  t.regex(events, /#1 "keystate\.examples\.shoppingcart\.domain\.ItemAdded"/);
  t.regex(events, /"quantity": 4/);

  const json = JSON.parse(await cli(CART, "cli-user", "--json"));
  t.deepEqual(json.state, { items: [{ productId: "pen", name: "PEN", quantity: 4 }] });

  const failed = await t.throwsAsync(cli("no.such.Service", "k"));
  t.regex((failed as { stderr?: string }).stderr ?? "", /NOT_FOUND: no service no\.such\.Service is deployed/);
});

test("in a cluster, a cart written through node A reads the same on node B, whoever owns it", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = "inspect-cluster";
  const a = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "inspect-a" });
  t.teardown(() => a.kill());
  const b = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "inspect-b" });
  t.teardown(() => b.kill());
  await deploy(a, cartWasm);
  await waitForCluster(a, settledOn(["inspect-a", "inspect-b"]));
  const keys = ["c1", "c2", "c3", "c4", "c5", "c6"];
  for (const key of keys) {
    const added = await postJson(`${a.adminUrl}/${CART}/AddItem`, { userId: key, productId: `for-${key}`, name: "N", quantity: 1 });
    t.is(added.status, 200, JSON.stringify(added.body));
  }
  const headers = { authorization: `Bearer ${CLUSTER_TOKEN}` };
  const onNode = async (adminUrl: string, key: string) => {
    // Node B may learn of the deploy a moment after A answers: the service is unknown until then.
    for (let attempt = 0; ; attempt++) {
      const answer = await fetchJson(`${adminUrl}${entityPath(CART, key)}`, { headers });
      if (answer.status !== 404 || attempt > 50) return answer;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const residentOnB: boolean[] = [];
  for (const key of keys) {
    const [onA, onB] = await Promise.all([onNode(a.adminUrl, key), onNode(b.adminUrl, key)]);
    t.is(onB.status, 200, JSON.stringify(onB.body));
    t.deepEqual(onB.body.state, { items: [{ productId: `for-${key}`, name: "N", quantity: 1 }] }, key);
    t.deepEqual({ ...onB.body, resident: undefined }, { ...onA.body, resident: undefined }, key);
    t.is(onB.body.sequence, 1);
    t.not(onA.body.resident, onB.body.resident, `${key}: resident on its owner only`);
    residentOnB.push(onB.body.resident);
    const events = await fetchJson(`${b.adminUrl}${entityPath(CART, key)}/events`, { headers });
    t.is(events.body.events[0].payload.item.productId, `for-${key}`);
  }
  t.log(`resident on B (it owns the cart's shard): ${residentOnB.join(", ")}`);
});
