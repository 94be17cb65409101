// Versions: deploying a module that is live makes a new version live without failing a
// call; rollback makes an earlier one live again; undeploy stops serving.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { fixtureDir, useVersionedFixture } from "../helpers/fixture-build.js";
import { contractClient, statusOf } from "../helpers/grpc-client.js";
import { KEYSTATE_BIN, startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const FIXTURE = fixtureDir("versioned");
const versions = useVersionedFixture(test);

const cli = (node: NodeProcess, ...args: string[]) =>
  run(process.execPath, [KEYSTATE_BIN, ...args, "--admin", node.adminUrl, `--token=${node.token}`]);

test("calls never fail while v2 is deployed and v1 rolled back; replies switch exactly once each way", async (t) => {
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "upgrade") });
  t.teardown(() => node.kill());
  await cli(node, "deploy", versions().v1);
  const client = contractClient(join(FIXTURE, "proto"), "visits.proto", "keystate.test.versioned.Visits", node.grpcPort);
  t.teardown(() => client.close());

  let stop = false;
  const failures: unknown[] = [];
  // Four sequential callers on their own pages: each one's replies are in order.
  const callers = Array.from({ length: 4 }, async (_, caller) => {
    const seen: string[] = [];
    let last = 0;
    while (!stop) {
      try {
        const reply = await client.methods.Visit({ page: `page-${caller}` });
        seen.push(reply.servedBy);
        t.is(Number(reply.count), last + 1, "no visit lost or counted twice across versions");
        last = Number(reply.count);
      } catch (err) {
        failures.push(err);
      }
    }
    return seen;
  });

  await new Promise((resolve) => setTimeout(resolve, 400));
  t.regex((await cli(node, "deploy", versions().v2)).stdout, /deployed versioned version 2/);
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.regex((await cli(node, "rollback", "versioned", "1")).stdout, /versioned version 1 is live/);
  await new Promise((resolve) => setTimeout(resolve, 400));
  stop = true;
  const sequences = await Promise.all(callers);

  t.deepEqual(failures, []);
  for (const seen of sequences) {
    const switches = seen.filter((version, i) => i === 0 || version !== seen[i - 1]);
    t.deepEqual(switches, ["v1", "v2", "v1"], "each caller saw v1, then v2, then v1 again");
  }

  const { stdout } = await cli(node, "modules");
  t.regex(stdout, /^versioned\tv1\t/m);

  t.regex((await cli(node, "undeploy", "versioned")).stdout, /undeployed versioned/);
  t.is((await statusOf(client.methods.Visit({ page: "page-0" }))).code, status.UNIMPLEMENTED);
  await t.throwsAsync(cli(node, "rollback", "versioned", "7"), { message: /NOT_FOUND: module versioned has no version 7/ });
  t.regex((await cli(node, "rollback", "versioned", "2")).stdout, /versioned version 2 is live/);
  const reply = await client.methods.Visit({ page: "page-0" });
  t.is(reply.servedBy, "v2");
});

test("a node started with --keep-versions 2 keeps the two newest versions; a rollback further back is NOT_FOUND", async (t) => {
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "keep-versions"), extraArgs: ["--keep-versions", "2"] });
  t.teardown(() => node.kill());
  for (const file of [versions().v1, versions().v2, versions().v1]) await cli(node, "deploy", file);
  const listed = await fetch(`${node.adminUrl}/modules`, { headers: { authorization: `Bearer ${node.token}` } });
  const { modules } = (await listed.json()) as { modules: { name: string; versions: { version: number }[] }[] };
  t.deepEqual(modules.find((m) => m.name === "versioned")?.versions.map((v) => v.version), [2, 3]);
  await t.throwsAsync(cli(node, "rollback", "versioned", "1"), { message: /NOT_FOUND: module versioned has no version 1/ });
  t.regex((await cli(node, "rollback", "versioned", "2")).stdout, /versioned version 2 is live/);
});
