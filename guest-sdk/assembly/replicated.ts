// Replicated (CRDT) entities. Generated base classes (one per service) extend this with
// typed handlers. A handler gets the command, the entity's CRDT holding its current value
// (typed: GCounter, Vote, ORMap, ...) and a context; it changes the CRDT through its
// methods and returns the reply. Server-streaming handlers are called when the stream
// starts, each time the state changes, and when the client cancels (ctx.event says which).
import { CommandCall, CommandResult, StreamEvent, WriteConsistency } from "./abi/messages";
import { Context } from "./context";
import { Crdt, crdtFromValue } from "./crdt";
import { EntityHandler, failure, settleReply, staged } from "./entity";
import { Message } from "./proto/index";
import { Status } from "./status";

export class ReplicatedContext extends Context {
  /** How many replicas must have the change before the reply: WriteConsistency.WRITE_LOCAL (default), _MAJORITY, _ALL. On one node all three are local. */
  writeConsistency: i32 = WriteConsistency.WRITE_LOCAL;

  constructor(
    /** The entity's key, as read from the request's (keystate.entity_key) fields. */
    readonly entityKey: string,
  ) {
    super();
  }
}

/** What a streaming handler gets: why it is called, and how to end the stream. */
export class StreamContext<T extends Crdt> extends ReplicatedContext {
  /** Set by endStream(): the host ends the stream with OK after sending this call's reply, if any. */
  ended: bool = false;

  constructor(
    entityKey: string,
    /** StreamEvent.STREAM_STARTED, STREAM_CHANGED or STREAM_CANCELLED. */
    readonly event: i32,
    /** How many other streams of this method this node holds for the entity. */
    readonly otherStreams: u32,
    /** STREAM_CHANGED: the value this stream last saw (before the change). */
    readonly previous: T | null,
  ) {
    super(entityKey);
  }

  get started(): bool {
    return this.event == StreamEvent.STREAM_STARTED;
  }
  get changed(): bool {
    return this.event == StreamEvent.STREAM_CHANGED;
  }
  get cancelled(): bool {
    return this.event == StreamEvent.STREAM_CANCELLED;
  }

  endStream(): void {
    this.ended = true;
  }
}

export abstract class ReplicatedEntity<T extends Crdt> extends EntityHandler {
  /** Generated: decodes the command for `method` and calls its typed handler. */
  abstract dispatch(method: string, payload: Uint8Array, crdt: T, ctx: StreamContext<T>): Message | null;

  handleCommand(call: CommandCall, out: CommandResult): void {
    const value = call.crdt;
    let crdt: Crdt | null = null;
    if (value != null) crdt = crdtFromValue(value);
    if (crdt == null) {
      out.failure = failure(Status.INTERNAL, "the host sent no CRDT value this SDK can read for " + call.service);
      return;
    }
    const prevValue = call.previousCrdt;
    let previous: T | null = null;
    if (prevValue != null) {
      const decoded = crdtFromValue(prevValue);
      if (decoded != null) previous = changetype<T>(decoded);
    }
    const ctx = new StreamContext<T>(call.entityKey, call.streamEvent, call.otherStreams, previous);
    ctx.callMetadata = call.metadata;
    const reply = this.dispatch(call.method, call.payload, changetype<T>(crdt), ctx);
    if (call.streamEvent == StreamEvent.STREAM_NONE) {
      if (!settleReply(ctx, reply, call.method, out)) return;
    } else {
      if (ctx.failure != null) {
        out.failure = ctx.failure;
        return;
      }
      // A streaming handler returns null to stay silent this time.
      if (reply != null) {
        staged.reply = reply;
        out.streamSend = true;
      }
      out.endStream = ctx.ended;
    }
    out.crdtOps = crdt.ops;
    out.writeConsistency = ctx.writeConsistency;
  }
}
