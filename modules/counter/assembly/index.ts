// The key-value counter (contract: shared/contracts/counter.proto). Each counter_id is a
// value entity holding a CounterState; handlers read it, and store a new one with
// ctx.updateState() (or drop it with ctx.deleteState()) before replying.
import { Status, ValueContext, register } from "keystate-guest-sdk/assembly/index";
import { ChangeValue, CounterId, CounterState, CurrentValue } from "./generated/messages";
import { CounterEntity } from "./generated/handlers";

class Counter extends CounterEntity {
  increase(command: ChangeValue, state: CounterState, ctx: ValueContext<CounterState>): CurrentValue | null {
    if (!checkAmount(command, ctx)) return null;
    // i64 arithmetic wraps silently in AssemblyScript; refuse instead of wrapping.
    if (state.value > i64.MAX_VALUE - command.value) {
      ctx.fail(Status.OUT_OF_RANGE, "counter " + command.counterId + " would overflow");
      return null;
    }
    state.value += command.value;
    ctx.updateState(state);
    return current(state.value);
  }

  decrease(command: ChangeValue, state: CounterState, ctx: ValueContext<CounterState>): CurrentValue | null {
    if (!checkAmount(command, ctx)) return null;
    if (state.value < i64.MIN_VALUE + command.value) {
      ctx.fail(Status.OUT_OF_RANGE, "counter " + command.counterId + " would underflow");
      return null;
    }
    state.value -= command.value;
    ctx.updateState(state);
    return current(state.value);
  }

  reset(command: CounterId, state: CounterState, ctx: ValueContext<CounterState>): CurrentValue | null {
    // A reset counter reads exactly like one never written (0), so its value is deleted
    // rather than stored as 0: nothing is kept for it.
    ctx.deleteState();
    return current(0);
  }

  get(command: CounterId, state: CounterState, ctx: ValueContext<CounterState>): CurrentValue | null {
    return current(state.value);
  }
}

function checkAmount(command: ChangeValue, ctx: ValueContext<CounterState>): bool {
  if (command.value < 0) {
    ctx.fail(Status.INVALID_ARGUMENT, "value must not be negative (got " + command.value.toString() + ")");
    return false;
  }
  return true;
}

function current(value: i64): CurrentValue {
  const reply = new CurrentValue();
  reply.value = value;
  return reply;
}

register(new Counter());
