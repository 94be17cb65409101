// Stateless actions, and the failure paths of value entities, on a real node:
// test/fixtures/echo-action holds an action (Echo) and a value entity (Tally).
// Over gRPC against a `keystate serve` process: replies, refusals, a trap that costs
// one call and not the node, a value-entity trap that stores nothing (also across
// kill -9). In process, through the Router: streaming methods answered UNIMPLEMENTED.
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import protobuf from "protobufjs";
import { status } from "@grpc/grpc-js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { startNode } from "../../host/node.js";
import { protoImportPath } from "../../host/proto/proto-root.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { KEYSTATE_BIN, REPO_ROOT, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "echo-action");
const PROTO_DIR = join(FIXTURE_DIR, "proto");
const wasm = buildBeforeAll(test, FIXTURE_DIR);
const ECHO = "keystate.test.echo.Echo";
const TALLY = "keystate.test.tally.Tally";

async function startServe(t: ExecutionContext, dataDir: string): Promise<NodeProcess> {
  // startNodeProcess reads <data>/admin-token right after "node started", which `serve`
  // logs before it writes that file: fix the token up front so the read cannot race.
  const token = "action-test-token";
  await writeFile(join(dataDir, "admin-token"), token + "\n", { mode: 0o600 });
  const node = await startNodeProcess({ dataDir, extraArgs: ["--admin-token", token] });
  t.teardown(() => node.kill());
  return node;
}

function client(t: ExecutionContext, node: NodeProcess, file: string, service: string): ContractClient {
  const c = contractClient(PROTO_DIR, file, service, node.grpcPort);
  t.teardown(() => c.close());
  return c;
}

test("an action answers over gRPC with no key and no state; a refusal passes through, a trap costs one call", async (t) => {
  const node = await startServe(t, await tempDirFor(t, "action"));
  await run(process.execPath, [KEYSTATE_BIN, "deploy", wasm(), "--admin", node.adminUrl, "--token", node.token]);
  const echo = client(t, node, "echo.proto", ECHO);

  t.deepEqual(await echo.methods.Say!({ text: "ab", times: 3 }), { text: "ababab", length: 6 });
  t.deepEqual(await echo.methods.Say!({ text: "hi" }), { text: "hi", length: 2 });

  // The guest's own refusals, code and message as the guest chose them (no entity key is read).
  t.deepEqual(await statusOf(echo.methods.Say!({})), { code: status.INVALID_ARGUMENT, details: "text must not be empty" });
  t.deepEqual(await statusOf(echo.methods.Say!({ text: "x", times: -1 })), { code: status.OUT_OF_RANGE, details: "times must not be negative" });

  // A trap: INTERNAL, its message logged but not sent; the node keeps serving.
  const crash = await statusOf(echo.methods.Crash!({ text: "boom" }));
  t.is(crash.code, status.INTERNAL);
  t.notRegex(crash.details, /echo crash requested/);
  t.deepEqual(await echo.methods.Say!({ text: "still here" }), { text: "still here", length: 10 });
  t.regex(await node.waitForOutput("echo crash requested: boom"), /guest call trapped/, "the trap is logged in full");

  // Actions have no mailbox: many at once all answer, each with its own reply.
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => echo.methods.Say!({ text: `m${i}`, times: 2 })));
  t.deepEqual(
    replies.map((r: { text: string }) => r.text),
    Array.from({ length: 50 }, (_, i) => `m${i}m${i}`),
  );
});

test("a value entity that updates its state and then traps stores nothing, before and after kill -9", async (t) => {
  const dataDir = await tempDirFor(t, "tally");
  const first = await startServe(t, dataDir);
  await run(process.execPath, [KEYSTATE_BIN, "deploy", wasm(), "--admin", first.adminUrl, "--token", first.token]);
  const tally = client(t, first, "tally.proto", TALLY);
  const total = async (c: ContractClient, name: string) => ((await c.methods.Get!({ name })) as { total: string }).total;

  t.is(((await tally.methods.Add!({ name: "t", amount: 5 })) as { total: string }).total, "5");
  t.is((await statusOf(tally.methods.Add!({ name: "t", amount: 100, crashAfterUpdate: true }))).code, status.INTERNAL);
  t.is(await total(tally, "t"), "5", "the resident value is the one before the trapped command");

  // Commands queued together: the trap in the middle neither stores its update nor
  // disturbs its neighbours.
  const [a, b, c] = await Promise.allSettled([
    tally.methods.Add!({ name: "t", amount: 1 }),
    tally.methods.Add!({ name: "t", amount: 1000, crashAfterUpdate: true }),
    tally.methods.Add!({ name: "t", amount: 10 }),
  ]);
  t.is(a.status === "fulfilled" && a.value.total, "6");
  t.is(b.status === "rejected" && (b.reason as { code: number }).code, status.INTERNAL);
  t.is(c.status === "fulfilled" && c.value.total, "16");

  await first.kill("SIGKILL");
  const second = await startServe(t, dataDir);
  t.is(await total(client(t, second, "tally.proto", TALLY), "t"), "16");
});

test("streaming methods of an action or a value entity are refused with UNIMPLEMENTED and change nothing", async (t) => {
  // In process, through the Router that every ingress uses.
  const node = await startNode({ grpcPort: 0, httpPort: 0, dataDir: await tempDirFor(t, "streaming"), insecureAdmin: true });
  t.teardown(() => node.stop());
  await node.registry.deploy(await readFile(wasm()));
  const root = fixtureProtos();
  const encode = (type: string, value: object) => root.lookupType(type).encode(value).finish();
  const decodeTotal = (bytes: Uint8Array) => String((root.lookupType("keystate.test.tally.TallyValue").decode(bytes) as unknown as { total: unknown }).total);

  await node.router.call(TALLY, "Add", encode("keystate.test.tally.TallyAdd", { name: "s", amount: 7 }));
  for (const [service, method, payload] of [
    [ECHO, "Chatter", encode("keystate.test.echo.EchoRequest", { text: "x" })],
    [TALLY, "Watch", encode("keystate.test.tally.TallyKey", { name: "s" })],
  ] as const) {
    const err = await t.throwsAsync(node.router.call(service, method, payload));
    t.is((err as { status?: number }).status, status.UNIMPLEMENTED);
    t.regex(err!.message, /streaming/);
  }
  t.is(decodeTotal(await node.router.call(TALLY, "Get", encode("keystate.test.tally.TallyKey", { name: "s" }))), "7");
});

/** The fixture's messages, for encoding requests by hand (imports resolved like buf does). */
function fixtureProtos(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => protoImportPath(target, PROTO_DIR);
  return root.loadSync(["echo.proto", "tally.proto"]);
}
