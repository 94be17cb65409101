// `keystate build` for C modules (host/build/build-c.ts + guest-sdk-c): the shopping cart in C
// built into a temp copy, checked as the host sees it (imports, exports, sections), driven
// through the ABI directly, and the errors an author meets (compile errors, WASI imports, no
// compiler). Needs clang-14, lld-14, libclang-rt-14-dev-wasm32 and wasi-libc
// (scripts/ensure-system-deps.sh installs them); without them these tests fail saying so.
import test from "ava";
import { execFile } from "node:child_process";
import { cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { GuestInstance, REPLAY_CHUNK } from "../../host/abi/guest-instance.js";
import { buildModule } from "../../host/build/build-module.js";
import { lookupType } from "../../host/proto/proto-root.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { compileModule } from "../../host/runtime/loaded-module.js";
import { ALLOWED_IMPORTS, DESCRIPTOR_SECTION, MANIFEST_SECTION } from "../../host/runtime/module-sections.js";
import { exampleMessage } from "../helpers/example-messages.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";
import { makeTempDir, removeDir } from "../helpers/temp-dir.js";
import { parseSections } from "../helpers/wasm-sections.js";

const run = promisify(execFile);
const SERVICE = "keystate.examples.shoppingcart.ShoppingCart";
const CART_C = join(REPO_ROOT, "modules", "shopping-cart-c");

const AddLineItem = exampleMessage("keystate.examples.shoppingcart.AddLineItem");
const RemoveLineItem = exampleMessage("keystate.examples.shoppingcart.RemoveLineItem");
const Cart = exampleMessage("keystate.examples.shoppingcart.Cart");
const ItemAdded = exampleMessage("keystate.examples.shoppingcart.domain.ItemAdded");

let work = "";
let wasm: Uint8Array = new Uint8Array();

/** A copy of modules/shopping-cart-c in `dir` (the contract protos linked, not copied), with `cart.c` replaced when given. */
async function cartCopy(dir: string, cartC?: string): Promise<string> {
  await mkdir(join(dir, "src"), { recursive: true });
  await cp(join(CART_C, "module.json"), join(dir, "module.json"));
  await symlink(join(REPO_ROOT, "modules", "shopping-cart", "proto"), join(dir, "proto"));
  await writeFile(join(dir, "src", "cart.c"), cartC ?? (await readFile(join(CART_C, "src", "cart.c"), "utf8")));
  return dir;
}

test.before(async () => {
  work = await makeTempDir("build-c");
  const dir = await cartCopy(join(work, "cart"));
  const built = await buildModule(dir, { outFile: join(work, "cart.wasm") });
  wasm = new Uint8Array(await readFile(built.output));
});

test.after.always(async () => {
  if (work) await removeDir(work);
});

async function guest(pages = 64): Promise<GuestInstance> {
  const loaded = await compileModule(wasm, 0, { ...DEFAULT_GUEST_LIMITS, maxMemoryPages: pages });
  return new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
}

const cartItems = (state: Uint8Array | undefined) =>
  (Cart.toObject(Cart.decode(state ?? new Uint8Array()), { defaults: true }) as { items: Array<{ productId: string; name: string; quantity: number }> }).items.map(
    (i) => [i.productId, i.name, i.quantity],
  );

test("the C cart imports only what the host provides, exports the ABI and carries both sections", (t) => {
  const module = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  const imports = WebAssembly.Module.imports(module);
  for (const i of imports) t.true(i.kind === "function" && ALLOWED_IMPORTS.has(`${i.module}.${i.name}`), `${i.module}.${i.name}`);
  t.deepEqual(imports.map((i) => `${i.module}.${i.name}`), [], "the cart logs nothing, and answers through its exports' return values (ABI version 3): it imports nothing");
  t.deepEqual(WebAssembly.Module.exports(module).map((e) => `${e.kind} ${e.name}`).sort(), ["function ks_command", "function ks_input", "function ks_replay", "memory memory"]);
  const custom = parseSections(wasm).filter((s) => s.id === 0);
  t.deepEqual(custom.map((s) => s.name), [DESCRIPTOR_SECTION, MANIFEST_SECTION], "no debug or name sections: stripped");
  const manifest = lookupType("keystate.manifest.Manifest").toObject(lookupType("keystate.manifest.Manifest").decode(custom[1]!.payload)) as {
    name: string;
    services: Array<{ service: string; kind: number; persistenceId: string; eventTypes: string[] }>;
  };
  t.is(manifest.name, "shopping-cart-c");
  t.deepEqual(manifest.services.map((s) => [s.service, s.kind, s.persistenceId, s.eventTypes.length]), [[SERVICE, 1, "shopping-cart", 2]]);
});

test("the C cart over the ABI: events, merged state, refusals, replay in chunks, bad state", async (t) => {
  const g = await guest(64); // 4 MiB
  const call = (method: string, payload: Uint8Array, state?: Uint8Array) =>
    g.command({ service: SERVICE, method, entityKey: "u1", sequence: 0, state, payload });
  const add = (productId: string, quantity: number, state?: Uint8Array) =>
    call("AddItem", AddLineItem.encode({ userId: "u1", productId, name: productId.toUpperCase(), quantity }).finish(), state);

  const first = add("apple", 2);
  t.is(first.failure, undefined);
  t.deepEqual(first.events.map((e) => e.type), ["keystate.examples.shoppingcart.domain.ItemAdded"]);
  t.deepEqual(ItemAdded.toObject(ItemAdded.decode(first.events[0]!.payload)), { item: { productId: "apple", name: "APPLE", quantity: 2 } });
  const second = add("pear", 1, first.state);
  const third = add("apple", 3, second.state);
  t.deepEqual(cartItems(third.state), [["apple", "APPLE", 5], ["pear", "PEAR", 1]]);

  const removed = call("RemoveItem", RemoveLineItem.encode({ userId: "u1", productId: "apple" }).finish(), third.state);
  t.deepEqual(cartItems(removed.state), [["pear", "PEAR", 1]]);
  const missing = call("RemoveItem", RemoveLineItem.encode({ userId: "u1", productId: "durian" }).finish(), removed.state);
  t.deepEqual([missing.failure?.code, missing.failure?.message, missing.events.length], [5, "item durian is not in the cart", 0]);
  t.deepEqual([add("fig", 0).failure?.code, add("fig", -1).failure?.message], [3, "quantity for item fig must be at least 1"]);
  t.like(call("Checkout", new Uint8Array()).failure, { code: 12, message: `${SERVICE} has no method Checkout` });
  t.like(call("AddItem", Uint8Array.from([0x0a, 0x05, 0x61])).failure, { code: 3, message: "the request is not a valid keystate.examples.shoppingcart.AddLineItem" });
  t.deepEqual(call("GetCart", new Uint8Array(), Uint8Array.from([0x0a, 0x7f])).failure?.code, 15, "a state that does not decode is DATA_LOSS");
  t.like(g.command({ service: "no.Such", method: "X", entityKey: "k", sequence: 0, state: undefined, payload: new Uint8Array() }).failure, {
    code: 12,
    message: "this module does not serve no.Such",
  });

  // Replay: many more events than one chunk, in 4 MiB; the arena is reset every call.
  const events = Array.from({ length: REPLAY_CHUNK * 40 + 3 }, (_, i) => add(`p-${i % 7}`, 1).events[0]!);
  const replayed = g.replay({ service: SERVICE, state: undefined, events });
  t.is(replayed.failure, undefined);
  t.deepEqual(
    cartItems(replayed.state).map(([id, , quantity]) => [id, quantity]),
    [0, 1, 2, 3, 4, 5, 6].map((p) => [`p-${p}`, Math.floor(events.length / 7) + (p < events.length % 7 ? 1 : 0)]),
  );
  const unknown = g.replay({ service: SERVICE, state: undefined, events: [{ type: "x.Unknown", payload: new Uint8Array() }] });
  t.like(unknown.failure, { code: 15, message: "journaled event 0 of type x.Unknown cannot be applied" });
});

test("a compile error in the module's C is reported with the compiler's message, file and line", async (t) => {
  const dir = await cartCopy(join(work, "broken"), "#include \"handlers.h\"\nEmpty *ShoppingCart_AddItem(const AddLineItem *c, Cart *s, ks_context *ctx) {\n  return no_such_function(c);\n}\n");
  const err = await t.throwsAsync(buildModule(dir, { outFile: join(work, "broken.wasm") }));
  t.regex(err!.message, /C compilation failed/);
  t.regex(err!.message, /cart\.c:3:\d+: error: .*no_such_function/);
});

test("a libc function that needs WASI is refused at build, naming the import", async (t) => {
  const source = (await readFile(join(CART_C, "src", "cart.c"), "utf8")).replace("#include <string.h>", "#include <string.h>\n#include <stdio.h>").replace(
    "  (void)command;\n  (void)ctx;\n  return state;",
    '  (void)command;\n  (void)ctx;\n  printf("cart\\n");\n  return state;',
  );
  t.true(source.includes("printf"));
  const dir = await cartCopy(join(work, "wasi"), source);
  const err = await t.throwsAsync(buildModule(dir, { outFile: join(work, "wasi.wasm") }));
  t.regex(err!.message, /imports .*wasi_snapshot_preview1\.fd_write.*which Keystate does not provide/);
});

test("without the compiler, the build says which Debian packages to install", async (t) => {
  const dir = await cartCopy(join(work, "no-clang"));
  const err = await t.throwsAsync(
    run(process.execPath, [KEYSTATE_BIN, "build", dir, "-o", join(work, "no-clang.wasm")], { cwd: REPO_ROOT, env: { ...process.env, KEYSTATE_CLANG: "clang-that-is-not-installed" } }),
  );
  t.regex((err as unknown as { stderr: string }).stderr, /needs clang-that-is-not-installed, which is not installed: apt-get install clang-14 lld-14 libclang-rt-14-dev-wasm32 wasi-libc/);
});

test("what the C SDK does not support yet is refused at build, naming the field or service", async (t) => {
  const module = async (name: string, proto: string, entity: object) => {
    const dir = join(work, name);
    await mkdir(join(dir, "proto"), { recursive: true });
    await mkdir(join(dir, "src"), { recursive: true });
    await writeFile(join(dir, "proto", "m.proto"), `syntax = "proto3";\npackage m;\n${proto}\n`);
    await writeFile(join(dir, "src", "m.c"), '#include "handlers.h"\n');
    await writeFile(join(dir, "module.json"), JSON.stringify({ name, language: "c", protos: ["m.proto"], entities: [entity] }));
    return t.throwsAsync(buildModule(dir, { outFile: join(work, `${name}.wasm`) }));
  };
  const map = await module("map-c", "message S { map<string, int32> counts = 1; }\nservice Svc { rpc Get(S) returns (S); }", { service: "m.Svc", kind: "action" });
  t.regex(map!.message, /m\.S\.counts is a map field; maps are not supported by the C SDK yet/);
  const crdt = await module("crdt-c", "message S { string k = 1; }\nservice Svc { rpc Get(S) returns (S); }", { service: "m.Svc", kind: "replicated", crdt: "gcounter" });
  t.regex(crdt!.message, /service m\.Svc: replicated \(CRDT\) entities are not supported by the C SDK yet/);
});
