// The shard assignment every node computes alone: deterministic, balanced, and a change of
// one node moves little more than that node's fair share.
import test from "ava";
import { assignShards } from "../../host/cluster/assignment.js";

const IDS = ["node-a", "node-b", "node-c", "node-d", "node-e"];

function counts(target: (string | undefined)[]): Map<string | undefined, number> {
  const by = new Map<string | undefined, number>();
  for (const id of target) by.set(id, (by.get(id) ?? 0) + 1);
  return by;
}

test("the same nodes in any order give the same assignment", (t) => {
  const a = assignShards(256, ["node-c", "node-a", "node-b"]);
  const b = assignShards(256, ["node-b", "node-c", "node-a", "node-a"]);
  t.deepEqual(a, b);
});

test("every shard has a node, and counts stay within one of even (256 shards over 1 to 5 nodes)", (t) => {
  for (let n = 1; n <= IDS.length; n++) {
    const target = assignShards(256, IDS.slice(0, n));
    t.false(target.includes(undefined));
    const even = 256 / n;
    for (const [id, count] of counts(target)) {
      t.true(Math.abs(count - even) <= Math.max(1, even * 0.1), `${n} nodes: ${id} has ${count}, even is ${even.toFixed(1)}`);
    }
  }
});

test("adding a node moves about its fair share; removing it moves them back", (t) => {
  for (let n = 1; n < IDS.length; n++) {
    const before = assignShards(256, IDS.slice(0, n));
    const after = assignShards(256, IDS.slice(0, n + 1));
    const moved = before.filter((id, shard) => id !== after[shard]).length;
    const fair = 256 / (n + 1);
    t.true(moved <= fair * 1.15 + 2, `${n} -> ${n + 1} nodes moved ${moved} shards; fair share ${fair.toFixed(1)}`);
    // The shards that moved went to the new node or made room for it; back to n nodes restores `before`.
    t.deepEqual(assignShards(256, IDS.slice(0, n)), before);
  }
});

test("no eligible node: no shard has a target", (t) => {
  t.deepEqual(assignShards(4, []), [undefined, undefined, undefined, undefined]);
});
