// What a node may do with a shard it holds a lease on: serve it and write under its epoch
// until renewSentAt + lease - safety (monotonic clock), and not a moment later.
import test from "ava";
import { performance } from "node:perf_hooks";
import { ShardOwnership, type LossReason } from "../../host/cluster/shard-ownership.js";

function ownership(leaseMs = 200, safetyMs = 80) {
  const lost: Array<{ shard: number; epoch: number; reason: LossReason }> = [];
  const held = new ShardOwnership(8, leaseMs, safetyMs, (shard, epoch, reason) => lost.push({ shard, epoch, reason }));
  return { held, lost };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("a confirmed shard is served and written under its epoch until lease - safety after the send, then dropped", async (t) => {
  const { held, lost } = ownership();
  const sentAt = performance.now();
  held.confirm(3, 7, sentAt);
  t.true(held.serves(3));
  t.is(held.epochFor(3), 7);
  t.false(held.serves(2));
  t.is(held.epochFor(2), undefined);
  await sleep(130); // past 200 - 80 ms
  t.false(held.serves(3), "no longer served: the lease may be gone before a renewal could say so");
  t.is(held.epochFor(3), undefined, "no write goes out under it either");
  held.expireOverdue();
  t.deepEqual(lost, [{ shard: 3, epoch: 7, reason: "not renewed in time" }]);
  t.is(held.count, 0);
});

test("a renewal extends the deadline; an older renewal answering late never shortens it", async (t) => {
  const { held } = ownership();
  const early = performance.now();
  held.confirm(1, 4, early);
  await sleep(60);
  held.confirm(1, 4, performance.now());
  held.confirm(1, 4, early); // the earlier-sent renewal's reply arrives last
  await sleep(80); // 140 ms after the first send: past its deadline, within the second one's
  t.true(held.serves(1));
});

test("a fenced write with the held epoch drops the shard; one with an old epoch changes nothing", (t) => {
  const { held, lost } = ownership();
  held.confirm(5, 9, performance.now());
  held.refused(5, 8);
  t.true(held.serves(5));
  held.refused(5, 9);
  t.false(held.serves(5));
  t.deepEqual(lost, [{ shard: 5, epoch: 9, reason: "write fenced" }]);
});

test("a shard being handed off is no longer served but still writes (commands in flight finish)", (t) => {
  const { held } = ownership();
  held.confirm(2, 1, performance.now());
  held.startLeaving(2);
  t.false(held.serves(2));
  t.true(held.isLeaving(2));
  t.is(held.epochFor(2), 1);
  held.lose(2, "handed off");
  t.false(held.isLeaving(2));
  t.deepEqual(held.held(), []);
});
