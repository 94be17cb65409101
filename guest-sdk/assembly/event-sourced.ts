// Event-sourced entities. Generated base classes (one per service) extend this with
// typed command and event handlers; this class runs the model: decode the state, run
// the command, fold the emitted events into the state, return reply + events + state.
import { CommandCall, CommandResult, ReplayCall, ReplayResult, StateAction } from "./abi/messages";
import { CommandContext } from "./context";
import { EntityHandler, failure, staged, writeEffects } from "./entity";
import { Message, decode, encode } from "./proto/index";
import { Status } from "./status";

export abstract class EventSourcedEntity<S extends Message> extends EntityHandler {
  /** The state of an entity that has no events yet. Override to start elsewhere. */
  initialState(): S {
    return instantiate<S>();
  }

  /** Generated: decodes the command for `method` and calls its typed handler. */
  abstract dispatch(method: string, payload: Uint8Array, state: S, ctx: CommandContext): Message | null;
  /** Generated: calls the typed event handler for `event`'s type; null for an undeclared type. */
  abstract applyEvent(event: Message, state: S): S | null;
  /** Generated: decodes a journaled event of `type`; null for an undeclared type or bad bytes. */
  abstract decodeEvent(type: string, payload: Uint8Array): Message | null;

  handleCommand(call: CommandCall, out: CommandResult): void {
    const state = this.loadState(call.hasState, call.state);
    if (state == null) {
      out.failure = failure(Status.DATA_LOSS, "the stored state of " + call.entityKey + " does not decode");
      return;
    }
    const ctx = new CommandContext(call.entityKey, call.sequence);
    ctx.callMetadata = call.metadata;
    const reply = this.dispatch(call.method, call.payload, state, ctx);
    if (ctx.failure != null) {
      out.failure = ctx.failure;
      return;
    }
    if (reply == null && ctx.forwarded == null) {
      out.failure = failure(Status.INTERNAL, "the handler for " + call.method + " returned null without ctx.fail() or ctx.forward()");
      return;
    }
    let current: S = state;
    const events = ctx.emitted;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      const next = this.applyEvent(event, current);
      if (next == null) {
        out.failure = failure(Status.INTERNAL, "the entity emitted " + event.typeName() + ", which is not one of its event types");
        return;
      }
      current = next;
      staged.addEvent(event);
    }
    staged.reply = reply;
    writeEffects(ctx, out);
    staged.state = current;
    out.stateAction = StateAction.STATE_UPDATE;
  }

  handleReplay(call: ReplayCall, out: ReplayResult): void {
    const state = this.loadState(call.hasState, call.state);
    if (state == null) {
      out.failure = failure(Status.DATA_LOSS, "the snapshot does not decode");
      return;
    }
    let current: S = state;
    const events = call.events;
    for (let i = 0; i < events.length; i++) {
      const record = events[i];
      const event = this.decodeEvent(record.type, record.payload);
      let next: S | null = null;
      if (event != null) next = this.applyEvent(event, current);
      if (next == null) {
        out.failure = failure(Status.DATA_LOSS, "journaled event " + i.toString() + " of type " + record.type + " cannot be applied");
        return;
      }
      current = next;
    }
    out.state = encode(current);
  }

  private loadState(hasState: bool, bytes: Uint8Array): S | null {
    return hasState ? decode<S>(bytes) : this.initialState();
  }
}
