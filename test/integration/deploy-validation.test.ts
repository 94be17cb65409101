// Bad uploads are refused with a message naming the problem; nothing is deployed and
// the node keeps serving what it had.
import test from "ava";
import binaryen from "binaryen";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { contractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";
import { parseSections, withCustomSection } from "../helpers/wasm-sections.js";

const MODULE_DIR = join(REPO_ROOT, "modules", "shopping-cart");
const WASM = join(MODULE_DIR, "build", "shopping-cart.wasm");

async function upload(node: NodeProcess, bytes: Uint8Array, token: string | null = node.token) {
  const headers: Record<string, string> = { "content-type": "application/wasm" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${node.adminUrl}/modules`, { method: "POST", headers, body: bytes as Uint8Array<ArrayBuffer> });
  return { status: response.status, body: (await response.json()) as { error?: { code: string; status: string; message: string } } };
}

/** A module with the required exports that imports WASI, carrying the cart's sections. */
function moduleImportingWasi(cart: Uint8Array): Uint8Array {
  const module = binaryen.parseText(`(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1 16)
    (func (export "ks_input") (param i32) (result i32) (i32.const 0))
    (func (export "ks_command") (param i32) (drop (call $fd_write (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))
    (func (export "ks_replay") (param i32)))`);
  const code = module.emitBinary();
  module.dispose();
  let bytes: Uint8Array = code;
  for (const section of parseSections(cart).filter((s) => s.name?.startsWith("keystate."))) {
    bytes = withCustomSection(bytes, section.name!, section.payload);
  }
  return bytes;
}

test("bad uploads are refused with a message naming the problem, and the node keeps serving", async (t) => {
  const dataDir = await tempDirFor(t, "deploy-validation");
  const node = await startNodeProcess({ dataDir, extraArgs: ["--max-module-size", "200000"] });
  t.teardown(() => node.kill());
  const cart = await readFile(WASM);
  t.is((await upload(node, cart)).status, 201);

  const cases: Array<{ name: string; bytes: Uint8Array; status: number; message: RegExp }> = [
    { name: "not Wasm", bytes: Buffer.from("this is a text file, not a module"), status: 400, message: /not a WebAssembly module/ },
    { name: "truncated Wasm", bytes: cart.subarray(0, 1000), status: 400, message: /not valid WebAssembly/ },
    { name: "no manifest section", bytes: withCustomSection(cart, "keystate.manifest", undefined), status: 400, message: /no "keystate\.manifest" custom section/ },
    { name: "no descriptor section", bytes: withCustomSection(cart, "keystate.descriptor", undefined), status: 400, message: /no "keystate\.descriptor" custom section/ },
    { name: "descriptor that does not parse", bytes: withCustomSection(cart, "keystate.descriptor", Uint8Array.from([0x0a, 0xff, 0xff, 0x01])), status: 400, message: /descriptor does not parse/ },
    { name: "manifest that does not parse", bytes: withCustomSection(cart, "keystate.manifest", Uint8Array.from([0x12, 0x40])), status: 400, message: /manifest does not parse/ },
    { name: "forbidden import", bytes: moduleImportingWasi(cart), status: 400, message: /wasi_snapshot_preview1\.fd_write/ },
    { name: "over the size limit", bytes: Buffer.alloc(300_000, 1), status: 413, message: /limit/ },
  ];
  for (const c of cases) {
    const { status, body } = await upload(node, c.bytes);
    t.is(status, c.status, c.name);
    t.regex(body.error?.message ?? "", c.message, c.name);
  }

  const unauthenticated = await upload(node, cart, null);
  t.is(unauthenticated.status, 401);
  t.is(unauthenticated.body.error?.status, "UNAUTHENTICATED");
  t.is((await upload(node, cart, "wrong-token")).status, 401);

  const list = await fetch(`${node.adminUrl}/modules`, { headers: { authorization: `Bearer ${node.token}` } });
  const { modules } = (await list.json()) as { modules: Array<{ name: string; version: number; versions: unknown[] }> };
  t.deepEqual(modules.map((m) => [m.name, m.version, m.versions.length]), [["shopping-cart", 1, 1]], "nothing else was stored");

  const client = contractClient(join(MODULE_DIR, "proto"), "shoppingcart.proto", "keystate.examples.shoppingcart.ShoppingCart", node.grpcPort);
  t.teardown(() => client.close());
  await client.methods.AddItem({ userId: "dora", productId: "a", name: "A", quantity: 1 });
  t.is((await client.methods.GetCart({ userId: "dora" })).items.length, 1);
});
