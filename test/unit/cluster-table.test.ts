// `keystate cluster` output: shard ranges, self marker, dead and draining nodes, unowned shards.
import test from "ava";
import { asClusterView, formatClusterTable, shardRanges, type ClusterView } from "../../host/cli/cluster-table.js";

test("shard lists collapse into sorted, deduplicated ranges", (t) => {
  t.is(shardRanges([]), "-");
  t.is(shardRanges([7]), "7");
  t.is(shardRanges([3, 4]), "3-4");
  t.is(shardRanges([...Array.from({ length: 13 }, (_, i) => i), 40, 42, 43, 44]), "0-12,40,42-44");
  t.is(shardRanges([44, 42, 43, 42, 0]), "0,42-44");
});

const view: ClusterView = {
  cluster: "dev",
  shardCount: 8,
  self: "node-2",
  nodes: [
    { id: "node-2", address: "127.0.0.1:9002", shards: [4, 5, 6, 7], alive: true, draining: false },
    { id: "node-1", address: "127.0.0.1:9000", shards: [0, 1, 3], alive: true, draining: true },
    { id: "node-3", address: "127.0.0.1:9004", shards: [], alive: false, draining: false },
  ],
};

test("one row per node, sorted by id, self marked, state and counts shown", (t) => {
  const lines = formatClusterTable(view).trimEnd().split("\n");
  t.is(lines[0], "cluster dev: 8 shards, seen from node-2");
  t.regex(lines[1]!, /^ {2}node +address +state +shards +held$/);
  t.regex(lines[2]!, /^ {2}node-1 +127\.0\.0\.1:9000 +alive,draining +3 +0-1,3$/);
  t.regex(lines[3]!, /^\* node-2 +127\.0\.0\.1:9002 +alive +4 +4-7$/);
  t.regex(lines[4]!, /^ {2}node-3 +127\.0\.0\.1:9004 +dead +0 +-$/);
  // Shard 2 is held by nobody: listed so a half-done failover is visible.
  t.is(lines[5], "unowned: 1 (2)");
  t.is(lines.length, 6);
});

test("columns line up whatever the id and address lengths", (t) => {
  const lines = formatClusterTable(view).split("\n").slice(1, 5);
  const stateColumn = lines.map((l) => l.search(/(state|alive|dead)/));
  t.true(stateColumn.every((c) => c === stateColumn[0]), lines.join("\n"));
});

test("no unowned line when every shard is held", (t) => {
  const full: ClusterView = { ...view, nodes: [{ ...view.nodes[0]!, shards: [0, 1, 2, 3, 4, 5, 6, 7] }] };
  t.false(formatClusterTable(full).includes("unowned"));
});

test("an answer that is not a cluster view is refused with what it was", (t) => {
  t.is(asClusterView(view), view);
  t.throws(() => asClusterView({ error: "nope" }), { message: /unexpected GET \/cluster answer: \{"error":"nope"\}/ });
  t.throws(() => asClusterView(null), { message: /unexpected/ });
});
