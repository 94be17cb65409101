// The Account entity: a balance, a frozen flag, and the decision it made on every saga
// step it was sent. A step is decided once per (transfer, step) — the decision is an event
// carrying both — and every later delivery of it is answered with the recorded outcome, so
// redeliveries (the outbox is at least once) and late arrivals never move money twice.
// A step never fails the call: a failed delivery would only be retried; the outcome
// travels back to the Transfer as an asynchronous side effect stored in the same write.
import { CommandContext, Status } from "keystate-guest-sdk/assembly/index";
import {
  AccountFrozen, AccountId, AccountOpened, AccountState, Balance, Credited, Debited, MoneyMove,
  OpenAccount, StepCancelled, StepOutcome, StepRecord, StepRefused, StepResult,
} from "./generated/messages";
import { AccountEntity } from "./generated/handlers";
import { TransferCalls } from "./generated/calls";
import { DEPOSIT, REFUND, WITHDRAW, recorded } from "./steps";

export class Account extends AccountEntity {
  open(command: OpenAccount, state: AccountState, ctx: CommandContext): Balance | null {
    if (state.opened) {
      ctx.fail(Status.ALREADY_EXISTS, "account " + ctx.entityKey + " is already open");
      return null;
    }
    if (command.initialBalance < 0) {
      ctx.fail(Status.INVALID_ARGUMENT, "initial_balance must not be negative");
      return null;
    }
    const opened = new AccountOpened();
    opened.accountId = ctx.entityKey;
    opened.initialBalance = command.initialBalance;
    ctx.emit(opened);
    return balance(ctx.entityKey, command.initialBalance, false);
  }

  freeze(command: AccountId, state: AccountState, ctx: CommandContext): Balance | null {
    if (!state.opened) {
      ctx.fail(Status.NOT_FOUND, "account " + ctx.entityKey + " was never opened");
      return null;
    }
    if (!state.frozen) ctx.emit(new AccountFrozen());
    return balance(ctx.entityKey, state.balance, true);
  }

  deposit(move: MoneyMove, state: AccountState, ctx: CommandContext): Balance | null {
    if (move.transferId.length == 0) return direct(move, DEPOSIT, state, ctx);
    return moveStep(move, DEPOSIT, state, ctx);
  }

  withdraw(move: MoneyMove, state: AccountState, ctx: CommandContext): Balance | null {
    if (move.transferId.length == 0) return direct(move, WITHDRAW, state, ctx);
    return moveStep(move, WITHDRAW, state, ctx);
  }

  /** The compensation of "withdraw": gives back what it took, or bars it when it has not run yet. */
  refund(move: MoneyMove, state: AccountState, ctx: CommandContext): Balance | null {
    if (move.transferId.length == 0) {
      ctx.fail(Status.INVALID_ARGUMENT, "Refund is a saga step: transfer_id is required");
      return null;
    }
    const refunded = recorded(state, move.transferId, REFUND);
    if (refunded != null) return report(ctx, move.transferId, REFUND, refunded.outcome, "already decided", state.balance, state);
    const withdrawn = recorded(state, move.transferId, WITHDRAW);
    if (withdrawn == null) {
      // The withdraw is still on its way (it timed out, it was not lost): bar it, so it moves nothing when it lands.
      const barred = new StepCancelled();
      barred.transferId = move.transferId;
      barred.step = WITHDRAW;
      barred.delivery = deliveryOf(ctx);
      ctx.emit(barred);
      return report(ctx, move.transferId, REFUND, StepOutcome.STEP_CANCELLED, "the withdraw had not run; it is cancelled", state.balance, state);
    }
    if (withdrawn.outcome != StepOutcome.STEP_DONE) {
      return report(ctx, move.transferId, REFUND, StepOutcome.STEP_CANCELLED, "the withdraw moved nothing; nothing to refund", state.balance, state);
    }
    // Refunds ignore the frozen flag: a compensation must never fail.
    const credited = new Credited();
    credited.amount = withdrawn.amount;
    credited.transferId = move.transferId;
    credited.step = REFUND;
    credited.delivery = deliveryOf(ctx);
    ctx.emit(credited);
    return report(ctx, move.transferId, REFUND, StepOutcome.STEP_DONE, "", state.balance + withdrawn.amount, state);
  }

  /** A timed-out deposit: if it ran, it stands (its outcome is sent again); if not, it is barred. */
  cancelDeposit(move: MoneyMove, state: AccountState, ctx: CommandContext): Balance | null {
    if (move.transferId.length == 0) {
      ctx.fail(Status.INVALID_ARGUMENT, "CancelDeposit is a saga step: transfer_id is required");
      return null;
    }
    const deposited = recorded(state, move.transferId, DEPOSIT);
    if (deposited != null) return report(ctx, move.transferId, DEPOSIT, deposited.outcome, "decided before the cancel", state.balance, state);
    const barred = new StepCancelled();
    barred.transferId = move.transferId;
    barred.step = DEPOSIT;
    barred.delivery = deliveryOf(ctx);
    ctx.emit(barred);
    return report(ctx, move.transferId, DEPOSIT, StepOutcome.STEP_CANCELLED, "the deposit had not run; it is cancelled", state.balance, state);
  }

  getAccount(command: AccountId, state: AccountState, ctx: CommandContext): AccountState | null {
    state.accountId = ctx.entityKey;
    return state;
  }

  onAccountOpened(event: AccountOpened, state: AccountState): AccountState {
    state.accountId = event.accountId;
    state.opened = true;
    state.balance = event.initialBalance;
    return state;
  }

  onAccountFrozen(event: AccountFrozen, state: AccountState): AccountState {
    state.frozen = true;
    return state;
  }

  onDebited(event: Debited, state: AccountState): AccountState {
    state.balance -= event.amount;
    if (event.transferId.length > 0) remember(state, event.transferId, event.step, StepOutcome.STEP_DONE, event.amount);
    return state;
  }

  onCredited(event: Credited, state: AccountState): AccountState {
    state.balance += event.amount;
    if (event.transferId.length > 0) remember(state, event.transferId, event.step, StepOutcome.STEP_DONE, event.amount);
    return state;
  }

  onStepRefused(event: StepRefused, state: AccountState): AccountState {
    remember(state, event.transferId, event.step, StepOutcome.STEP_REFUSED, 0);
    return state;
  }

  onStepCancelled(event: StepCancelled, state: AccountState): AccountState {
    remember(state, event.transferId, event.step, StepOutcome.STEP_CANCELLED, 0);
    return state;
  }
}

/** A client's own Deposit / Withdraw: refusals are the call's status. */
function direct(move: MoneyMove, step: string, state: AccountState, ctx: CommandContext): Balance | null {
  const refusal = refusalOf(move, step, state);
  if (refusal.length > 0) {
    const code = !state.opened ? Status.NOT_FOUND : move.amount < 1 ? Status.INVALID_ARGUMENT : Status.FAILED_PRECONDITION;
    ctx.fail(code, refusal);
    return null;
  }
  return applyMove(move, step, state, ctx, "");
}

/** A saga's "withdraw" or "deposit": decided once, the outcome sent back to the Transfer. */
function moveStep(move: MoneyMove, step: string, state: AccountState, ctx: CommandContext): Balance | null {
  const earlier = recorded(state, move.transferId, step);
  if (earlier != null) return report(ctx, move.transferId, step, earlier.outcome, "already decided", state.balance, state);
  const refusal = refusalOf(move, step, state);
  if (refusal.length > 0) {
    const refused = new StepRefused();
    refused.transferId = move.transferId;
    refused.step = step;
    refused.reason = refusal;
    refused.delivery = deliveryOf(ctx);
    ctx.emit(refused);
    return report(ctx, move.transferId, step, StepOutcome.STEP_REFUSED, refusal, state.balance, state);
  }
  const after = applyMove(move, step, state, ctx, deliveryOf(ctx));
  return report(ctx, move.transferId, step, StepOutcome.STEP_DONE, "", after.balance, state);
}

/** Why `move` cannot be applied as `step`, or "" when it can. */
function refusalOf(move: MoneyMove, step: string, state: AccountState): string {
  if (!state.opened) return "account " + move.accountId + " was never opened";
  if (move.amount < 1) return "amount must be at least 1";
  if (state.frozen) return "account " + move.accountId + " is frozen";
  if (step == WITHDRAW && state.balance < move.amount) {
    return "account " + move.accountId + " holds " + state.balance.toString() + ", less than " + move.amount.toString();
  }
  return "";
}

/** Emits the Debited / Credited of `move`; returns the balance after it (the state itself is folded by the SDK). */
function applyMove(move: MoneyMove, step: string, state: AccountState, ctx: CommandContext, delivery: string): Balance {
  if (step == WITHDRAW) {
    const debited = new Debited();
    debited.amount = move.amount;
    debited.transferId = move.transferId;
    debited.step = step;
    debited.delivery = delivery;
    ctx.emit(debited);
    return balance(ctx.entityKey, state.balance - move.amount, state.frozen);
  }
  const credited = new Credited();
  credited.amount = move.amount;
  credited.transferId = move.transferId;
  credited.step = step;
  credited.delivery = delivery;
  ctx.emit(credited);
  return balance(ctx.entityKey, state.balance + move.amount, state.frozen);
}

/** Sends the outcome of `step` to its Transfer (after this command's write, stored with it); replies with the balance. */
function report(ctx: CommandContext, transferId: string, step: string, outcome: i32, reason: string, newBalance: i64, state: AccountState): Balance {
  const result = new StepResult();
  result.transferId = transferId;
  result.step = step;
  result.outcome = outcome;
  result.reason = reason;
  result.accountId = ctx.entityKey;
  TransferCalls.sideEffectOnStepResult(ctx, result);
  return balance(ctx.entityKey, newBalance, state.frozen);
}

function remember(state: AccountState, transferId: string, step: string, outcome: i32, amount: i64): void {
  const record = new StepRecord();
  record.transferId = transferId;
  record.step = step;
  record.outcome = outcome;
  record.amount = amount;
  state.steps.push(record);
}

/** The idempotency key the host delivered this command under (a stored side effect's id), or "". */
function deliveryOf(ctx: CommandContext): string {
  const key = ctx.metadata("idempotency-key");
  return key != null ? key : "";
}

function balance(accountId: string, amount: i64, frozen: bool): Balance {
  const reply = new Balance();
  reply.accountId = accountId;
  reply.balance = amount;
  reply.frozen = frozen;
  return reply;
}
