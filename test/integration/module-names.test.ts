// `keystate build --names` keeps the functions' names in the module, through pre-initialisation
// and the node's deploy-time instrumentation, so the stack of a trap in the node's log names
// the entity's function. The same fixture built without it is numbered there instead.
// test/fixtures/hostile's OverflowStack recurses without end in `recurse`, which no
// optimiser inlines, so its frames are the fixture's own in either build.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { contractClient, statusOf } from "../helpers/grpc-client.js";
import { serveWith } from "../helpers/built-module.js";
import { deploy } from "../helpers/deployed-node.js";
import { fixtureDir } from "../helpers/fixture-build.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const HOSTILE = fixtureDir("hostile");

test("a module built with --names traps with its function names in the node's log; without, numbered", async (t) => {
  const dir = await tempDirFor(t, "names");
  const plain = join(dir, "hostile.wasm");
  const named = join(dir, "hostile-named.wasm");
  await Promise.all([
    run(process.execPath, [KEYSTATE_BIN, "build", HOSTILE, "-o", plain], { cwd: REPO_ROOT }),
    run(process.execPath, [KEYSTATE_BIN, "build", HOSTILE, "--names", "-o", named], { cwd: REPO_ROOT }),
  ]);
  const names = async (wasm: string) => WebAssembly.Module.customSections(new WebAssembly.Module(await readFile(wasm)), "name").length;
  t.is(await names(plain), 0, "a default build carries no name section");
  t.is(await names(named), 1, "--names keeps the name section");

  const node = await serveWith(t, plain);
  const hostile = contractClient(join(HOSTILE, "proto"), "hostile.proto", "keystate.test.hostile.Hostile", node.grpcPort);
  t.teardown(() => hostile.close());
  const overflow = async () => {
    const seen = node.output.length;
    const failed = await statusOf(hostile.methods.OverflowStack!({}));
    t.is(failed.code, status.INTERNAL);
    t.regex(failed.details, /overflowed its stack/);
    return node.waitForOutput("guest call trapped", 10_000, seen);
  };

  const numbered = await overflow();
  t.regex(numbered, /wasm-function\[\d+\]/);
  t.notRegex(numbered, /recurse/);

  // The named build replaces the plain one (same module name); the node keeps serving.
  await deploy(node, named);
  const withNames = await overflow();
  t.regex(withNames, /assembly\/index\/recurse \(wasm:/);
  t.deepEqual(await hostile.methods.Ok!({ text: "after" }), { text: "ok after", value: 0 }, "the named build serves like the plain one");
});

test("--names on a module that is not AssemblyScript is refused before anything is built", async (t) => {
  const error = await t.throwsAsync(run(process.execPath, [KEYSTATE_BIN, "build", join(REPO_ROOT, "modules", "shopping-cart-c"), "--names", "-o", "/dev/null"], { cwd: REPO_ROOT }));
  t.regex(String((error as Error & { stderr?: string }).stderr), /--names keeps function names in AssemblyScript modules only \(this module's language is c\)/);
});
