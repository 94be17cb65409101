// What a command handler gets besides the command and the state: the entity's key,
// and the ways to answer other than a plain reply (fail, emit events).
import { Message } from "./proto/index";
import { Failure } from "./abi/messages";

export class CommandContext {
  /** Set by fail(); the host answers the caller with it and writes nothing. */
  failure: Failure | null = null;
  /** Events emitted so far by this command, in order. */
  readonly emitted: Array<Message> = [];

  constructor(
    /** The entity's key, as read from the request's (keystate.entity_key) fields. */
    readonly entityKey: string,
    /** Event-sourced: the sequence number of the last event in the state. */
    readonly sequence: i64,
  ) {}

  /** Refuses the command with a gRPC status code and a message for the caller. Return null after it. */
  fail(code: u32, message: string): void {
    const failure = new Failure();
    failure.code = code;
    failure.message = message;
    this.failure = failure;
  }

  /** Event-sourced: records an event; it is folded into the state and journaled once the command succeeds. */
  emit(event: Message): void {
    this.emitted.push(event);
  }
}
