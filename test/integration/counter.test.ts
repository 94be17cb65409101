// The counter value entity (modules/counter, contract shared/contracts/counter.proto)
// against real `keystate serve` processes on Redis and on the embedded store: the
// contract's behaviour over gRPC, then kill -9 and a fresh process on the same store
// reading back exactly what was acknowledged.
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { KEYSTATE_BIN, REPO_ROOT, clusterNameFor, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { startRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const MODULE_DIR = join(REPO_ROOT, "modules", "counter");
// Built from source so the test runs the current SDK and module, not a stale artifact.
const wasm = buildBeforeAll(test, MODULE_DIR);
const SERVICE = "keystate.examples.counter.Counter";

async function deploy(node: NodeProcess): Promise<void> {
  const { stdout } = await run(process.execPath, [KEYSTATE_BIN, "deploy", wasm(), "--admin", node.adminUrl, "--token", node.token]);
  if (!stdout.includes(SERVICE)) throw new Error(`unexpected deploy output: ${stdout}`);
}

async function startNode(t: ExecutionContext, dataDir: string, redisUrl: string | undefined): Promise<NodeProcess> {
  // startNodeProcess reads <data>/admin-token right after "node started", which `serve`
  // logs before it writes that file: fix the token up front so the read cannot race.
  const token = "counter-test-token";
  await writeFile(join(dataDir, "admin-token"), token + "\n", { mode: 0o600 });
  const node = await startNodeProcess({ dataDir, redisUrl, cluster: clusterNameFor(t.title), extraArgs: ["--admin-token", token] });
  t.teardown(() => node.kill());
  return node;
}

function counterClient(t: ExecutionContext, node: NodeProcess): ContractClient {
  const client = contractClient(join(MODULE_DIR, "proto"), "counter.proto", SERVICE, node.grpcPort);
  t.teardown(() => client.close());
  return client;
}

/** The counter's value as the contract returns it (int64 as a decimal string). */
async function value(client: ContractClient, method: string, request: object): Promise<string> {
  const reply = (await client.methods[method]!(request)) as { value: string };
  return reply.value;
}

async function contractThenKill(t: ExecutionContext, redisUrl: string | undefined): Promise<void> {
  const dataDir = await tempDirFor(t, "counter");
  const first = await startNode(t, dataDir, redisUrl);
  await deploy(first);
  const counter = counterClient(t, first);
  const get = (id: string) => value(counter, "Get", { counterId: id });

  t.is(await get("never-written"), "0", "a counter never written reads 0");

  t.is(await value(counter, "Increase", { counterId: "a", value: 5 }), "5");
  t.is(await value(counter, "Increase", { counterId: "a", value: 7 }), "12");
  t.is(await value(counter, "Decrease", { counterId: "a", value: 2 }), "10");
  t.is(await value(counter, "Increase", { counterId: "a", value: 0 }), "10", "zero is not negative");
  t.is(await get("a"), "10");

  // A negative value is refused with INVALID_ARGUMENT and changes nothing, either way.
  const negativeUp = await statusOf(counter.methods.Increase!({ counterId: "a", value: -3 }));
  t.is(negativeUp.code, status.INVALID_ARGUMENT);
  t.regex(negativeUp.details, /negative/);
  const negativeDown = await statusOf(counter.methods.Decrease!({ counterId: "a", value: -1 }));
  t.is(negativeDown.code, status.INVALID_ARGUMENT);
  t.is(await get("a"), "10", "refused commands changed nothing");

  // Counters are independent, may go below zero, and one refused first command stores nothing.
  t.is(await value(counter, "Decrease", { counterId: "b", value: 3 }), "-3");
  t.is((await statusOf(counter.methods.Increase!({ counterId: "fresh", value: -1 }))).code, status.INVALID_ARGUMENT);
  t.is(await get("fresh"), "0");

  // Reset -> 0, and stays 0 (Reset deletes the stored value).
  t.is(await value(counter, "Increase", { counterId: "c", value: 4 }), "4");
  t.is(await value(counter, "Reset", { counterId: "c" }), "0");
  t.is(await get("c"), "0");
  // Back to exactly 0 by arithmetic: the stored value is zero bytes long (proto3 default).
  t.is(await value(counter, "Increase", { counterId: "d", value: 9 }), "9");
  t.is(await value(counter, "Decrease", { counterId: "d", value: 9 }), "0");
  // Large values keep all 64 bits.
  t.is(await value(counter, "Increase", { counterId: "big", value: "9007199254740993" }), "9007199254740993");

  // No key: INVALID_ARGUMENT from the host before the guest runs.
  t.is((await statusOf(counter.methods.Get!({ counterId: "" }))).code, status.INVALID_ARGUMENT);

  // Concurrent increments of one counter run one at a time: every reply is a distinct
  // intermediate value and the total is exact (no lost update).
  const hot = await Promise.all(Array.from({ length: 60 }, () => value(counter, "Increase", { counterId: "hot", value: 1 })));
  t.deepEqual(
    hot.map(Number).sort((x, y) => x - y),
    Array.from({ length: 60 }, (_, i) => i + 1),
  );

  // kill -9 right after the last acknowledged write: what was acknowledged must be on disk.
  await first.kill("SIGKILL");

  const second = await startNode(t, dataDir, redisUrl);
  const again = counterClient(t, second);
  const getAgain = (id: string) => value(again, "Get", { counterId: id });
  t.is(await getAgain("a"), "10");
  t.is(await getAgain("b"), "-3");
  t.is(await getAgain("c"), "0");
  t.is(await getAgain("d"), "0");
  t.is(await getAgain("big"), "9007199254740993");
  t.is(await getAgain("hot"), "60");
  t.is(await getAgain("never-written"), "0");
  t.is(await getAgain("fresh"), "0");
  // The reloaded value is what the next command builds on.
  t.is(await value(again, "Increase", { counterId: "a", value: 1 }), "11");
  t.is(await value(again, "Increase", { counterId: "c", value: 2 }), "2");
}

test("counter on Redis: contract behaviour, durable across kill -9 of the node", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  await contractThenKill(t, redis.url);
});

test("counter on the embedded store: contract behaviour, durable across kill -9 of the node", async (t) => {
  await contractThenKill(t, undefined);
});
