// Checks a settled saga chaos run (scripts/saga-chaos.ts, test/integration/saga.test.ts)
// against its plan, from what the store holds: every account's journal (read through the
// inspection API), every account's balance and every transfer's final state. Pure: the
// run reads, this judges, so each rule is unit-tested with a journal made to break it.
//
// The rules:
//   settled      every planned transfer is COMPLETED, COMPENSATED or FAILED;
//   once         an account decides each (transfer, step) at most once — a step applied
//                twice would be two events for it;
//   moved right  a transfer's money events are exactly what its final state says:
//                COMPLETED = "withdraw" debited on the source + "deposit" credited on the
//                target; COMPENSATED = "withdraw" + "refund" on the source, nothing on the
//                target; FAILED = nothing; each of its amount, on the right account;
//   expected     to-frozen never COMPLETED; from-frozen and overdraft FAILED;
//   journals     each journal starts with its opening at the planned balance, never goes
//                below 0, and folds to the balance the account reports;
//   conserved    the balances add up to the money there was at the start.
import type { SagaPlan } from "./saga-plan.js";

export const FINAL_STATUSES = ["COMPLETED", "COMPENSATED", "FAILED"] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];

export type AccountEventKind = "opened" | "frozen" | "debited" | "credited" | "refused" | "cancelled" | "unknown";

/** One account journal event, as the checker needs it. */
export interface AccountEvent {
  readonly seq: number;
  readonly kind: AccountEventKind;
  /** opened: the initial balance; debited / credited: the amount; else 0. */
  readonly amount: number;
  /** Empty for opened / frozen and for direct (non-saga) money moves. */
  readonly transferId: string;
  readonly step: string;
  /** The idempotency key of the delivery that made it, when the host gave one. */
  readonly delivery: string;
  /** unknown: the event type, for the violation message. */
  readonly type?: string;
}

export interface ObservedAccount {
  readonly id: string;
  /** The balance the account reports (GetAccount). */
  readonly balance: number;
  readonly events: readonly AccountEvent[];
}

export interface ObservedTransfer {
  readonly id: string;
  /** TransferStatus name; "" for a transfer the store does not know. */
  readonly status: string;
  readonly history: readonly string[];
}

export interface SagaObservation {
  readonly accounts: readonly ObservedAccount[];
  readonly transfers: readonly ObservedTransfer[];
}

export interface SagaReport {
  readonly transfers: number;
  /** Final (and, when unsettled, other) statuses and how many transfers ended there. */
  readonly byStatus: Record<string, number>;
  /** "<kind> <status>" -> count. */
  readonly byKind: Record<string, number>;
  readonly moneyBefore: number;
  readonly moneyAfter: number;
  /** Step decisions journaled on accounts (money moved, refused, cancelled). */
  readonly stepsDecided: number;
  /** Steps barred by a compensation before they ran (StepCancelled events). */
  readonly stepsCancelled: number;
  /** Transfers whose history holds a step timeout. */
  readonly timedOut: number;
  readonly violations: readonly string[];
}

const EVENT_KINDS: Record<string, AccountEventKind> = {
  AccountOpened: "opened",
  AccountFrozen: "frozen",
  Debited: "debited",
  Credited: "credited",
  StepRefused: "refused",
  StepCancelled: "cancelled",
};

/**
 * An event of the inspection API's `/events` page (`{seq, type, payload}`, the payload in the
 * proto3 JSON mapping: int64 as strings, default values left out) as an AccountEvent.
 */
export function accountEventFromInspect(raw: { seq: number; type: string; payload?: Record<string, unknown> }): AccountEvent {
  const p = raw.payload ?? {};
  const short = raw.type.slice(raw.type.lastIndexOf(".") + 1);
  const kind = EVENT_KINDS[short] ?? "unknown";
  const str = (name: string) => (typeof p[name] === "string" ? (p[name] as string) : "");
  const amount = Number(kind === "opened" ? (p.initialBalance ?? 0) : (p.amount ?? 0));
  return { seq: raw.seq, kind, amount, transferId: str("transferId"), step: str("step"), delivery: str("delivery"), ...(kind === "unknown" ? { type: raw.type } : {}) };
}

interface MoneyEvent {
  readonly account: string;
  readonly event: AccountEvent;
}

export function checkSaga(plan: Pick<SagaPlan, "accounts" | "transfers">, observed: SagaObservation): SagaReport {
  const violations: string[] = [];
  const accounts = new Map(observed.accounts.map((a) => [a.id, a]));
  const transfers = new Map(observed.transfers.map((t) => [t.id, t]));
  const planned = new Map(plan.transfers.map((t) => [t.id, t]));
  const moneyBefore = plan.accounts.reduce((sum, a) => sum + a.initialBalance, 0);
  let moneyAfter = 0;
  let stepsDecided = 0;
  let stepsCancelled = 0;
  /** Money events by transfer id, from every journal. */
  const moneyOf = new Map<string, MoneyEvent[]>();

  for (const account of plan.accounts) {
    const seen = accounts.get(account.id);
    if (seen === undefined) {
      violations.push(`account ${account.id}: not read back`);
      continue;
    }
    moneyAfter += seen.balance;
    const decided = new Map<string, number>();
    let balance = 0;
    let frozen = false;
    seen.events.forEach((event, i) => {
      const where = `account ${account.id} event #${event.seq}`;
      if (i === 0 && (event.kind !== "opened" || event.amount !== account.initialBalance)) {
        violations.push(`${where}: the journal does not start with its opening at ${account.initialBalance} (${event.kind} ${event.amount})`);
      }
      if (event.kind === "unknown") violations.push(`${where}: unknown event type ${event.type ?? "?"}`);
      if (event.kind === "opened") balance = event.amount;
      if (event.kind === "frozen") frozen = true;
      if (event.kind === "debited") balance -= event.amount;
      if (event.kind === "credited") balance += event.amount;
      if (balance < 0) violations.push(`${where}: the balance went below 0 (${balance})`);
      const isDecision = event.kind === "refused" || event.kind === "cancelled" || ((event.kind === "debited" || event.kind === "credited") && event.transferId !== "");
      if ((event.kind === "debited" || event.kind === "credited") && event.transferId === "") {
        violations.push(`${where}: a ${event.kind} outside any transfer (the run makes none)`);
      }
      if (!isDecision) return;
      stepsDecided++;
      if (event.kind === "cancelled") stepsCancelled++;
      const step = `${event.transferId}/${event.step}`;
      const count = (decided.get(step) ?? 0) + 1;
      decided.set(step, count);
      if (count > 1) violations.push(`${where}: step ${step} decided ${count} times (applied twice; deliveries ${JSON.stringify(event.delivery)})`);
      if (!planned.has(event.transferId)) violations.push(`${where}: a step of ${event.transferId}, which the plan does not have`);
      if (event.kind === "debited" || event.kind === "credited") {
        const list = moneyOf.get(event.transferId) ?? [];
        list.push({ account: account.id, event });
        moneyOf.set(event.transferId, list);
      }
    });
    if (balance !== seen.balance) violations.push(`account ${account.id}: the journal folds to ${balance}, the account reports ${seen.balance}`);
    if (frozen !== account.frozen) violations.push(`account ${account.id}: frozen ${frozen} in the journal, planned ${account.frozen}`);
  }

  const byStatus: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  let timedOut = 0;
  for (const transfer of plan.transfers) {
    const seen = transfers.get(transfer.id);
    const status = seen?.status || "(not started)";
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    byKind[`${transfer.kind} ${status}`] = (byKind[`${transfer.kind} ${status}`] ?? 0) + 1;
    if (seen?.history.some((h) => h.endsWith(":timed-out"))) timedOut++;
    const money = moneyOf.get(transfer.id) ?? [];
    const where = `transfer ${transfer.id} (${transfer.kind}, ${transfer.amount} from ${transfer.from} to ${transfer.to})`;
    for (const { account, event } of money) {
      const expected = event.step === "withdraw" ? { account: transfer.from, kind: "debited" } : event.step === "deposit" ? { account: transfer.to, kind: "credited" } : event.step === "refund" ? { account: transfer.from, kind: "credited" } : undefined;
      if (!expected || expected.account !== account || expected.kind !== event.kind || event.amount !== transfer.amount) {
        violations.push(`${where}: unexpected ${event.kind} of ${event.amount} for step "${event.step}" on ${account}`);
      }
    }
    const count = (step: string) => money.filter((m) => m.event.step === step).length;
    const moved = { withdraw: count("withdraw"), deposit: count("deposit"), refund: count("refund") };
    const movedText = `withdraw ${moved.withdraw}, deposit ${moved.deposit}, refund ${moved.refund}`;
    if (!(FINAL_STATUSES as readonly string[]).includes(status)) {
      violations.push(`${where}: not settled (${status}; money moved so far: ${movedText})`);
      continue;
    }
    const wanted = status === "COMPLETED" ? [1, 1, 0] : status === "COMPENSATED" ? [1, 0, 1] : [0, 0, 0];
    if (moved.withdraw !== wanted[0] || moved.deposit !== wanted[1] || moved.refund !== wanted[2]) {
      violations.push(`${where}: ${status} but the journals show ${movedText}`);
    }
    const last = seen!.history[seen!.history.length - 1] ?? "";
    const endings: Record<FinalStatus, readonly string[]> = {
      COMPLETED: ["deposit:done"],
      COMPENSATED: ["refund:done"],
      FAILED: ["withdraw:refused", "withdraw:cancelled", "refund:cancelled"],
    };
    if (!endings[status as FinalStatus].includes(last)) violations.push(`${where}: ${status} after history ${JSON.stringify(seen!.history)}`);
    if (transfer.kind === "to-frozen" && status === "COMPLETED") violations.push(`${where}: COMPLETED into a frozen account`);
    if ((transfer.kind === "from-frozen" || transfer.kind === "overdraft") && status !== "FAILED") violations.push(`${where}: ${status}, expected FAILED`);
  }
  if (moneyAfter !== moneyBefore) violations.push(`money not conserved: ${moneyBefore} at the start, ${moneyAfter} at the end`);
  return { transfers: plan.transfers.length, byStatus, byKind, moneyBefore, moneyAfter, stepsDecided, stepsCancelled, timedOut, violations };
}

/** The report as a few lines for people (violations: the first 50, and how many in all). */
export function formatSagaReport(report: SagaReport): string {
  const lines = [
    `transfers: ${report.transfers}; ${Object.entries(report.byStatus).sort().map(([status, n]) => `${status} ${n}`).join(", ")}`,
    `by kind: ${Object.entries(report.byKind).sort().map(([kind, n]) => `${kind} ${n}`).join(", ")}`,
    `money: ${report.moneyBefore} before, ${report.moneyAfter} after; steps decided on accounts: ${report.stepsDecided} (${report.stepsCancelled} barred by a compensation); transfers with a step timeout: ${report.timedOut}`,
    `violations: ${report.violations.length}`,
    ...report.violations.slice(0, 50).map((v) => `  - ${v}`),
  ];
  if (report.violations.length > 50) lines.push(`  … and ${report.violations.length - 50} more`);
  return lines.join("\n");
}
