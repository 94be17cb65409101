// One command at a time per entity, in arrival order; what queues meanwhile is one batch.
import test from "ava";
import { Mailbox } from "../../host/entities/mailbox.js";

test("batches are processed one at a time, in order, and everything queued meanwhile forms the next batch", async (t) => {
  const batches: number[][] = [];
  let running = 0;
  let maxRunning = 0;
  const mailbox = new Mailbox<number, number>(async (batch) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    batches.push(batch.map((e) => e.command));
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const envelope of batch) envelope.resolve(envelope.command * 10);
    running--;
  });
  // Ten posted in one turn of the event loop; ten more once the first batch runs.
  const first = Array.from({ length: 10 }, (_, i) => mailbox.post(i));
  t.false(mailbox.idle, "busy from its first command on, before the batch starts");
  t.deepEqual(batches, [], "the batch starts when the turn ends, not at the first command");
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(batches, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]], "everything posted in that turn is one batch");
  const second = Array.from({ length: 10 }, (_, i) => mailbox.post(10 + i));
  const replies = await Promise.all([...first, ...second]);
  t.deepEqual(replies, Array.from({ length: 20 }, (_, i) => i * 10));
  t.is(maxRunning, 1);
  t.deepEqual(batches.flat(), Array.from({ length: 20 }, (_, i) => i));
  t.is(batches.length, 2, "the other ten queued while the first batch ran");
  t.true(mailbox.idle);
});

test("a batch larger than the limit is split", async (t) => {
  const sizes: number[] = [];
  const mailbox = new Mailbox<number, void>(async (batch) => {
    sizes.push(batch.length);
    for (const envelope of batch) envelope.resolve();
  }, 4);
  await Promise.all(Array.from({ length: 10 }, (_, i) => mailbox.post(i)));
  t.deepEqual(sizes, [4, 4, 2]);
});

test("a processor that throws rejects its batch, and the mailbox keeps working", async (t) => {
  let calls = 0;
  const mailbox = new Mailbox<string, string>(async (batch) => {
    if (calls++ === 0) throw new Error("bug");
    for (const envelope of batch) envelope.resolve(envelope.command.toUpperCase());
  });
  await t.throwsAsync(mailbox.post("a"), { message: "bug" });
  t.is(await mailbox.post("b"), "B");
});
