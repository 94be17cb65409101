// The saga checker (test/helpers/saga-checker.ts) against journals made by hand: a clean
// run passes, and each rule fails on a journal built to break it — a step applied twice,
// money not conserved, a final state the journals contradict, an unsettled transfer, an
// expectation of the plan broken. Also: the inspection API's JSON parsed into events, and
// the seeded plan repeatable.
import test from "ava";
import { accountEventFromInspect, checkSaga, type AccountEvent, type ObservedAccount, type ObservedTransfer } from "../helpers/saga-checker.js";
import { makePlan, type PlannedTransfer } from "../helpers/saga-plan.js";

const accounts = [
  { id: "a", initialBalance: 100, frozen: false },
  { id: "b", initialBalance: 50, frozen: false },
  { id: "z", initialBalance: 10, frozen: true },
];
const transfers: PlannedTransfer[] = [
  { id: "t1", from: "a", to: "b", amount: 30, kind: "normal" }, // COMPLETED
  { id: "t2", from: "a", to: "z", amount: 20, kind: "to-frozen" }, // COMPENSATED
  { id: "t3", from: "b", to: "a", amount: 999, kind: "overdraft" }, // FAILED
];
const plan = { accounts, transfers };

let seq = 0;
const ev = (kind: AccountEvent["kind"], amount = 0, transferId = "", step = ""): AccountEvent => ({ seq: ++seq, kind, amount, transferId, step, delivery: "" });

function clean(): { accounts: ObservedAccount[]; transfers: ObservedTransfer[] } {
  return {
    accounts: [
      { id: "a", balance: 70, events: [ev("opened", 100), ev("debited", 30, "t1", "withdraw"), ev("debited", 20, "t2", "withdraw"), ev("credited", 20, "t2", "refund")] },
      { id: "b", balance: 80, events: [ev("opened", 50), ev("credited", 30, "t1", "deposit"), ev("refused", 0, "t3", "withdraw")] },
      { id: "z", balance: 10, events: [ev("opened", 10), ev("frozen"), ev("refused", 0, "t2", "deposit")] },
    ],
    transfers: [
      { id: "t1", status: "COMPLETED", history: ["withdraw:done", "deposit:done"] },
      { id: "t2", status: "COMPENSATED", history: ["withdraw:done", "deposit:refused", "refund:done"] },
      { id: "t3", status: "FAILED", history: ["withdraw:refused"] },
    ],
  };
}

const violationsOf = (observed: ReturnType<typeof clean>) => checkSaga(plan, observed).violations;

test("a clean run: no violations, counts and money as they are", (t) => {
  const report = checkSaga(plan, clean());
  t.deepEqual(report.violations, []);
  t.deepEqual(report.byStatus, { COMPLETED: 1, COMPENSATED: 1, FAILED: 1 });
  t.is(report.moneyBefore, 160);
  t.is(report.moneyAfter, 160);
  t.is(report.stepsDecided, 6);
});

test("a step applied twice: two Credited for one (transfer, step) is a violation, even with the balance matching", (t) => {
  const observed = clean();
  const b = observed.accounts[1]!;
  observed.accounts[1] = { ...b, balance: 110, events: [...b.events, ev("credited", 30, "t1", "deposit")] };
  const violations = violationsOf(observed);
  t.true(violations.some((v) => /step t1\/deposit decided 2 times/.test(v)), violations.join("\n"));
  t.true(violations.some((v) => /COMPLETED but the journals show withdraw 1, deposit 2/.test(v)));
  t.true(violations.some((v) => /money not conserved: 160 at the start, 190 at the end/.test(v)));
});

test("a refusal recorded twice for one step is a violation too (a step is decided once)", (t) => {
  const observed = clean();
  const z = observed.accounts[2]!;
  observed.accounts[2] = { ...z, events: [...z.events, ev("refused", 0, "t2", "deposit")] };
  t.true(violationsOf(observed).some((v) => /step t2\/deposit decided 2 times/.test(v)));
});

test("a reported balance the journal does not fold to, and money that is not conserved", (t) => {
  const observed = clean();
  observed.accounts[0] = { ...observed.accounts[0]!, balance: 71 };
  const violations = violationsOf(observed);
  t.true(violations.some((v) => /account a: the journal folds to 70, the account reports 71/.test(v)));
  t.true(violations.some((v) => /money not conserved/.test(v)));
});

test("a final state the journals contradict: COMPENSATED without its refund, COMPLETED on the wrong account or amount", (t) => {
  const noRefund = clean();
  const a = noRefund.accounts[0]!;
  noRefund.accounts[0] = { ...a, balance: 50, events: a.events.slice(0, 3) };
  t.true(violationsOf(noRefund).some((v) => /COMPENSATED but the journals show withdraw 1, deposit 0, refund 0/.test(v)));

  const wrongAccount = clean();
  wrongAccount.accounts[1] = { ...wrongAccount.accounts[1]!, balance: 50, events: [ev("opened", 50), ev("refused", 0, "t3", "withdraw")] };
  wrongAccount.accounts[2] = { ...wrongAccount.accounts[2]!, balance: 40, events: [ev("opened", 10), ev("frozen"), ev("refused", 0, "t2", "deposit"), ev("credited", 30, "t1", "deposit")] };
  t.true(violationsOf(wrongAccount).some((v) => /unexpected credited of 30 for step "deposit" on z/.test(v)));

  const wrongAmount = clean();
  const b = wrongAmount.accounts[1]!;
  wrongAmount.accounts[1] = { ...b, balance: 81, events: [b.events[0]!, ev("credited", 31, "t1", "deposit"), b.events[2]!] };
  t.true(violationsOf(wrongAmount).some((v) => /unexpected credited of 31/.test(v)));
});

test("an unsettled or unknown transfer, and a history that does not end as the status says", (t) => {
  const observed = clean();
  observed.transfers[0] = { id: "t1", status: "DEPOSITING", history: ["withdraw:done"] };
  observed.transfers[2] = { id: "t3", status: "", history: [] };
  const violations = violationsOf(observed);
  t.true(violations.some((v) => /transfer t1 .*not settled \(DEPOSITING/.test(v)));
  t.true(violations.some((v) => /transfer t3 .*not settled \(\(not started\)/.test(v)));

  const oddHistory = clean();
  oddHistory.transfers[0] = { id: "t1", status: "COMPLETED", history: ["withdraw:done"] };
  t.true(violationsOf(oddHistory).some((v) => /COMPLETED after history/.test(v)));
});

test("the plan's expectations: into a frozen account never COMPLETED, an overdraft FAILED", (t) => {
  const observed = clean();
  // A journal consistent with t2 COMPLETED (the frozen account took the deposit) still breaks the plan.
  observed.accounts[0] = { ...observed.accounts[0]!, balance: 50, events: observed.accounts[0]!.events.slice(0, 3) };
  observed.accounts[2] = { ...observed.accounts[2]!, balance: 30, events: [ev("opened", 10), ev("frozen"), ev("credited", 20, "t2", "deposit")] };
  observed.transfers[1] = { id: "t2", status: "COMPLETED", history: ["withdraw:done", "deposit:done"] };
  t.true(violationsOf(observed).some((v) => /COMPLETED into a frozen account/.test(v)));

  const overdraft = clean();
  overdraft.transfers[2] = { id: "t3", status: "COMPENSATED", history: ["refund:done"] };
  t.true(violationsOf(overdraft).some((v) => /t3 .*COMPENSATED, expected FAILED/.test(v)));
});

test("journals: a balance below 0, a missing opening, an unknown event type, a step of a transfer the plan lacks", (t) => {
  const observed = clean();
  observed.accounts[1] = { ...observed.accounts[1]!, balance: -20, events: [ev("opened", 50), ev("debited", 70, "t9", "withdraw")] };
  observed.accounts[2] = { ...observed.accounts[2]!, events: [ev("frozen"), ev("unknown"), ev("opened", 10)] };
  const violations = violationsOf(observed);
  t.true(violations.some((v) => /account b .*went below 0/.test(v)));
  t.true(violations.some((v) => /a step of t9, which the plan does not have/.test(v)));
  t.true(violations.some((v) => /account z .*does not start with its opening/.test(v)));
  t.true(violations.some((v) => /unknown event type/.test(v)));
});

test("inspection JSON to events: int64 strings, defaults left out, unknown types kept as unknown", (t) => {
  t.like(accountEventFromInspect({ seq: 1, type: "keystate.examples.transfer.domain.AccountOpened", payload: { accountId: "a", initialBalance: "100" } }), { kind: "opened", amount: 100 });
  t.like(accountEventFromInspect({ seq: 2, type: "keystate.examples.transfer.domain.AccountFrozen", payload: {} }), { kind: "frozen", amount: 0, transferId: "" });
  t.like(accountEventFromInspect({ seq: 3, type: "keystate.examples.transfer.domain.Debited", payload: { amount: "30", transferId: "t1", step: "withdraw", delivery: "k" } }), {
    kind: "debited",
    amount: 30,
    transferId: "t1",
    step: "withdraw",
    delivery: "k",
  });
  t.like(accountEventFromInspect({ seq: 4, type: "other.Thing" }), { kind: "unknown", type: "other.Thing" });
});

test("the plan is the seed's: the same seed, the same plan; another seed, another", (t) => {
  const settings = { seed: 7, transfers: 100, accounts: 10, frozen: 2, killWindowMs: 200 };
  t.deepEqual(makePlan(settings), makePlan(settings));
  t.notDeepEqual(makePlan(settings).transfers, makePlan({ ...settings, seed: 8 }).transfers);
  const plan = makePlan(settings);
  const total = plan.accounts.reduce((sum, a) => sum + a.initialBalance, 0);
  for (const transfer of plan.transfers) {
    t.not(transfer.from, transfer.to);
    const from = plan.accounts.find((a) => a.id === transfer.from)!;
    const to = plan.accounts.find((a) => a.id === transfer.to)!;
    if (transfer.kind === "to-frozen") t.true(to.frozen && !from.frozen);
    if (transfer.kind === "from-frozen") t.true(from.frozen && !to.frozen);
    if (transfer.kind === "overdraft") t.true(transfer.amount > total);
    if (transfer.kind === "normal") t.true(!from.frozen && !to.frozen);
  }
  t.true(plan.killAfterMs >= 0 && plan.killAfterMs < 200);
  const modes = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((seed) => makePlan({ ...settings, seed }).killAfter));
  t.deepEqual([...modes].sort(), ["acknowledged", "sent"], "seeds kill among the Starts and among the steps");
  t.throws(() => makePlan({ ...settings, accounts: 3, frozen: 2 }), { message: /at least 2 open accounts/ });
});
