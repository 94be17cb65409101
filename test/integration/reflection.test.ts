// gRPC server reflection end to end: clients that hold no .proto discover the deployed
// services (a grpc-js client here, and buf curl as an independent implementation), and
// what reflection shows follows deploys.
import test from "ava";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { deploy, ensureExample, startDeployedNode } from "../helpers/deployed-node.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { ReflectionClient, reflectedService } from "../helpers/reflection-client.js";
import protobuf from "protobufjs";

const run = promisify(execFile);
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const COUNTER = "keystate.examples.counter.Counter";

test("a grpc-js client discovers ShoppingCart through reflection alone and calls AddItem and GetCart", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  const node = await startDeployedNode("reflection-call", [cart]);
  t.teardown(() => node.stop());

  const service = await reflectedService(node.node.grpcPort, CART);
  t.teardown(() => service.close());
  t.deepEqual(service.methodNames.sort(), ["AddItem", "GetCart", "RemoveItem"]);
  t.deepEqual(await service.call("AddItem", { userId: "ivy", productId: "tea", name: "Tea", quantity: 2 }), {});
  await service.call("AddItem", { userId: "ivy", productId: "tea", name: "Tea", quantity: 1 });
  t.deepEqual(await service.call("GetCart", { userId: "ivy" }), { items: [{ productId: "tea", name: "Tea", quantity: 3 }] });
  const missing = await service.call("RemoveItem", { userId: "ivy", productId: "cake" }).catch((err: { code: number }) => err);
  t.is((missing as { code: number }).code, 5, "NOT_FOUND travels as the gRPC status");
});

test("reflection answers files with their dependencies, by symbol and by name, on v1 and v1alpha; unknown ones are NOT_FOUND", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  const node = await startDeployedNode("reflection-files", [cart]);
  t.teardown(() => node.stop());

  for (const version of ["v1", "v1alpha"] as const) {
    const client = new ReflectionClient(node.node.grpcPort, version);
    t.teardown(() => client.close());
    t.deepEqual(await client.listServices(), [CART], version);

    const byMethod = await client.fileContainingSymbol(`${CART}.GetCart`);
    const names = (byMethod.files ?? []).map(fileName);
    t.is(names[0], "shoppingcart.proto", `${version}: the file defining the symbol comes first`);
    for (const dep of ["google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto", "google/protobuf/empty.proto", "keystate/options.proto"]) {
      t.true(names.includes(dep), `${version}: transitive dependency ${dep} is included`);
    }
    t.is(fileName((await client.fileContainingSymbol("keystate.examples.shoppingcart.LineItem")).files![0]!), "shoppingcart.proto");
    t.is(fileName((await client.fileByFilename("google/protobuf/empty.proto")).files![0]!), "google/protobuf/empty.proto");

    const unknown = await client.fileContainingSymbol("no.such.Service");
    t.is(unknown.error?.code, 5);
    t.regex(unknown.error?.message ?? "", /no\.such\.Service/);
    t.is((await client.fileByFilename("nope.proto")).error?.code, 5);
  }
});

test("what reflection lists follows deploys", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  const counter = await ensureExample("counter");
  const node = await startDeployedNode("reflection-live", []);
  t.teardown(() => node.stop());
  const client = new ReflectionClient(node.node.grpcPort);
  t.teardown(() => client.close());

  t.deepEqual(await client.listServices(), []);
  t.is((await client.fileContainingSymbol(CART)).error?.code, 5);
  await deploy(node.node, cart);
  t.deepEqual(await client.listServices(), [CART], "the open stream sees the deploy");
  t.is(fileName((await client.fileContainingSymbol(CART)).files![0]!), "shoppingcart.proto");
  if (counter) {
    await deploy(node.node, counter);
    t.deepEqual(await client.listServices(), [COUNTER, CART]);
    t.is(fileName((await client.fileContainingSymbol(`${COUNTER}.Increase`)).files![0]!), "counter.proto");
  }
});

test("buf curl (an independent reflection client) lists the methods and calls GetCart with no schema", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  const node = await startDeployedNode("reflection-buf", [cart]);
  t.teardown(() => node.stop());
  const buf = join(REPO_ROOT, "node_modules", ".bin", "buf");
  const base = `http://127.0.0.1:${node.node.grpcPort}`;
  const flags = ["curl", "--protocol", "grpc", "--http2-prior-knowledge"];

  const listed = await run(buf, [...flags, "--list-methods", base]);
  t.deepEqual(listed.stdout.trim().split("\n").sort(), [`${CART}/AddItem`, `${CART}/GetCart`, `${CART}/RemoveItem`]);
  await run(buf, [...flags, "-d", JSON.stringify({ userId: "jo", productId: "p", name: "P", quantity: 2 }), `${base}/${CART}/AddItem`]);
  const got = await run(buf, [...flags, "--reflect-protocol", "grpc-v1alpha", "-d", '{"userId":"jo"}', `${base}/${CART}/GetCart`]);
  t.deepEqual(JSON.parse(got.stdout), { items: [{ productId: "p", name: "P", quantity: 2 }] });
});

/** The `name` (field 1) of a serialized FileDescriptorProto. */
function fileName(bytes: Uint8Array): string {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === ((1 << 3) | 2)) return reader.string();
    reader.skipType(tag & 7);
  }
  return "";
}
