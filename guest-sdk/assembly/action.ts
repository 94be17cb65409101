// Stateless actions: a handler turns a request into a reply (or a failure) with no
// entity key and no state, so the host runs them directly on its instance pool, any
// number at once. Generated base classes extend this with typed handlers.
import { CommandCall, CommandResult } from "./abi/messages";
import { ActionContext } from "./context";
import { EntityHandler, settleReply } from "./entity";
import { Message } from "./proto/index";

export abstract class Action extends EntityHandler {
  /** Generated: decodes the request for `method` and calls its typed handler. */
  abstract dispatch(method: string, payload: Uint8Array, ctx: ActionContext): Message | null;

  handleCommand(call: CommandCall, out: CommandResult): void {
    const ctx = new ActionContext();
    ctx.callMetadata = call.metadata;
    settleReply(ctx, this.dispatch(call.method, call.payload, ctx), call.method, out);
  }
}
