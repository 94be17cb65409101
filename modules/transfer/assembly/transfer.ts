// The Transfer entity: the saga. Its state machine is explicit — every step outcome it
// accepts is an event (TransferStarted, TransferStepSucceeded / Failed / TimedOut), and
// entering a status issues that status's work in the same write: the step's command to an
// account (an asynchronous side effect, so it is stored in the outbox and delivered even if
// this node dies right after), and the step timer. Nothing is replayed but events: a crash
// at any point resumes from the last journaled event with its outbox entries and timer.
import { CommandContext, Message, Status, decode, encode } from "keystate-guest-sdk/assembly/index";
import {
  MoneyMove, StartTransfer, StepOutcome, StepResult, StepTimeout, TransferId, TransferStarted, TransferState,
  TransferStatus, TransferStepFailed, TransferStepSucceeded, TransferStepTimedOut,
} from "./generated/messages";
import { TransferEntity } from "./generated/handlers";
import { AccountCalls, TransferCalls } from "./generated/calls";
import { DEFAULT_STEP_TIMEOUT_MS, DEPOSIT, REFUND, STEP_TIMER, WITHDRAW } from "./steps";

export class Transfer extends TransferEntity {
  start(command: StartTransfer, state: TransferState, ctx: CommandContext): TransferState | null {
    const invalid = invalidStart(command);
    if (invalid.length > 0) {
      ctx.fail(Status.INVALID_ARGUMENT, invalid);
      return null;
    }
    const timeoutMs = command.stepTimeoutMs > 0 ? command.stepTimeoutMs : DEFAULT_STEP_TIMEOUT_MS;
    if (state.status != TransferStatus.TRANSFER_STATUS_UNSPECIFIED) {
      // A client retrying its Start (its first try may have landed) gets the state; anything else is a clash of ids.
      const same = state.fromAccount == command.fromAccount && state.toAccount == command.toAccount && state.amount == command.amount && state.stepTimeoutMs == timeoutMs;
      if (same) return state;
      ctx.fail(Status.ALREADY_EXISTS, "transfer " + ctx.entityKey + " was started with other accounts, amount or timeout");
      return null;
    }
    const started = new TransferStarted();
    started.transferId = ctx.entityKey;
    started.fromAccount = command.fromAccount;
    started.toAccount = command.toAccount;
    started.amount = command.amount;
    started.stepTimeoutMs = timeoutMs;
    return this.advance(started, this.onTransferStarted(started, copy(state)), ctx);
  }

  getTransfer(command: TransferId, state: TransferState, ctx: CommandContext): TransferState | null {
    state.transferId = ctx.entityKey;
    return state;
  }

  onStepResult(result: StepResult, state: TransferState, ctx: CommandContext): TransferState | null {
    // Late or repeated outcomes (a step already settled, or one superseded by a timeout) change nothing.
    if (!inFlight(state, result.step)) return state;
    if (result.outcome == StepOutcome.STEP_DONE) {
      const succeeded = new TransferStepSucceeded();
      succeeded.step = result.step;
      return this.advance(succeeded, this.onTransferStepSucceeded(succeeded, copy(state)), ctx);
    }
    if (result.outcome == StepOutcome.STEP_REFUSED || result.outcome == StepOutcome.STEP_CANCELLED) {
      const failed = new TransferStepFailed();
      failed.step = result.step;
      failed.outcome = result.outcome;
      failed.reason = result.reason;
      return this.advance(failed, this.onTransferStepFailed(failed, copy(state)), ctx);
    }
    return state;
  }

  onStepTimeout(timeout: StepTimeout, state: TransferState, ctx: CommandContext): TransferState | null {
    // Only forward steps time out; a timer that fires after its step settled (at least once) is ignored.
    const timesOut = (state.status == TransferStatus.WITHDRAWING && timeout.step == WITHDRAW) || (state.status == TransferStatus.DEPOSITING && timeout.step == DEPOSIT);
    if (!timesOut) return state;
    const timedOut = new TransferStepTimedOut();
    timedOut.step = timeout.step;
    return this.advance(timedOut, this.onTransferStepTimedOut(timedOut, copy(state)), ctx);
  }

  onTransferStarted(event: TransferStarted, state: TransferState): TransferState {
    state.transferId = event.transferId;
    state.fromAccount = event.fromAccount;
    state.toAccount = event.toAccount;
    state.amount = event.amount;
    state.stepTimeoutMs = event.stepTimeoutMs;
    return enter(state, TransferStatus.WITHDRAWING, WITHDRAW);
  }

  onTransferStepSucceeded(event: TransferStepSucceeded, state: TransferState): TransferState {
    state.history.push(event.step + ":done");
    if (event.step == WITHDRAW) return enter(state, TransferStatus.DEPOSITING, DEPOSIT);
    if (event.step == DEPOSIT) return enter(state, TransferStatus.COMPLETED, "");
    return enter(state, TransferStatus.COMPENSATED, "");
  }

  onTransferStepFailed(event: TransferStepFailed, state: TransferState): TransferState {
    state.history.push(event.step + (event.outcome == StepOutcome.STEP_CANCELLED ? ":cancelled" : ":refused"));
    addReason(state, event.reason);
    // The withdraw moved nothing, or (refund cancelled) never ran: nothing to undo.
    if (event.step == DEPOSIT) return enter(state, TransferStatus.REFUNDING, REFUND);
    return enter(state, TransferStatus.FAILED, "");
  }

  onTransferStepTimedOut(event: TransferStepTimedOut, state: TransferState): TransferState {
    state.history.push(event.step + ":timed-out");
    addReason(state, event.step + " timed out after " + state.stepTimeoutMs.toString() + " ms");
    if (event.step == DEPOSIT) return enter(state, TransferStatus.CANCELLING_DEPOSIT, DEPOSIT);
    return enter(state, TransferStatus.REFUNDING, REFUND);
  }

  /**
   * Emits `event` and issues the work of the status it leads to (`next`, the state with
   * it folded in — also the reply). The SDK folds the event into the entity's own state.
   */
  advance(event: Message, next: TransferState, ctx: CommandContext): TransferState {
    ctx.emit(event);
    const status = next.status;
    if (status == TransferStatus.WITHDRAWING) {
      AccountCalls.sideEffectWithdraw(ctx, move(next, next.fromAccount));
      scheduleTimeout(next, WITHDRAW, ctx);
    } else if (status == TransferStatus.DEPOSITING) {
      AccountCalls.sideEffectDeposit(ctx, move(next, next.toAccount));
      scheduleTimeout(next, DEPOSIT, ctx);
    } else if (status == TransferStatus.CANCELLING_DEPOSIT) {
      // Compensations take no timeout: an account never refuses them and the outbox delivers them until they land.
      AccountCalls.sideEffectCancelDeposit(ctx, move(next, next.toAccount));
      ctx.cancelTimer(STEP_TIMER);
    } else if (status == TransferStatus.REFUNDING) {
      AccountCalls.sideEffectRefund(ctx, move(next, next.fromAccount));
      ctx.cancelTimer(STEP_TIMER);
    } else {
      ctx.cancelTimer(STEP_TIMER); // final
    }
    return next;
  }
}

function invalidStart(command: StartTransfer): string {
  if (command.fromAccount.length == 0 || command.toAccount.length == 0) return "from_account and to_account are required";
  if (command.fromAccount == command.toAccount) return "from_account and to_account must differ";
  if (command.amount < 1) return "amount must be at least 1";
  return "";
}

/** True when `step` is the one the transfer waits for (never once it is final). */
function inFlight(state: TransferState, step: string): bool {
  return state.step.length > 0 && state.step == step;
}

function enter(state: TransferState, status: i32, step: string): TransferState {
  state.status = status;
  state.step = step;
  return state;
}

function addReason(state: TransferState, reason: string): void {
  if (reason.length == 0) return;
  state.reason = state.reason.length > 0 ? state.reason + "; " + reason : reason;
}

/** The state as a new object: a handler folds its event into this copy for its reply, never into the state the SDK folds. */
function copy(state: TransferState): TransferState {
  return decode<TransferState>(encode(state))!;
}

function move(state: TransferState, accountId: string): MoneyMove {
  const command = new MoneyMove();
  command.accountId = accountId;
  command.amount = state.amount;
  command.transferId = state.transferId;
  return command;
}

/** The named step timer: scheduling it again (the next step) replaces the previous step's. */
function scheduleTimeout(state: TransferState, step: string, ctx: CommandContext): void {
  const timeout = new StepTimeout();
  timeout.transferId = state.transferId;
  timeout.step = step;
  ctx.schedule(<u64>state.stepTimeoutMs, TransferCalls.SERVICE, "OnStepTimeout", timeout, STEP_TIMER);
}
