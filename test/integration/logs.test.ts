// Structured logs of a real `keystate serve` (pino JSON lines on stdout): every failed call
// is one "call failed" line carrying the request id (the client's x-request-id, else a
// generated one that the reply echoes), the module, service, method, entity key and
// status; a trap adds one detail line with the same request id; deploys are logged;
// --log-level filters. The test reads the lines the process actually wrote.
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { deploy, postJson } from "../helpers/deployed-node.js";
import { KEYSTATE_BIN, REPO_ROOT, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const ECHO = "keystate.test.echo.Echo";
const TALLY = "keystate.test.tally.Tally";
const wasm = useBuiltFixture(test, "echo-action");

type LogLine = Record<string, unknown> & { msg: string; level: number };

function logLines(node: NodeProcess): LogLine[] {
  return node.output
    .join("")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine);
}

/** The lines carrying `requestId`, once `count` of them have been written (the pipe may lag the reply). */
async function linesFor(node: NodeProcess, requestId: string, count: number): Promise<LogLine[]> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const lines = logLines(node).filter((line) => line.requestId === requestId);
    if (lines.length >= count || Date.now() > deadline) return lines;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startWithFixture(t: ExecutionContext, extraArgs: string[] = []): Promise<NodeProcess> {
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "logs"), extraArgs });
  t.teardown(() => node.kill());
  await deploy(node, wasm());
  return node;
}

async function keystateCall(node: NodeProcess, target: string, json: string, requestId: string): Promise<string> {
  const args = [KEYSTATE_BIN, "call", target, json, "--address", `127.0.0.1:${node.grpcPort}`, "--request-id", requestId];
  return run(process.execPath, args, { cwd: REPO_ROOT }).then(
    () => "",
    (err: { stderr: string }) => err.stderr,
  );
}

test("a trap in an entity logs one 'call failed' line and one trap line, both with the request id, module, service and key", async (t) => {
  const node = await startWithFixture(t);
  const deployed = logLines(node).filter((line) => line.msg === "module deployed");
  t.is(deployed.length, 1);
  t.is(deployed[0]!.module, "echo-action");

  const stderr = await keystateCall(node, `${TALLY}/Add`, '{"name":"t1","amount":5,"crashAfterUpdate":true}', "trap-req-1");
  t.regex(stderr, /INTERNAL: .*\(request id trap-req-1\)/);
  t.notRegex(stderr, /tally crash after update/, "the guest's message is logged, not sent");

  const lines = await linesFor(node, "trap-req-1", 2);
  const failed = lines.filter((line) => line.msg === "call failed");
  const trapped = lines.filter((line) => line.msg === "guest call trapped");
  t.is(failed.length, 1, "one line for the call's outcome");
  t.is(trapped.length, 1, "one line with the trap's details");
  t.like(failed[0], { ingress: "grpc", module: "echo-action", service: TALLY, method: "Add", entityKey: "t1", status: "INTERNAL", level: 40 });
  t.like(trapped[0], { module: "echo-action", service: TALLY, method: "Add", entityKey: "t1" });
  t.regex(JSON.stringify(trapped[0]!.err), /tally crash after update/);
  t.is(lines.length, 2, "nothing else is logged under this request id");

  // An action has no key; its trap still carries the request id.
  const actionTrap = await postJson(`${node.adminUrl}/${ECHO}/Crash`, { text: "boom" }).then(async (r) => r);
  t.is(actionTrap.status, 500);
  const generated = actionTrap.headers.get("x-request-id")!;
  t.regex(generated, /^[0-9a-f-]{36}$/, "no x-request-id sent: the node made one and says which");
  const actionLines = await linesFor(node, generated, 2);
  t.deepEqual(actionLines.map((line) => line.msg).sort(), ["call failed", "guest call trapped"]);
  t.regex(JSON.stringify(actionLines), /echo crash requested: boom/);
});

test("an entity's refusal over HTTP/JSON logs one info line with the client's request id, echoed in the reply", async (t) => {
  const node = await startWithFixture(t);
  const response = await fetch(`${node.adminUrl}/${ECHO}/Say`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": "http-fail-1" },
    body: "{}",
  });
  t.is(response.status, 400);
  t.is(response.headers.get("x-request-id"), "http-fail-1");
  const lines = await linesFor(node, "http-fail-1", 1);
  t.is(lines.length, 1);
  t.like(lines[0], { msg: "call failed", ingress: "http", module: "echo-action", service: ECHO, method: "Say", status: "INVALID_ARGUMENT", error: "text must not be empty", level: 30 });

  // A refused deploy is logged too, with its request id.
  const refused = await fetch(`${node.adminUrl}/modules`, {
    method: "POST",
    headers: { authorization: `Bearer ${node.token}`, "content-type": "application/wasm", "x-request-id": "deploy-bad-1" },
    body: Buffer.from("not wasm at all"),
  });
  t.is(refused.status, 400);
  t.like((await linesFor(node, "deploy-bad-1", 1))[0], { msg: "module deploy refused", result: "INVALID_MODULE" });
});

test("--log-level warn drops the info lines of routine refusals and keeps the trap's", async (t) => {
  const node = await startWithFixture(t, ["--log-level", "warn"]);
  await keystateCall(node, `${ECHO}/Say`, "{}", "quiet-refusal");
  await keystateCall(node, `${TALLY}/Add`, '{"name":"t2","amount":1,"crashAfterUpdate":true}', "loud-trap");
  t.is((await linesFor(node, "loud-trap", 2)).length, 2);
  t.deepEqual(await linesFor(node, "quiet-refusal", 1), [], "the refusal (info) was not written");
});

test("the 'node started' line says where the start went: process, store and modules phases within the total", async (t) => {
  const node = await startWithFixture(t);
  const started = logLines(node).find((line) => line.msg === "node started");
  const startMs = started?.startMs as { process: number; store: number; modules: number; total: number } | undefined;
  t.truthy(startMs, "the line carries startMs");
  for (const phase of ["process", "store", "modules", "total"] as const) {
    t.true(Number.isInteger(startMs![phase]) && startMs![phase] >= 0, `${phase} is a whole number of ms: ${startMs![phase]}`);
  }
  // Node's own start alone takes tens of ms; the phases are parts of the total (each rounded).
  t.true(startMs!.process > 0);
  t.true(startMs!.process + startMs!.store + startMs!.modules <= startMs!.total + 2, JSON.stringify(startMs));
  // `npm run build` writes serve.cjs's code cache with this Node: a start that cannot use it is slower (scripts/bundle-node.ts).
  t.is(started?.codeCache, "used", "the node ran from the code cache the build wrote");
});
