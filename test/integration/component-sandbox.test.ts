// Hostile and broken WebAssembly components against a real `keystate serve`:
// test/fixtures/components/hostile-js misbehaves on request (loops forever, allocates without
// end, probes for the outside world, calls fetch). Each costs only its own call: the right
// status, and the node keeps serving (the same module on a fresh instance, and another
// module). Broken uploads are refused with INVALID_MODULE and a message saying what to do.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { COMPONENT_FIXTURES, builtComponent, wasiComponent, withoutComponentSection } from "../helpers/component-fixtures.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { makeTempDir, removeDir } from "../helpers/temp-dir.js";
import { assembleModule, parseSections } from "../helpers/wasm-sections.js";

const HOSTILE_DIR = join(COMPONENT_FIXTURES, "hostile-js");
const COUNTER_DIR = join(REPO_ROOT, "modules", "counter-js");
const TOKEN = "component-sandbox-token";

let workDir = "";
let node: NodeProcess;
let hostile: ContractClient;
let counter: ContractClient;
let hostileWasm: Uint8Array;

async function upload(bytes: Uint8Array): Promise<{ status: number; code: string; message: string }> {
  const response = await fetch(`${node.adminUrl}/modules`, {
    method: "POST",
    headers: { "content-type": "application/wasm", authorization: `Bearer ${TOKEN}` },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
  const body = (await response.json()) as { error?: { message: string; code?: string } };
  return { status: response.status, code: body.error?.code ?? "", message: body.error?.message ?? "" };
}

test.before(async () => {
  // Built (or taken from the cache) in parallel: componentize-js is the slow part.
  const [hostilePath, counterPath] = await Promise.all([builtComponent(HOSTILE_DIR), builtComponent(COUNTER_DIR)]);
  hostileWasm = await readFile(hostilePath);
  workDir = await makeTempDir("component-sandbox");
  const dataDir = join(workDir, "data");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(dataDir, { recursive: true });
  await writeFile(join(dataDir, "admin-token"), TOKEN + "\n", { mode: 0o600 });
  node = await startNodeProcess({ dataDir, extraArgs: ["--admin-token", TOKEN] });
  for (const bytes of [hostileWasm, await readFile(counterPath)]) {
    const deployed = await upload(bytes);
    if (deployed.status !== 201) throw new Error(`deploying a fixture failed: ${deployed.message}`);
  }
  hostile = contractClient(join(HOSTILE_DIR, "proto"), "hostile_js.proto", "keystate.test.hostilejs.HostileJs", node.grpcPort);
  counter = contractClient(join(COUNTER_DIR, "proto"), "jscounter.proto", "keystate.examples.jscounter.JsCounter", node.grpcPort);
});

test.after.always(async () => {
  for (const client of [hostile, counter]) client?.close();
  await node?.kill();
  if (workDir) await removeDir(workDir);
});

/** The node still serves the hostile module (a fresh instance) and another component. */
async function assertStillServing(t: import("ava").ExecutionContext, label: string): Promise<void> {
  t.regex((await hostile.methods.Echo!({})).text, /^echo /, `${label}: the same module serves the next call`);
  const value = (await counter.methods.Increase!({ counterId: label, value: 2 })).value;
  t.is(value, "2", `${label}: the other component still serves`);
}

test.serial("a component that loops forever is stopped by its fuel budget", async (t) => {
  const start = performance.now();
  const loop = await statusOf(hostile.methods.Loop!({}));
  t.is(loop.code, status.RESOURCE_EXHAUSTED);
  t.regex(loop.details, /used up its CPU budget \(10000000 fuel units\)/);
  t.log(`stopped after ${Math.round(performance.now() - start)} ms`);
  await assertStillServing(t, "loop");
});

test.serial("a component that grows memory past the cap fails with RESOURCE_EXHAUSTED", async (t) => {
  const grow = await statusOf(hostile.methods.Grow!({}));
  t.is(grow.code, status.RESOURCE_EXHAUSTED);
  t.regex(grow.details, /exceeded the module's memory limit \(32 MiB\)/);
  await assertStillServing(t, "grow");
});

test.serial("a component reaches no network, environment, filesystem or clock", async (t) => {
  const { text } = (await hostile.methods.Probe!({})) as { text: string };
  const seen = Object.fromEntries(text.split(" ").map((pair) => pair.split("=") as [string, string]));
  // No Node.js or Deno host objects: no environment, no require (so no fs, net, child_process).
  for (const name of ["process", "require", "Deno", "XMLHttpRequest", "WebSocket", "env"]) t.is(seen[name], "undefined", name);
  // The clock is frozen at build time (the engine's snapshot): the same on every call.
  const again = (await hostile.methods.Probe!({})) as { text: string };
  t.is(again.text.match(/now=(\d+)/)?.[1], seen.now, "Date.now() does not move");
  // fetch() exists in the engine but the network feature is compiled out: calling it stops the call.
  const fetched = await statusOf(hostile.methods.Fetch!({}));
  t.is(fetched.code, status.INTERNAL);
  await assertStillServing(t, "probe");
});

test.serial("broken components are refused at upload with a message a user can act on", async (t) => {
  const garbage = await upload(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0xff, 0x10, 0x01, 0x02, 0x03));
  t.is(garbage.status, 400);
  t.is(garbage.code, "INVALID_MODULE");
  t.regex(garbage.message, /component is not valid/);

  // Well-formed Keystate sections around a core module of garbage: jco's validation refuses it.
  const sections = parseSections(hostileWasm).filter((s) => s.id === 0 && s.name?.startsWith("keystate."));
  const junk = assembleModule([{ id: 1, payload: Uint8Array.of(1, 2, 3, 4) }, ...sections]);
  junk.set(hostileWasm.subarray(4, 8), 4);
  const invalid = await upload(junk);
  t.is(invalid.code, "INVALID_MODULE");
  t.regex(invalid.message, /^the component is not valid: /);
  t.log(invalid.message);

  for (const section of ["keystate.manifest", "keystate.descriptor"]) {
    const missing = await upload(withoutComponentSection(hostileWasm, section));
    t.is(missing.code, "INVALID_MODULE", section);
    t.regex(missing.message, new RegExp(`no "${section.replace(".", "\\.")}" custom section; build it with \`keystate build\``));
  }

  // Built with componentize-js's defaults: imports WASI (filesystem, clocks, random, http, ...).
  const wasi = await upload(await readFile(await wasiComponent(HOSTILE_DIR)));
  t.is(wasi.code, "INVALID_MODULE");
  t.regex(wasi.message, /the component imports .*wasi:filesystem\/types.*which Keystate does not provide/);
  t.regex(wasi.message, /may import only keystate:entity\/host/);
  t.regex(wasi.message, /keystate build/);
  t.log(wasi.message);

  await assertStillServing(t, "refusals");
});
