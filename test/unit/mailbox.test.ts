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

test("an entity whose commands come one after another's reply runs each at once; commands waiting together make it wait for the turn's end", async (t) => {
  const batches: number[][] = [];
  const mailbox = new Mailbox<number, number>(async (batch) => {
    batches.push(batch.map((e) => e.command));
    await new Promise((resolve) => setTimeout(resolve, 1));
    for (const envelope of batch) envelope.resolve(envelope.command);
  });
  const turnEnds = () => new Promise((resolve) => setImmediate(resolve));
  // A caller that waits for each reply: no two commands ever wait together, so none waits for company.
  for (let i = 0; i < 5; i++) {
    const reply = mailbox.post(i);
    t.is(batches.length, i + 1, `command ${i} started at once, not at the end of the turn`);
    t.is(await reply, i);
    await turnEnds();
    t.true(mailbox.idle);
  }
  // Three at once: the first runs, the other two wait together, which marks the entity.
  await Promise.all([mailbox.post(5), mailbox.post(6), mailbox.post(7)]);
  t.deepEqual(batches.slice(5), [[5], [6, 7]]);
  await turnEnds();
  t.true(mailbox.idle);
  const next = [mailbox.post(8), mailbox.post(9)];
  t.is(batches.length, 7, "now its next commands wait for the turn's end");
  await Promise.all(next);
  t.deepEqual(batches.slice(7), [[8, 9]], "and run as one batch");
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
