// Forwards and side effects from a replicated (CRDT) entity, over gRPC against a real
// `keystate serve` on a real redis-server. test/fixtures/replicated-effects (a GCounter
// Tally) forwards to and side-effects into test/fixtures/effects-ledger (a Ledger value
// entity per account).
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT, type NodeProcess } from "../helpers/node-process.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { deploy } from "../helpers/deployed-node.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";

const FIXTURES = join(REPO_ROOT, "test", "fixtures");
const TALLY = "keystate.test.tally.Tally";
const LEDGER = "keystate.test.ledger.Ledger";
const NOWHERE = "keystate.test.nowhere.Nowhere";

const wasm = { tally: buildBeforeAll(test, join(FIXTURES, "replicated-effects")), ledger: buildBeforeAll(test, join(FIXTURES, "effects-ledger")) };
let redis: RunningRedis | undefined;

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  await redis?.stop();
});

/**
 * A node on database `db` of the shared Redis (SELECT n in the URL): each test gets its own.
 * A short lease: a node started after a kill -9 serves once the killed node's lease lapses.
 */
function serve(t: ExecutionContext, db: number, dataDir?: string): Promise<NodeProcess & { dataDir: string }> {
  return serveWith(t, undefined, `${redis!.url}/${db}`, dataDir, ["--lease-ms", "3000"]);
}

interface Clients {
  tally: ContractClient;
  ledger: ContractClient;
}

function clients(t: ExecutionContext, node: NodeProcess): Clients {
  const made = {
    tally: contractClient(join(FIXTURES, "replicated-effects", "proto"), "tally.proto", TALLY, node.grpcPort),
    ledger: contractClient(join(FIXTURES, "effects-ledger", "proto"), "ledger.proto", LEDGER, node.grpcPort),
  };
  t.teardown(() => Object.values(made).forEach((c) => c.close()));
  return made;
}

const balance = async (c: Clients, account: string) => (await c.ledger.methods.Get!({ account })) as { balance: string; entries: string; lastReference: string };
const count = async (c: Clients, tally: string) => ((await c.tally.methods.Get!({ tally })) as { value: string }).value;

test.serial("a replicated entity's forward answers with the target's reply; its sync side effect lands before the reply; an undeployed target fails with UNIMPLEMENTED and leaves the CRDT as it was", async (t) => {
  const node = await serve(t, 1);
  await deploy(node, wasm.tally());
  await deploy(node, wasm.ledger());
  const c = clients(t, node);

  // Forward: the caller gets the Ledger's Balance, and the counter's own increment was stored.
  t.like(await c.tally.methods.AddAndForward!({ tally: "t1", account: "alice", amount: 5 }), { account: "alice", balance: "5", entries: "1", lastReference: "t1" });
  t.is(await count(c, "t1"), "5");

  // Synchronous side effect: the caller gets the Tally's own reply, and the ledger entry is already there.
  t.like(await c.tally.methods.AddWithSyncEffect!({ tally: "t1", account: "alice", amount: 7 }), { value: "12" });
  t.like(await balance(c, "alice"), { balance: "12", entries: "2", lastReference: "t1" });

  // A forward, or a sync side effect, to a service that is not deployed: UNIMPLEMENTED, no op applied.
  const forward = await statusOf(c.tally.methods.AddAndForward!({ tally: "t1", account: "alice", amount: 100, ledgerService: NOWHERE }));
  t.deepEqual(forward, { code: status.UNIMPLEMENTED, details: `the command calls ${NOWHERE}/Record, which is not deployed` });
  const sync = await statusOf(c.tally.methods.AddWithSyncEffect!({ tally: "t1", account: "alice", amount: 100, ledgerService: NOWHERE }));
  t.deepEqual(sync, { code: status.UNIMPLEMENTED, details: `the command calls ${NOWHERE}/Record, which is not deployed` });
  t.is(await count(c, "t1"), "12", "the refused commands' increments are not in the resident CRDT");
  t.like(await balance(c, "alice"), { balance: "12", entries: "2" });

  // Nor in Redis: a fresh process loads the same counter.
  await node.kill("SIGKILL");
  const again = clients(t, await serve(t, 1, node.dataDir));
  t.is(await count(again, "t1"), "12");
});
