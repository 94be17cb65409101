// A streaming call to a service whose kind does not serve streams (an action, a value
// entity), made with a real gRPC client against a `keystate serve` process: it is
// answered UNIMPLEMENTED, and the node keeps serving. (Before, grpc-js handed the
// streaming call to a unary handler, which crashed the whole node.)
import test from "ava";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { contractClient } from "../helpers/grpc-client.js";
import { streamClient } from "../helpers/grpc-stream.js";
import { KEYSTATE_BIN, REPO_ROOT, startNodeProcess } from "../helpers/node-process.js";
import { makeTempDir, removeDir, tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "echo-action");
let buildDir = "";

test.before(async () => {
  buildDir = await makeTempDir("stream-refusal-build");
  await run(process.execPath, [KEYSTATE_BIN, "build", FIXTURE_DIR, "-o", join(buildDir, "echo-action.wasm")], { cwd: REPO_ROOT });
});

test.after.always(async () => {
  if (buildDir) await removeDir(buildDir);
});

test("server-streaming calls to an action and a value entity answer UNIMPLEMENTED and the node keeps serving", async (t) => {
  const dataDir = await tempDirFor(t, "stream-refusal");
  await writeFile(join(dataDir, "admin-token"), "stream-refusal-token\n", { mode: 0o600 });
  const node = await startNodeProcess({ dataDir, extraArgs: ["--admin-token", "stream-refusal-token"] });
  t.teardown(() => node.kill());
  await run(process.execPath, [KEYSTATE_BIN, "deploy", join(buildDir, "echo-action.wasm"), "--admin", node.adminUrl, "--token", node.token]);
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
