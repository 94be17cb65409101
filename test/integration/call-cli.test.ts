// `keystate call` as a user runs it: a child process against a real `keystate serve`,
// discovering the services through gRPC reflection alone (no .proto on the client side),
// JSON in, JSON out, errors as the status name and message on stderr with a non-zero exit.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ensureExample, startDeployedNode, type DeployedNode } from "../helpers/deployed-node.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";

const execFileAsync = promisify(execFile);
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const COUNTER = "keystate.examples.counter.Counter";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function keystateCall(node: DeployedNode, ...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [KEYSTATE_BIN, "call", "--address", `127.0.0.1:${node.node.grpcPort}`, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test("keystate call lists, calls and reports errors through reflection alone", async (t) => {
  const cart = (await ensureExample("shopping-cart"))!;
  const counter = await ensureExample("counter");
  const node = await startDeployedNode("call-cli", counter ? [cart, counter] : [cart]);
  t.teardown(() => node.stop());

  const list = await keystateCall(node, "--list");
  t.is(list.code, 0, list.stderr);
  const methods = list.stdout.trim().split("\n");
  for (const method of ["AddItem", "RemoveItem", "GetCart"]) t.true(methods.includes(`${CART}/${method}`), method);
  t.false(methods.some((m) => m.startsWith("grpc.reflection")), "reflection itself is not listed");

  // Proto field names and lowerCamelCase JSON names are both accepted; the reply is proto3 JSON.
  const add = await keystateCall(node, `${CART}/AddItem`, '{"user_id":"ann","productId":"apple","name":"Apple","quantity":2}');
  t.is(add.code, 0, add.stderr);
  t.deepEqual(JSON.parse(add.stdout), {});
  await keystateCall(node, `${CART}/AddItem`, '{"userId":"ann","productId":"apple","name":"Apple","quantity":1}');
  const get = await keystateCall(node, `${CART}/GetCart`, '{"userId":"ann"}');
  t.deepEqual(JSON.parse(get.stdout), { items: [{ productId: "apple", name: "Apple", quantity: 3 }] });

  if (counter) {
    // int64 travels as a JSON string, in and out.
    const increased = await keystateCall(node, `${COUNTER}/Increase`, '{"counterId":"c1","value":"40"}');
    await keystateCall(node, `${COUNTER}/Increase`, '{"counterId":"c1","value":2}');
    t.deepEqual(JSON.parse(increased.stdout), { value: "40" });
    t.deepEqual(JSON.parse((await keystateCall(node, `${COUNTER}/Get`, '{"counterId":"c1"}')).stdout), { value: "42" });
  }

  // The entity's refusal: status name and message on stderr, the request id too, exit 1.
  const missing = await keystateCall(node, `${CART}/RemoveItem`, '{"userId":"ann","productId":"pear"}', "--request-id", "cli-test-1");
  t.is(missing.code, 1);
  t.is(missing.stdout, "");
  t.regex(missing.stderr, /NOT_FOUND: .*pear.*\(request id cli-test-1\)/);

  const badJson = await keystateCall(node, `${CART}/AddItem`, "{not json");
  t.not(badJson.code, 0);
  t.regex(badJson.stderr, /not valid JSON/);
  const badField = await keystateCall(node, `${CART}/AddItem`, '{"userId":"ann","quantity":"lots"}');
  t.not(badField.code, 0);
  t.regex(badField.stderr, /AddLineItem.*quantity/);
  const unknownService = await keystateCall(node, "no.Such/Method", "{}");
  t.not(unknownService.code, 0);
  t.regex(unknownService.stderr, /UNIMPLEMENTED: no service no\.Such/);
  const unknownMethod = await keystateCall(node, `${CART}/Checkout`, "{}");
  t.regex(unknownMethod.stderr, /UNIMPLEMENTED: .*no method Checkout; it has AddItem, RemoveItem, GetCart/);

  // Nothing listening: a plain message, not a stack trace.
  const nowhere = await execFileAsync(process.execPath, [KEYSTATE_BIN, "call", "--address", "127.0.0.1:1", "--list"], { cwd: REPO_ROOT }).catch((e: Run) => e);
  t.regex(nowhere.stderr, /UNAVAILABLE: cannot reach a Keystate node at 127\.0\.0\.1:1/);
});
