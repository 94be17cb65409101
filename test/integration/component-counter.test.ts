// The JavaScript counter (modules/counter-js, a WebAssembly component built by `keystate
// build`) against a real `keystate serve` on the embedded store: the counter contract over
// gRPC, then kill -9 and fresh processes on the same store (eager, then lazy module loading)
// serving the component again with its values.
import test, { type ExecutionContext } from "ava";
import { status } from "@grpc/grpc-js";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { builtComponent } from "../helpers/component-fixtures.js";
import { deploy } from "../helpers/deployed-node.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT, clusterNameFor, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const MODULE_DIR = join(REPO_ROOT, "modules", "counter-js");
const SERVICE = "keystate.examples.jscounter.JsCounter";
const TOKEN = "component-counter-token";

async function startNode(t: ExecutionContext, dataDir: string, extraArgs: readonly string[] = []): Promise<NodeProcess> {
  await writeFile(join(dataDir, "admin-token"), TOKEN + "\n", { mode: 0o600 });
  const node = await startNodeProcess({ dataDir, cluster: clusterNameFor(t.title), extraArgs: ["--admin-token", TOKEN, ...extraArgs] });
  t.teardown(() => node.kill());
  return node;
}

function client(t: ExecutionContext, node: NodeProcess): ContractClient {
  const c = contractClient(join(MODULE_DIR, "proto"), "jscounter.proto", SERVICE, node.grpcPort);
  t.teardown(() => c.close());
  return c;
}

async function value(c: ContractClient, method: string, request: object): Promise<string> {
  return ((await c.methods[method]!(request)) as { value: string }).value;
}

test("counter-js: the counter contract over gRPC, durable across kill -9 and restarts", async (t) => {
  const wasm = await builtComponent(MODULE_DIR);
  const dataDir = await tempDirFor(t, "counter-js");
  const first = await startNode(t, dataDir);
  const deployStart = performance.now();
  const deployed = await deploy(first, wasm);
  t.log(`deploy (upload, transpile, instrument, compile, first instance): ${Math.round(performance.now() - deployStart)} ms`);
  t.regex(deployed, /keystate\.examples\.jscounter\.JsCounter/);
  const counter = client(t, first);
  const get = (id: string) => value(counter, "Get", { counterId: id });

  t.is(await get("never-written"), "0", "a counter never written reads 0");
  t.is(await value(counter, "Increase", { counterId: "a", value: 5 }), "5");
  t.is(await value(counter, "Increase", { counterId: "a", value: 7 }), "12");
  t.is(await value(counter, "Decrease", { counterId: "a", value: 2 }), "10");
  t.is(await get("a"), "10");

  const negative = await statusOf(counter.methods.Increase!({ counterId: "a", value: -3 }));
  t.is(negative.code, status.INVALID_ARGUMENT);
  t.regex(negative.details, /negative/);
  t.is((await statusOf(counter.methods.Decrease!({ counterId: "a", value: -1 }))).code, status.INVALID_ARGUMENT);
  t.is(await get("a"), "10", "refused commands changed nothing");

  t.is(await value(counter, "Decrease", { counterId: "b", value: 3 }), "-3", "counters may go below zero");
  t.is(await value(counter, "Increase", { counterId: "c", value: 4 }), "4");
  t.is(await value(counter, "Reset", { counterId: "c" }), "0");
  t.is(await get("c"), "0");
  t.is(await value(counter, "Increase", { counterId: "big", value: "9007199254740993" }), "9007199254740993", "all 64 bits");

  const hot = await Promise.all(Array.from({ length: 20 }, () => value(counter, "Increase", { counterId: "hot", value: 1 })));
  t.deepEqual(hot.map(Number).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1), "one command at a time, no lost update");

  await first.kill("SIGKILL");

  // The stored artifact (transpiled and instrumented) serves the component again.
  const second = await startNode(t, dataDir);
  const again = client(t, second);
  t.is(await value(again, "Get", { counterId: "a" }), "10");
  t.is(await value(again, "Get", { counterId: "b" }), "-3");
  t.is(await value(again, "Get", { counterId: "c" }), "0");
  t.is(await value(again, "Get", { counterId: "big" }), "9007199254740993");
  t.is(await value(again, "Get", { counterId: "hot" }), "20");
  t.is(await value(again, "Increase", { counterId: "a", value: 1 }), "11");
  await second.kill("SIGKILL");

  // Lazily loaded: registered without compiling, compiled on the first call.
  const third = await startNode(t, dataDir, ["--lazy-modules"]);
  const lazy = client(t, third);
  const coldStart = performance.now();
  t.is(await value(lazy, "Get", { counterId: "a" }), "11");
  t.log(`first call on a lazily loaded node (compile + instantiate + call): ${Math.round(performance.now() - coldStart)} ms`);
  t.is((await statusOf(lazy.methods.Increase!({ counterId: "a", value: -1 }))).code, status.INVALID_ARGUMENT);
});
