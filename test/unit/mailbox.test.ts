// One command at a time per entity, in arrival order; what queues meanwhile is one batch.
import test from "ava";
import { Mailbox } from "../../host/entities/mailbox.js";

test("batches are processed one at a time, in order; an entity without a recent batch starts at once, one that ran lately waits for the end of the turn", async (t) => {
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
  // A mailbox that never ran: its first command starts at once, alone.
  const early = Array.from({ length: 10 }, (_, i) => mailbox.post(i));
  t.deepEqual(batches, [[0]], "an entity with no recent batch does not wait for company");
  await Promise.all(early);
  t.deepEqual(batches, [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9]], "the other nine queued while the first ran");
  t.true(mailbox.idle);

  // Now it ran lately: what comes in one turn of the event loop waits for the turn's end, as one batch.
  const late = Array.from({ length: 10 }, (_, i) => mailbox.post(10 + i));
  t.false(mailbox.idle, "busy from its first command on, before the batch starts");
  t.is(batches.length, 2, "the batch starts when the turn ends, not at the first command");
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(batches[2], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], "everything posted in that turn is one batch");
  const replies = await Promise.all([...early, ...late]);
  t.deepEqual(replies, Array.from({ length: 20 }, (_, i) => i * 10));
  t.is(maxRunning, 1);
  t.deepEqual(batches.flat(), Array.from({ length: 20 }, (_, i) => i));
  t.true(mailbox.idle);
});

test("a batch larger than the limit is split", async (t) => {
  const sizes: number[] = [];
  const mailbox = new Mailbox<number, void>(async (batch) => {
    sizes.push(batch.length);
    for (const envelope of batch) envelope.resolve();
  }, 4);
  await Promise.all(Array.from({ length: 10 }, (_, i) => mailbox.post(i)));
  t.deepEqual(sizes, [1, 4, 4, 1]);
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
