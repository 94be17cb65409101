// The saga's vocabulary, shared by both entities: step names, and how an account finds
// the decision it recorded for a step (the record is what makes a step happen once, and
// what lets a compensation bar a step that has not arrived yet).
import { AccountState, StepRecord } from "./generated/messages";

export const WITHDRAW = "withdraw";
export const DEPOSIT = "deposit";
export const REFUND = "refund";

export const TRANSFER_SERVICE = "keystate.examples.transfer.Transfer";
export const ACCOUNT_SERVICE = "keystate.examples.transfer.Account";

/** The step timer's name: one per transfer, so scheduling the next step's timer replaces the last one's. */
export const STEP_TIMER = "step";

/** Used when StartTransfer.step_timeout_ms is 0. */
export const DEFAULT_STEP_TIMEOUT_MS: u32 = 30000;

/** The decision `account` recorded for (`transferId`, `step`), or null when it has not decided that step. */
export function recorded(account: AccountState, transferId: string, step: string): StepRecord | null {
  const steps = account.steps;
  for (let i = 0; i < steps.length; i++) {
    const record = steps[i];
    if (record.transferId == transferId && record.step == step) return record;
  }
  return null;
}
