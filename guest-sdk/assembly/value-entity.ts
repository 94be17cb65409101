// Value (key-value) entities. Generated base classes (one per service) extend this with
// typed command handlers; this class runs the model: decode the stored value (or start
// from initialState()), run the command, and return the reply plus what to do with the
// stored value (keep, replace, delete). The host persists it before replying.
import { CommandCall, CommandResult, StateAction } from "./abi/messages";
import { ValueContext } from "./context";
import { EntityHandler, failure, settleReply, staged } from "./entity";
import { Message, decode } from "./proto/index";
import { Status } from "./status";

export abstract class ValueEntity<S extends Message> extends EntityHandler {
  /** The value of a key that was never written (or was deleted). Override to start elsewhere. */
  initialState(): S {
    return instantiate<S>();
  }

  /** Generated: decodes the command for `method` and calls its typed handler. */
  abstract dispatch(method: string, payload: Uint8Array, state: S, ctx: ValueContext<S>): Message | null;

  handleCommand(call: CommandCall, out: CommandResult): void {
    const state = call.hasState ? decode<S>(call.state) : this.initialState();
    if (state == null) {
      out.failure = failure(Status.DATA_LOSS, "the stored value of " + call.entityKey + " does not decode");
      return;
    }
    const ctx = new ValueContext<S>(call.entityKey);
    ctx.callMetadata = call.metadata;
    if (!settleReply(ctx, this.dispatch(call.method, call.payload, state, ctx), call.method, out)) return;
    out.stateAction = ctx.stateAction;
    if (ctx.stateAction == StateAction.STATE_UPDATE) staged.state = ctx.updated;
  }
}
