// Event-log subscriptions (projections) against real `keystate serve` processes, on the
// embedded store and on a real redis-server: modules/cart-projection builds per-product
// totals from modules/shopping-cart's events, and test/fixtures/projection-order records the
// order each cart's events were delivered in. The carts' events exist before either is
// deployed (they start from the beginning); the node is killed with SIGKILL while they catch
// up, restarted, and more events follow; the totals must then equal exactly what the carts
// hold (nothing counted twice, nothing lost) and every cart's events arrive in order.
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { deploy } from "../helpers/deployed-node.js";
import { contractClient, type ContractClient } from "../helpers/grpc-client.js";
import { scrapeMetrics } from "../helpers/metrics-scrape.js";
import { REPO_ROOT, type NodeProcess } from "../helpers/node-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { REDELIVER_AFTER_MS } from "../../host/entities/effect-runner.js";

const CART = join(REPO_ROOT, "modules", "shopping-cart");
const PROJECTION = join(REPO_ROOT, "modules", "cart-projection");
const ORDER = join(REPO_ROOT, "test", "fixtures", "projection-order");
const wasm = { cart: buildBeforeAll(test, CART), projection: buildBeforeAll(test, PROJECTION), order: buildBeforeAll(test, ORDER) };

const PRODUCTS = ["apple", "pear", "plum", "fig", "kiwi", "lime"];
const DELIVERED = 'keystate_event_log_events_delivered_total{subscription="cart-projection/keystate.examples.cartprojection.CartEvents"}';

let redis: RunningRedis | undefined;
test.before(async () => {
  redis = await startRedis();
});
test.after.always(async () => {
  await redis?.stop();
});

interface Clients {
  cart: ContractClient;
  totals: ContractClient;
  seqLog: ContractClient;
}

function clients(t: ExecutionContext, node: NodeProcess): Clients {
  const made = {
    cart: contractClient(join(CART, "proto"), "shoppingcart.proto", "keystate.examples.shoppingcart.ShoppingCart", node.grpcPort),
    totals: contractClient(join(PROJECTION, "proto"), "cart_projection.proto", "keystate.examples.cartprojection.ProductTotals", node.grpcPort),
    seqLog: contractClient(join(ORDER, "proto"), "order.proto", "keystate.test.projection.SeqLog", node.grpcPort),
  };
  t.teardown(() => Object.values(made).forEach((c) => c.close()));
  return made;
}

/** What the test did to the carts: cart -> product -> quantity, and each cart's event count. */
class Carts {
  readonly lines = new Map<string, Map<string, number>>();
  readonly events = new Map<string, number>();
  #seed: number;

  constructor(seed: number) {
    this.#seed = seed;
  }

  /** Deterministic pseudo-random in [0, 1) (mulberry32), so a failure can be replayed. */
  #random(): number {
    let x = (this.#seed = (this.#seed + 0x6d2b79f5) | 0);
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }

  /** `ops` adds and removes on each of `carts`, carts at once, each cart's in order; the model changes only on success. */
  async shop(c: Clients, carts: readonly string[], ops: number): Promise<void> {
    await Promise.all(
      carts.map(async (cart) => {
        const lines = this.lines.get(cart) ?? new Map<string, number>();
        this.lines.set(cart, lines);
        for (let i = 0; i < ops; i++) {
          const held = [...lines.keys()];
          if (held.length > 0 && this.#random() < 0.3) {
            const productId = held[Math.floor(this.#random() * held.length)]!;
            await c.cart.methods.RemoveItem!({ userId: cart, productId });
            lines.delete(productId);
          } else {
            const productId = PRODUCTS[Math.floor(this.#random() * PRODUCTS.length)]!;
            const quantity = 1 + Math.floor(this.#random() * 5);
            await c.cart.methods.AddItem!({ userId: cart, productId, name: productId, quantity });
            lines.set(productId, (lines.get(productId) ?? 0) + quantity);
          }
          this.events.set(cart, (this.events.get(cart) ?? 0) + 1);
        }
      }),
    );
  }

  /** Per product, as ProductTotals answers: units in carts and carts holding it (proto3 JSON: int64 as a string). */
  expected(): Map<string, { productId: string; quantity: string; carts: number }> {
    const totals = new Map(PRODUCTS.map((p) => [p, { productId: p, quantity: 0, carts: 0 }]));
    for (const lines of this.lines.values()) {
      for (const [product, quantity] of lines) {
        const total = totals.get(product)!;
        total.quantity += quantity;
        total.carts += 1;
      }
    }
    return new Map([...totals].map(([p, total]) => [p, { ...total, quantity: String(total.quantity) }]));
  }

  get totalEvents(): number {
    return [...this.events.values()].reduce((a, b) => a + b, 0);
  }
}

async function totalsNow(c: Clients): Promise<Map<string, unknown>> {
  const replies = await Promise.all(PRODUCTS.map((productId) => c.totals.methods.GetProduct!({ productId })));
  return new Map(PRODUCTS.map((p, i) => [p, replies[i]]));
}

/** Polls until the projection's totals equal the model's; resolves the last totals read. */
async function converged(c: Clients, carts: Carts, timeoutMs: number): Promise<Map<string, unknown>> {
  const want = JSON.stringify([...carts.expected()]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await totalsNow(c);
    if (JSON.stringify([...now]) === want || Date.now() > deadline) return now;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function seqsOf(c: Clients, cart: string): Promise<{ seqs: number[]; last: Record<string, string> }> {
  const reply = (await c.seqLog.methods.Get!({ cartId: cart })) as { seqs: string[]; last: Record<string, string> };
  return { seqs: reply.seqs.map(Number), last: reply.last };
}

/** The order witness's log of `cart` once it has seen event `n` (or what it has at `timeoutMs`). */
async function witnessCaughtUp(c: Clients, cart: string, n: number, timeoutMs: number): Promise<{ seqs: number[]; last: Record<string, string> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await seqsOf(c, cart);
    if (log.seqs.includes(n) || Date.now() > deadline) return log;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Delivery order of one cart's events, across a crash: every step is the next event (+1) or a
 * rewind to an event delivered before (a redelivery from the last stored offset), and the
 * events first seen are exactly 1..n in order: no gap, none out of order.
 */
function checkOrder(t: ExecutionContext, cart: string, seqs: readonly number[], n: number): void {
  let highest = 0;
  for (const [i, seq] of seqs.entries()) {
    const previous = i === 0 ? 0 : seqs[i - 1]!;
    if (seq !== previous + 1 && seq > previous) t.fail(`cart ${cart}: event ${seq} delivered after ${previous} (a gap or out of order): ${seqs.join(",")}`);
    if (seq > highest + 1) t.fail(`cart ${cart}: event ${seq} delivered before ${highest + 1}: ${seqs.join(",")}`);
    highest = Math.max(highest, seq);
  }
  t.is(highest, n, `cart ${cart}: all ${n} events delivered`);
}

async function deployNow(node: NodeProcess, wasmFile: string): Promise<void> {
  const body = await readFile(wasmFile);
  const response = await fetch(`${node.adminUrl}/modules`, { method: "POST", headers: { authorization: `Bearer ${node.token}`, "content-type": "application/wasm" }, body });
  if (response.status !== 201) throw new Error(`deploy answered ${response.status}: ${await response.text()}`);
}

async function delivered(node: NodeProcess): Promise<number> {
  return (await scrapeMetrics(node.adminUrl)).samples.get(DELIVERED) ?? 0;
}

/** The whole story on one store; `redisUrl` undefined: the embedded store. */
async function projectionSurvivesCrash(t: ExecutionContext, redisUrl: string | undefined): Promise<void> {
  const first = await serveWith(t, wasm.cart(), redisUrl);
  const carts = new Carts(redisUrl ? 7 : 11);
  const crashed = Array.from({ length: 20 }, (_, i) => `cart-${i}`);
  // Events before any projection exists: both subscriptions start from the beginning.
  await carts.shop(clients(t, first), crashed, 30);
  const total = carts.totalEvents;
  await deploy(first, wasm.order());
  // Straight to the admin API (not the CLI, a process start away): the kill must come while it catches up.
  await deployNow(first, wasm.projection());

  // Killed mid-stream: some events delivered, not all.
  const deadline = Date.now() + 15_000;
  let atKill = await delivered(first);
  while (atKill < 20 && Date.now() < deadline) atKill = await delivered(first);
  await first.kill("SIGKILL");
  t.true(atKill >= 20 && atKill < total, `killed after ${atKill} of ${total} events were delivered`);

  const second = await serveWith(t, undefined, redisUrl, first.dataDir);
  const restartedAt = Date.now();
  const c = clients(t, second);
  // More events while it catches up, on the same carts.
  await carts.shop(c, crashed, 4);
  t.deepEqual(await converged(c, carts, 30_000), carts.expected(), "the totals are exactly what the carts hold");
  let redelivered = 0;
  for (const cart of crashed) {
    // The order witness is a subscription of its own: it may still be catching up when the totals are exact.
    const { seqs } = await witnessCaughtUp(c, cart, carts.events.get(cart)!, 15_000);
    checkOrder(t, cart, seqs, carts.events.get(cart)!);
    redelivered += seqs.length - carts.events.get(cart)!;
  }
  t.log(`killed after ${atKill} of ${total} events; ${redelivered} deliveries to the order witness were repeats after the restart`);

  // New carts with nothing crashing: each one's events exactly once, strictly in order, with their CloudEvents attributes.
  const fresh = Array.from({ length: 4 }, (_, i) => `fresh-${i}`);
  await carts.shop(c, fresh, 8);
  t.deepEqual(await converged(c, carts, 15_000), carts.expected());
  for (const cart of fresh) {
    const { seqs, last } = await witnessCaughtUp(c, cart, carts.events.get(cart)!, 15_000);
    const n = carts.events.get(cart)!;
    t.deepEqual(seqs, Array.from({ length: n }, (_, i) => i + 1), `cart ${cart}: every event once, in order`);
    t.like(last, { cartId: cart, seq: String(n), ceId: `shopping-cart/${cart}@${n}`, ceSource: "shopping-cart", ceSpecversion: "1.0" });
    t.regex(last.ceType!, /^keystate\.examples\.shoppingcart\.domain\.Item(Added|Removed)$/);
    t.true(Math.abs(Date.parse(last.ceTime!) - Date.now()) < 60_000, `ce-time ${last.ceTime} is when the event was written`);
  }

  // Side effects stored before the kill are redelivered REDELIVER_AFTER_MS after they were
  // stored: past that, the totals must not have moved (a redelivery applied twice would show).
  const settle = restartedAt + REDELIVER_AFTER_MS + 1000 - Date.now();
  if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
  t.deepEqual(await totalsNow(c), carts.expected(), "still exact after stored side effects were redelivered");
  t.false(second.output.join("").includes('"level":50'), "no errors logged");
}

test("embedded store: a projection deployed after the events catches up from the beginning, survives SIGKILL mid-stream, and its totals are exact", async (t) => {
  await projectionSurvivesCrash(t, undefined);
});

test("redis store: a projection deployed after the events catches up from the beginning, survives SIGKILL mid-stream, and its totals are exact", async (t) => {
  await projectionSurvivesCrash(t, `${redis!.url}/1`);
});
