// HTTP/JSON transcoding end to end: a real node process, the shopping-cart (and counter,
// when it builds) modules deployed with the CLI, and plain fetch() calls against the
// routes their google.api.http annotations declare. The cart tests run once per cart
// module: the AssemblyScript cart and the C cart (modules/shopping-cart-c).
import test, { type ExecutionContext } from "ava";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor.js";
import { bindingsOf, parseTemplate, RouteTable, type HttpBinding } from "../../host/ingress/http-rules.js";
import { JsonCodec } from "../../host/ingress/json-codec.js";
import { decodeDescriptorSet } from "../../host/proto/descriptors.js";
import type { LoadedModule } from "../../host/runtime/loaded-module.js";
import type { MethodModel } from "../../host/runtime/service-model.js";
import { deploy, ensureExample, fetchJson, postJson, startDeployedNode, type DeployedNode } from "../helpers/deployed-node.js";
import { CART_MODULES, cartWasm, type CartModule } from "../helpers/cart-modules-c.js";

// One node per cart module (both own the cart service): the AssemblyScript cart with the
// counter next to it, and the C cart (guest-sdk-c). Every cart test runs on both.
const nodes = new Map<string, DeployedNode>();
let counterWasm: string | undefined;
const CART = "keystate.examples.shoppingcart.ShoppingCart";

test.before(async () => {
  counterWasm = await ensureExample("counter");
  for (const cart of CART_MODULES) {
    const wasm = await cartWasm(cart);
    const extra = cart.module === "shopping-cart" && counterWasm ? [counterWasm] : [];
    nodes.set(cart.module, await startDeployedNode(`http-json-${cart.module}`, [wasm, ...extra]));
  }
});

test.after.always(async () => {
  for (const node of nodes.values()) await node.stop();
});

/** Registers `body` once per cart, titled "<title> [<module>]", with `url` on that cart's node. */
function cartTest(title: string, body: (t: ExecutionContext, url: (path: string) => string, cart: CartModule, node: DeployedNode) => Promise<void>): void {
  for (const cart of CART_MODULES) {
    test(`${title} [${cart.module}]`, async (t) => {
      const node = nodes.get(cart.module)!;
      await body(t, (path) => node.http + path, cart, node);
    });
  }
}

cartTest("annotated routes: add (body *), GET /carts/{user_id} and GET /carts/{user_id}/items (response_body)", async (t, url) => {
  t.deepEqual(await postJson(url("/cart/alice/items/add"), { productId: "pen", name: "Pen", quantity: 2 }).then((r) => [r.status, r.body]), [200, {}]);
  // Proto field names are accepted as well as lowerCamelCase; int32 may come as a string.
  t.is((await postJson(url("/cart/alice/items/add"), { product_id: "ink", name: "Ink", quantity: "3" })).status, 200);
  t.is((await postJson(url("/cart/alice/items/add"), { productId: "pen", name: "Pen", quantity: 1 })).status, 200);

  const cart = await fetchJson(url("/carts/alice"));
  t.is(cart.status, 200);
  t.regex(cart.headers.get("content-type") ?? "", /^application\/json/);
  t.deepEqual(cart.body, {
    items: [
      { productId: "pen", name: "Pen", quantity: 3 },
      { productId: "ink", name: "Ink", quantity: 3 },
    ],
  });
  const items = await fetchJson(url("/carts/alice/items"));
  t.deepEqual([items.status, items.body], [200, cart.body.items]);
});

cartTest("response_body of an empty repeated field is [], and an empty cart is {}", async (t, url) => {
  t.deepEqual((await fetchJson(url("/carts/nobody/items"))).body, []);
  t.deepEqual((await fetchJson(url("/carts/nobody"))).body, {});
});

cartTest("remove: both fields from path parameters; removing a missing product is NOT_FOUND as 404 JSON", async (t, url) => {
  await postJson(url("/cart/bob/items/add"), { productId: "a", name: "A", quantity: 1 });
  await postJson(url("/cart/bob/items/add"), { productId: "b", name: "B", quantity: 1 });
  const removed = await fetchJson(url("/cart/bob/items/a/remove"), { method: "POST" });
  t.deepEqual([removed.status, removed.body], [200, {}]);
  t.deepEqual((await fetchJson(url("/carts/bob"))).body, { items: [{ productId: "b", name: "B", quantity: 1 }] });

  const missing = await fetchJson(url("/cart/bob/items/a/remove"), { method: "POST" });
  t.is(missing.status, 404);
  t.is(missing.body.error.status, "NOT_FOUND");
  t.is(missing.body.error.code, 5);
  t.regex(missing.body.error.message, /\ba\b.*not in the cart/);
});

cartTest("default POST /<package.Service>/<Method> route takes the whole request as JSON", async (t, url) => {
  const added = await postJson(url(`/${CART}/AddItem`), { userId: "carol", productId: "x", name: "X", quantity: 4 });
  t.deepEqual([added.status, added.body], [200, {}]);
  const got = await postJson(url(`/${CART}/GetCart`), { userId: "carol" });
  t.deepEqual([got.status, got.body], [200, { items: [{ productId: "x", name: "X", quantity: 4 }] }]);
  const removed = await postJson(url(`/${CART}/RemoveItem`), { user_id: "carol", product_id: "x" });
  t.is(removed.status, 200);
  t.deepEqual((await fetchJson(url("/carts/carol"))).body, {});
});

cartTest("path parameters are percent-decoded and win over the same field in the body", async (t, url) => {
  const added = await postJson(url("/cart/d%C3%A1n%20o%2Fk/items/add"), { userId: "mallory", productId: "p", name: "P", quantity: 1 });
  t.is(added.status, 200);
  t.deepEqual((await postJson(url(`/${CART}/GetCart`), { userId: "dán o/k" })).body.items, [{ productId: "p", name: "P", quantity: 1 }]);
  t.deepEqual((await fetchJson(url("/carts/mallory"))).body, {});
});

cartTest("a failure the entity chooses (quantity < 1: INVALID_ARGUMENT) is 400 and writes nothing", async (t, url) => {
  const refused = await postJson(url("/cart/dave/items/add"), { productId: "z", name: "Z", quantity: 0 });
  t.is(refused.status, 400);
  t.deepEqual([refused.body.error.status, refused.body.error.code], ["INVALID_ARGUMENT", 3]);
  t.deepEqual((await fetchJson(url("/carts/dave"))).body, {});
});

cartTest("malformed JSON, wrong field types and unknown fields are 400s naming the problem", async (t, url) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["malformed JSON", '{"productId": "p",', /not valid JSON/],
    ["a string for an int32", { productId: "p", quantity: "many" }, /quantity.*invalid integer/],
    ["a fraction for an int32", { productId: "p", quantity: 1.5 }, /quantity.*not an integer/],
    ["an int32 out of range", { productId: "p", quantity: 2 ** 40 }, /quantity.*out of range/],
    ["an object for a string", { productId: { id: 1 }, quantity: 1 }, /product_?[iI]d/],
    ["an unknown field", { productId: "p", quantity: 1, colour: "red" }, /unknown field.*colour/],
    ["a JSON array body", [1, 2], /must be a JSON object/],
  ];
  for (const [what, body, message] of cases) {
    const response = await postJson(url("/cart/erin/items/add"), body);
    t.is(response.status, 400, what);
    t.is(response.body.error.status, "INVALID_ARGUMENT", what);
    t.is(response.body.error.code, 3, what);
    t.regex(response.body.error.message, message, what);
  }
  t.deepEqual((await fetchJson(url("/carts/erin"))).body, {}, "no refused request reached the entity");
});

cartTest("query parameters: unknown ones are 400; bad percent-encoding in the path is 400", async (t, url) => {
  const unknown = await fetchJson(url("/carts/frank?colour=red"));
  t.is(unknown.status, 400);
  t.regex(unknown.body.error.message, /query parameter "colour"/);
  // user_id from the query would be overridden by the path; a known field is accepted.
  t.is((await fetchJson(url("/carts/frank?user_id=someone-else"))).status, 200);
  const badEscape = await fetchJson(url("/carts/fr%ZZank"));
  t.is(badEscape.status, 400);
  t.regex(badEscape.body.error.message, /percent-encoding/);
  const queryWithStarBody = await fetchJson(url("/cart/frank/items/add?quantity=1"), { method: "POST", body: "{}" });
  t.is(queryWithStarBody.status, 400);
  t.regex(queryWithStarBody.body.error.message, /query parameters/);
});

cartTest("unknown route is 404, a known path with the wrong method is 405 with Allow", async (t, url) => {
  const none = await fetchJson(url("/no/such/route"));
  t.deepEqual([none.status, none.body.error.status, none.body.error.code], [404, "NOT_FOUND", 5]);
  t.is((await fetchJson(url("/carts/alice/items/extra"))).status, 404);
  t.is((await fetchJson(url("/carts/"))).status, 404, "an empty path parameter does not match");
  const wrong = await fetchJson(url("/carts/alice"), { method: "DELETE" });
  t.is(wrong.status, 405);
  t.is(wrong.headers.get("allow"), "GET");
  t.is(wrong.body.error.status, "UNIMPLEMENTED");
});

cartTest("a body over the 4 MiB default limit is 413", async (t, url) => {
  const name = "n".repeat(4 * 1024 * 1024);
  const response = await postJson(url("/cart/gina/items/add"), { productId: "big", name, quantity: 1 });
  t.is(response.status, 413);
  t.is(response.body.error.status, "RESOURCE_EXHAUSTED");
  t.regex(response.body.error.message, /limit/);
  // The connection and the node are still fine afterwards.
  t.is((await postJson(url("/cart/gina/items/add"), { productId: "small", name: "s", quantity: 1 })).status, 200);
});

cartTest("admin routes keep working next to the transcoder", async (t, url, cart, shared) => {
  t.deepEqual((await fetchJson(url("/healthz"))).body, { status: "ok" });
  t.is((await fetchJson(url("/modules"))).status, 401);
  const listed = await fetchJson(url("/modules"), { headers: { authorization: `Bearer ${shared.node.token}` } });
  t.true(listed.body.modules.some((m: { name: string }) => m.name === cart.module));
});

test("counter routes (int64 values are JSON strings), when modules/counter builds", async (t) => {
  const url = (path: string) => nodes.get("shopping-cart")!.http + path;
  if (!counterWasm) {
    t.log("modules/counter is not built; skipping its routes");
    t.pass();
    return;
  }
  t.deepEqual((await fetchJson(url("/counters/c1"))).body, {});
  t.deepEqual((await postJson(url("/counters/c1/increase"), { value: 5 })).body, { value: "5" });
  t.deepEqual((await postJson(url("/counters/c1/increase"), { value: "9007199254740993" })).body, { value: "9007199254740998" });
  t.deepEqual((await postJson(url("/counters/c1/decrease"), { value: 8 })).body, { value: "9007199254740990" });
  const negative = await postJson(url("/counters/c1/decrease"), { value: -1 });
  t.deepEqual([negative.status, negative.body.error.status], [400, "INVALID_ARGUMENT"]);
  t.deepEqual((await fetchJson(url("/counters/c1"))).body, { value: "9007199254740990" });
  t.deepEqual((await postJson(url("/counters/c1/reset"), {})).body, {});
  t.deepEqual((await fetchJson(url("/counters/c1"))).body, {});
});

cartTest("routes follow deploys: a route is 404 before its module is deployed and served right after", async (t, _url, cartModule) => {
  const cart = await cartWasm(cartModule);
  const fresh = await startDeployedNode("http-json-live", []);
  t.teardown(() => fresh.stop());
  const before = await fetchJson(fresh.http + "/carts/henry");
  t.deepEqual([before.status, before.body.error.status], [404, "NOT_FOUND"]);
  await deploy(fresh.node, cart);
  t.is((await postJson(fresh.http + "/cart/henry/items/add", { productId: "p", name: "P", quantity: 1 })).status, 200);
  t.deepEqual((await fetchJson(fresh.http + "/carts/henry/items")).body, [{ productId: "p", name: "P", quantity: 1 }]);
});

// The shopping-cart contract uses only simple templates, so the rest of the google.api.http
// grammar and the JSON mapping are checked here on the real matcher and codec.

function binding(httpMethod: string, path: string, method = path): HttpBinding {
  return { httpMethod, template: parseTemplate(path), body: undefined, responseBody: undefined, service: "lib.Library", method };
}

function match(table: RouteTable, httpMethod: string, path: string) {
  const result = table.match(httpMethod, path.slice(1).split("/"));
  if (result.kind !== "match") return result.kind;
  return { method: result.binding.method, params: Object.fromEntries(result.params.map((p) => [p.fieldPath.join("."), p.value])) };
}

test("path templates: {field=segments/*}, **, :verb, nested field paths, most specific wins", (t) => {
  const table = new RouteTable([
    binding("GET", "/v1/{name=shelves/*/books/*}", "GetBook"),
    binding("GET", "/v1/files/{path=**}", "GetFile"),
    binding("POST", "/v1/{name=messages/*}:cancel", "Cancel"),
    binding("GET", "/v1/shelves/{shelf.name}", "GetShelf"),
    binding("GET", "/v1/shelves/special", "Special"),
    binding("GET", "/v1/*/{id}/x", "Wild"),
  ]);
  t.deepEqual(match(table, "GET", "/v1/shelves/1/books/2"), { method: "GetBook", params: { name: "shelves/1/books/2" } });
  t.is(match(table, "GET", "/v1/shelves/1/books"), "none");
  t.is(match(table, "GET", "/v1/racks/1/books/2"), "none", "literals inside a variable must match");
  t.deepEqual(match(table, "GET", "/v1/files/a/b/c.txt"), { method: "GetFile", params: { path: "a/b/c.txt" } });
  t.deepEqual(match(table, "GET", "/v1/files"), { method: "GetFile", params: { path: "" } }, "** matches zero segments");
  t.deepEqual(match(table, "POST", "/v1/messages/5:cancel"), { method: "Cancel", params: { name: "messages/5" } });
  t.is(match(table, "POST", "/v1/messages/5"), "none", "the verb is required");
  t.deepEqual(match(table, "GET", "/v1/shelves/7"), { method: "GetShelf", params: { "shelf.name": "7" } });
  t.deepEqual(match(table, "GET", "/v1/shelves/special"), { method: "Special", params: {} });
  t.deepEqual(match(table, "GET", "/v1/any/9/x"), { method: "Wild", params: { id: "9" } });
  t.is(match(table, "DELETE", "/v1/shelves/7"), "wrong-method");

  for (const bad of ["v1/x", "/v1/**/x", "/v1/{name", "/v1/{na-me}", "/v1//x", "/v1/{a={b}}", "/v1/x:"]) {
    t.throws(() => parseTemplate(bad), undefined, bad);
  }
});

test("bindings: every verb, custom, additional_bindings, body and response_body, plus the default POST route", (t) => {
  const method = {
    service: "lib.Library",
    name: "Update",
    options: {
      ".google.api.http": {
        patch: "/v1/{shelf.name=shelves/*}",
        body: "shelf",
        additionalBindings: [
          { put: "/v1/shelves/{shelf.name}", body: "*" },
          { custom: { kind: "REPORT", path: "/v1/report" }, responseBody: "books" },
        ],
      },
    },
  } as unknown as MethodModel;
  const { bindings, errors } = bindingsOf(method);
  t.deepEqual(errors, []);
  t.deepEqual(
    bindings.map((b) => [b.httpMethod, b.template.source, b.body, b.responseBody]),
    [
      ["PATCH", "/v1/{shelf.name=shelves/*}", "shelf", undefined],
      ["PUT", "/v1/shelves/{shelf.name}", "*", undefined],
      ["REPORT", "/v1/report", undefined, "books"],
      ["POST", "/lib.Library/Update", "*", undefined],
    ],
  );
  const broken = bindingsOf({ service: "lib.Library", name: "Bad", options: { ".google.api.http": { get: "/v1/**/x" } } } as unknown as MethodModel);
  t.is(broken.bindings.length, 1, "only the default route survives a bad template");
  t.regex(broken.errors[0]!, /lib\.Library\.Bad.*"\*\*" must be the last segment/);
});

const LIBRARY_PROTO = `
syntax = "proto3";
package lib;
enum Genre { GENRE_UNSPECIFIED = 0; NOVEL = 1; POETRY = 2; }
message Shelf { string name = 1; int64 capacity = 2; }
message Book { string title = 1; Genre genre = 2; bool in_print = 3; double price = 4; }
message UpdateRequest { Shelf shelf = 1; string book_id = 2; Book book = 3; bool validate_only = 4; repeated int32 editions = 5; Genre genre = 6; }
message ShelfReply { Shelf shelf = 1; repeated Book books = 2; uint64 total = 3; }
`;

async function libraryCodec(): Promise<{ codec: JsonCodec; root: protobuf.Root }> {
  const root = protobuf.parse(LIBRARY_PROTO, { keepCase: true }).root;
  const set = (root as unknown as { toDescriptor(syntax: string): protobuf.Message }).toDescriptor("proto3");
  const descriptorBytes = descriptor.FileDescriptorSet.encode(set).finish();
  // What a loaded module carries: the bytes (for reflection) and the set decoded as the host decodes it.
  const module = { descriptorBytes, api: { descriptors: { set: decodeDescriptorSet(descriptorBytes) } } } as unknown as LoadedModule;
  return { codec: await JsonCodec.forModule(module), root };
}

test("JSON codec: a body field, repeated query parameters and nested path parameters fill one request", async (t) => {
  const { codec, root } = await libraryCodec();
  const bytes = codec.requestBytes("lib.UpdateRequest", {
    body: { title: "Odes", genre: "POETRY", inPrint: true, price: "12.5" },
    bodyField: "book",
    query: [
      { fieldPath: ["validate_only"], value: "true" },
      { fieldPath: ["editions"], value: "1" },
      { fieldPath: ["editions"], value: "2" },
      { fieldPath: ["genre"], value: "NOVEL" },
      { fieldPath: ["shelf", "capacity"], value: "9007199254740993" },
    ],
    pathParams: [
      { fieldPath: ["shelf", "name"], value: "shelves/7" },
      { fieldPath: ["book_id"], value: "b 1" },
    ],
  });
  const type = root.lookupType("lib.UpdateRequest");
  t.deepEqual(type.toObject(type.decode(bytes), { longs: String, enums: String }), {
    shelf: { name: "shelves/7", capacity: "9007199254740993" },
    book_id: "b 1",
    book: { title: "Odes", genre: "POETRY", in_print: true, price: 12.5 },
    validate_only: true,
    editions: [1, 2],
    genre: "NOVEL",
  });
});

test("JSON codec: string parameters that do not fit their field are INVALID_REQUEST naming the parameter", async (t) => {
  const { codec } = await libraryCodec();
  const attempt = (query: Array<[string, string]>, pathParams: Array<[string, string]> = []) =>
    t.throws(() =>
      codec.requestBytes("lib.UpdateRequest", {
        body: undefined,
        bodyField: undefined,
        query: query.map(([k, value]) => ({ fieldPath: k.split("."), value })),
        pathParams: pathParams.map(([k, value]) => ({ fieldPath: k.split("."), value })),
      }),
    );
  t.regex(attempt([["validate_only", "yes"]])!.message, /validate_only.*true or false/);
  t.regex(attempt([["editions", "x"]])!.message, /editions.*invalid integer/);
  t.regex(attempt([["genre", "OPERA"]])!.message, /genre.*unknown enum value/);
  t.regex(attempt([["shelf", "x"]])!.message, /message field "shelf"/);
  t.regex(attempt([["book_id.x", "x"]])!.message, /not a singular message field/);
  t.regex(attempt([], [["shelf.nope", "x"]])!.message, /path parameter "shelf.nope".*lib.Shelf has no field "nope"/);
  t.is(attempt([["validate_only", "yes"]])!.name, "KeystateError");
});

test("JSON codec: replies use lowerCamelCase and int64 strings; response_body picks a (nested) field or its default", async (t) => {
  const { codec, root } = await libraryCodec();
  const type = root.lookupType("lib.ShelfReply");
  const bytes = type.encode(type.fromObject({ shelf: { name: "s", capacity: 3 }, total: "18446744073709551615" })).finish();
  t.deepEqual(codec.replyJson("lib.ShelfReply", bytes, undefined), { shelf: { name: "s", capacity: "3" }, total: "18446744073709551615" });
  t.is(codec.replyJson("lib.ShelfReply", bytes, "shelf.name"), "s");
  t.deepEqual(codec.replyJson("lib.ShelfReply", bytes, "books"), []);
  t.is(codec.replyJson("lib.ShelfReply", new Uint8Array(), "total"), "0");
  t.deepEqual(codec.replyJson("lib.ShelfReply", new Uint8Array(), "shelf"), {});
  t.is(codec.fieldPathError("lib.ShelfReply", "shelf.name"), undefined);
  t.regex(codec.fieldPathError("lib.ShelfReply", "shelf.title") ?? "", /no field "title"/);
});
