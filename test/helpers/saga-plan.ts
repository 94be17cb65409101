// The workload of a saga chaos run, drawn from a seed so a run can be repeated: accounts
// with known balances (some frozen) and transfers between them of four kinds, each with
// what its outcome may be:
//   normal     between two open accounts: COMPLETED, or FAILED (the source was short at
//              that moment), or COMPENSATED (a step timed out, e.g. across the kill);
//   to-frozen  into a frozen account: never COMPLETED (the deposit is refused);
//   from-frozen out of a frozen account: FAILED (the withdraw is refused);
//   overdraft  more than all the money there is: FAILED.

import { prng } from "../../scripts/fuzz-modules.js";

export type TransferKind = "normal" | "to-frozen" | "from-frozen" | "overdraft";

export interface PlannedAccount {
  readonly id: string;
  readonly initialBalance: number;
  readonly frozen: boolean;
}

export interface PlannedTransfer {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
  readonly kind: TransferKind;
}

export interface SagaPlan {
  readonly seed: number;
  readonly accounts: readonly PlannedAccount[];
  readonly transfers: readonly PlannedTransfer[];
  /**
   * When to SIGKILL the node: `killAfterMs` after the first Start is sent ("sent": all Starts
   * go out at once, so this lands among the Starts, and the client must retry the ones in
   * flight) or after the first Start is acknowledged ("acknowledged": the Starts are answered
   * in a burst, so this lands among the steps, whatever the speed of the box).
   */
  readonly killAfter: "sent" | "acknowledged";
  readonly killAfterMs: number;
}

export interface PlanSettings {
  readonly seed: number;
  readonly transfers: number;
  /** Accounts in all, `frozen` of them frozen (at least 2 open ones are needed). */
  readonly accounts: number;
  readonly frozen: number;
  /** The kill's delay (see SagaPlan.killAfter) is drawn from [0, killWindowMs). */
  readonly killWindowMs: number;
  /** Prefix of every account and transfer id (runs sharing a store stay apart). */
  readonly prefix?: string;
  /**
   * A kill point of the caller's instead of the seed's draw (the accounts and transfers are
   * the seed's either way). The tests fix it: a drawn delay lands among the Starts or the
   * steps only as long as the box runs as fast as when the seed was chosen.
   */
  readonly kill?: { readonly after: SagaPlan["killAfter"]; readonly ms: number };
}

export function makePlan(settings: PlanSettings): SagaPlan {
  const { seed, transfers, accounts, frozen, killWindowMs } = settings;
  if (accounts - frozen < 2) throw new Error(`a plan needs at least 2 open accounts (accounts ${accounts}, frozen ${frozen})`);
  if (frozen < 1) throw new Error("a plan needs at least 1 frozen account (the to-frozen and from-frozen transfers)");
  const random = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const prefix = settings.prefix ?? `s${seed}`;
  const planned: PlannedAccount[] = [];
  for (let i = 0; i < accounts; i++) planned.push({ id: `${prefix}-acct-${i}`, initialBalance: int(1000, 5000), frozen: i < frozen });
  const open = planned.filter((a) => !a.frozen);
  const iced = planned.filter((a) => a.frozen);
  const total = planned.reduce((sum, a) => sum + a.initialBalance, 0);
  const pick = <T>(from: readonly T[]): T => from[int(0, from.length - 1)]!;
  const list: PlannedTransfer[] = [];
  for (let i = 0; i < transfers; i++) {
    const id = `${prefix}-tx-${i}`;
    const roll = random();
    if (roll < 0.15) {
      list.push({ id, from: pick(open).id, to: pick(iced).id, amount: int(1, 100), kind: "to-frozen" });
    } else if (roll < 0.2) {
      list.push({ id, from: pick(iced).id, to: pick(open).id, amount: int(1, 100), kind: "from-frozen" });
    } else if (roll < 0.3) {
      const [from, to] = twoOf(open, int);
      list.push({ id, from: from.id, to: to.id, amount: total + int(1, 1000), kind: "overdraft" });
    } else {
      const [from, to] = twoOf(open, int);
      list.push({ id, from: from.id, to: to.id, amount: int(1, 500), kind: "normal" });
    }
  }
  const killAfter = random() < 0.5 ? "sent" : "acknowledged";
  const killAfterMs = Math.floor(random() * killWindowMs);
  if (settings.kill) return { seed, accounts: planned, transfers: list, killAfter: settings.kill.after, killAfterMs: settings.kill.ms };
  return { seed, accounts: planned, transfers: list, killAfter, killAfterMs };
}

function twoOf<T>(from: readonly T[], int: (lo: number, hi: number) => number): [T, T] {
  const a = int(0, from.length - 1);
  const b = (a + int(1, from.length - 1)) % from.length; // never a itself
  return [from[a]!, from[b]!];
}
