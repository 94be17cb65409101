// The idempotency bounds are settings: with --idempotency-keys-per-entity 2 a third key makes
// the entity forget the oldest one (a retry with it runs again), while the newest keys still
// answer with their stored reply; with a 1 ms window every earlier key is forgotten at the
// next keyed write. Counter example, embedded store, a real `keystate serve`.
import test from "ava";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { serveWith } from "../helpers/built-module.js";
import { ensureExample } from "../helpers/deployed-node.js";
import { contractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const PROTO_DIR = join(REPO_ROOT, "modules", "counter", "proto");

async function counterNode(t: Parameters<typeof serveWith>[0], extraArgs: string[]) {
  const wasm = await ensureExample("counter");
  if (!wasm) throw new Error("the counter example does not build (modules/counter)");
  const node = await serveWith(t, wasm, undefined, undefined, extraArgs);
  const client = contractClient(PROTO_DIR, "counter.proto", "keystate.examples.counter.Counter", node.grpcPort);
  t.teardown(() => client.close());
  const increase = async (key: string) => Number((await client.methods.Increase!({ counterId: "c", value: 1 }, { metadata: { "idempotency-key": key } })).value);
  return increase;
}

test("--idempotency-keys-per-entity bounds the keys an entity remembers, oldest forgotten first", async (t) => {
  const increase = await counterNode(t, ["--idempotency-keys-per-entity", "2"]);
  t.is(await increase("k1"), 1);
  t.is(await increase("k2"), 2);
  t.is(await increase("k3"), 3);
  t.is(await increase("k3"), 3, "the newest key answers with its stored reply");
  t.is(await increase("k2"), 2, "so does the one before it");
  t.is(await increase("k1"), 4, "the oldest was forgotten: the retry ran again");
});

test("--idempotency-window-ms bounds how long a key is remembered", async (t) => {
  const increase = await counterNode(t, ["--idempotency-window-ms", "1"]);
  t.is(await increase("a"), 1);
  await sleep(20);
  t.is(await increase("b"), 2, "a new key's write forgets keys older than the window");
  t.is(await increase("a"), 3, "past the window a key is forgotten");
});
