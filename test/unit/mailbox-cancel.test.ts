// A caller that is gone never holds an entity's mailbox: an envelope whose signal aborts
// while it queues is answered at once and taken out; one whose deadline passed is never
// handed to the processor; the others keep their order.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { CallerLeft, callerGone, requestIdFrom, startCallContext } from "../../host/entities/call-context.js";
import { Mailbox } from "../../host/entities/mailbox.js";
import { KeystateError } from "../../host/errors.js";

/** A mailbox whose batches wait for `release()`, recording what the processor saw. */
function gatedMailbox() {
  const seen: string[] = [];
  let release: () => void = () => {};
  const mailbox = new Mailbox<string, string>(async (batch) => {
    await new Promise<void>((resolve) => (release = resolve));
    for (const envelope of batch) {
      seen.push(envelope.command);
      envelope.resolve(envelope.command);
    }
  });
  return { mailbox, seen, release: () => release() };
}

test("an envelope cancelled while queued is answered CANCELLED at once, leaves the queue, and never reaches the processor", async (t) => {
  const { mailbox, seen, release } = gatedMailbox();
  const first = mailbox.post("first"); // taken at once; its batch waits for release()
  const scope = startCallContext("r-1", undefined);
  const cancelled = mailbox.post("cancelled", scope.context);
  const after = mailbox.post("after");
  t.is(mailbox.depth, 2);

  scope.cancel();
  const err = await t.throwsAsync(cancelled);
  t.true(err instanceof KeystateError);
  t.is((err as KeystateError).status, status.CANCELLED);
  t.is(mailbox.depth, 1, "the cancelled envelope left the queue while the entity was still busy");

  release();
  t.is(await first, "first");
  await new Promise((resolve) => setImmediate(resolve));
  release();
  t.is(await after, "after");
  t.deepEqual(seen, ["first", "after"]);
  await new Promise((resolve) => setImmediate(resolve));
  t.true(mailbox.idle);
});

test("a deadline that passes while queued answers DEADLINE_EXCEEDED; an unexpired one still runs", async (t) => {
  const { mailbox, seen, release } = gatedMailbox();
  const first = mailbox.post("first");
  const short = startCallContext("r-short", Date.now() + 20);
  const long = startCallContext("r-long", Date.now() + 60_000);
  t.teardown(() => long.dispose());
  const expiring = mailbox.post("expiring", short.context);
  const patient = mailbox.post("patient", long.context);

  const err = await t.throwsAsync(expiring);
  t.is((err as KeystateError).status, status.DEADLINE_EXCEEDED);
  t.regex(err!.message, /did not run/);
  release();
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  release();
  t.is(await patient, "patient");
  t.deepEqual(seen, ["first", "patient"]);
});

test("a deadline the transport keeps (gRPC): no timer of the context's own; expire() answers a queued envelope DEADLINE_EXCEEDED, not CANCELLED", async (t) => {
  const { mailbox, release } = gatedMailbox();
  const first = mailbox.post("first");
  const scope = startCallContext("r-transport", Date.now() + 30, true);
  const queued = mailbox.post("queued", scope.context);
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.false(scope.context.signal!.aborted, "the context armed no timer: the transport's fires");
  t.is(mailbox.depth, 1, "still queued: only the clock check at the batch would skip it");

  scope.expire();
  scope.cancel(); // the first reason stands
  const err = await t.throwsAsync(queued);
  t.is((err as KeystateError).status, status.DEADLINE_EXCEEDED);
  t.is(mailbox.depth, 0);
  release();
  t.is(await first, "first");
});

test("a deadline is also checked by the clock (guest calls block timers): a caller already gone when posted never reaches the processor", async (t) => {
  const posted = { requestId: "r", deadline: Date.now() - 1 };
  t.is(callerGone(posted)?.status, status.DEADLINE_EXCEEDED, "no timer needed: the clock says it passed");
  t.is(callerGone({ requestId: "r", deadline: Date.now() + 60_000 }), undefined);
  t.is(callerGone(undefined), undefined, "internal calls carry no context and are never skipped");

  let processed = 0;
  const mailbox = new Mailbox<string, string>(async (batch) => {
    processed += batch.length;
    for (const envelope of batch) envelope.resolve(envelope.command);
  });
  await t.throwsAsync(mailbox.post("late", posted));
  t.is(processed, 0);
  t.true(mailbox.idle);
});

test("request ids: a sane client id is kept, anything else is replaced by a fresh UUID", (t) => {
  t.is(requestIdFrom("abc-123"), "abc-123");
  t.is(requestIdFrom(["first", "second"]), "first");
  for (const bad of [undefined, "", "has space", "x".repeat(129), "line\nbreak", 42]) {
    t.regex(requestIdFrom(bad), /^[0-9a-f]{8}-[0-9a-f]{4}-/, `replaced: ${JSON.stringify(bad)}`);
  }
  t.not(requestIdFrom(undefined), requestIdFrom(undefined));
});

test("a deadline further off than a timer can hold (30 days) never expires the call early", async (t) => {
  const scope = startCallContext("r-far", Date.now() + 30 * 24 * 3600 * 1000);
  // Node fires a timer longer than 2^31-1 ms after 1 ms: the context must not arm one.
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(scope.context.signal?.aborted ?? false);
  t.is(callerGone(scope.context), undefined);
  scope.dispose();
});

test("a platform AbortSignal works as the caller's signal too, and a settled envelope stops listening", async (t) => {
  const { mailbox, seen, release } = gatedMailbox();
  const first = mailbox.post("first");
  const leaving = new AbortController();
  const staying = new AbortController();
  const cancelled = mailbox.post("cancelled", { requestId: "r-abort", signal: leaving.signal });
  const kept = mailbox.post("kept", { requestId: "r-kept", signal: staying.signal });
  t.is(mailbox.depth, 2);

  leaving.abort();
  const err = await t.throwsAsync(cancelled);
  t.is((err as KeystateError).status, status.CANCELLED);
  t.is(mailbox.depth, 1);

  release();
  t.is(await first, "first");
  await new Promise((resolve) => setImmediate(resolve));
  release();
  t.is(await kept, "kept");
  // Answered: aborting its signal now touches nothing (the listener is gone, the mailbox idle).
  staying.abort();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(seen, ["first", "kept"]);
  t.true(mailbox.idle);
});

test("CallerLeft runs each listener still registered once, in the order added, functions and handleEvent objects alike", (t) => {
  const signal = new CallerLeft();
  const ran: string[] = [];
  const a = () => ran.push("a");
  const b = { handleEvent: () => ran.push("b") };
  const c = () => ran.push("c");
  const d = () => ran.push("d");
  signal.addEventListener("abort", a);
  signal.addEventListener("abort", b);
  signal.addEventListener("abort", c);
  signal.removeEventListener("abort", a); // the first one out: the others keep their order
  signal.addEventListener("abort", d);
  signal.removeEventListener("abort", c);
  signal.abort("gone");
  signal.abort("again");
  t.deepEqual(ran, ["b", "d"]);
  t.is(signal.reason, "gone");
  signal.addEventListener("abort", a); // an aborted signal does not fire again
  t.deepEqual(ran, ["b", "d"]);
});
