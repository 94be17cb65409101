// A streaming call to a service whose kind does not serve streams (an action, a value
// entity), made with a real gRPC client against a `keystate serve` process: it is
// answered UNIMPLEMENTED, and the node keeps serving. (Before, grpc-js handed the
// streaming call to a unary handler, which crashed the whole node.)
import test from "ava";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { contractClient } from "../helpers/grpc-client.js";
import { streamClient } from "../helpers/grpc-stream.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "echo-action");
const wasm = buildBeforeAll(test, FIXTURE_DIR);

test("server-streaming calls to an action and a value entity answer UNIMPLEMENTED and the node keeps serving", async (t) => {
  const node = await serveWith(t, wasm());
  const protoDir = join(FIXTURE_DIR, "proto");

  const echo = streamClient(protoDir, "echo.proto", "keystate.test.echo.Echo", node.grpcPort);
  const tally = streamClient(protoDir, "tally.proto", "keystate.test.tally.Tally", node.grpcPort);
  t.teardown(() => (echo.close(), tally.close()));
  for (const call of [echo.open("Chatter", { text: "x" }), tally.open("Watch", { name: "s" }), echo.open("Chatter", { text: "again" })]) {
    const ended = await call.ended;
    t.is(ended.code, status.UNIMPLEMENTED);
    t.regex(ended.details, /only replicated \(CRDT\) entities serve streamed commands/);
    t.deepEqual(call.messages, []);
  }

  // Still alive: a unary call on the same process answers.
  const unary = contractClient(protoDir, "echo.proto", "keystate.test.echo.Echo", node.grpcPort);
  t.teardown(() => unary.close());
  t.deepEqual(await unary.methods.Say!({ text: "ok" }), { text: "ok", length: 2 });
  t.is(node.child.exitCode, null);
});
