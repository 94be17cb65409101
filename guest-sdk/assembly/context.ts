// What a handler gets besides its command (and state): the ways to answer other than a
// plain reply. One context class per entity kind, so each kind offers only what it
// can do: event-sourced entities emit events, value entities replace or delete their
// value, actions only reply or fail. Failing is shared by all of them.
import { Message, encode } from "./proto/index";
import { Failure, MetadataEntry, Publication, ServiceCall, SideEffect, StateAction, TimerRequest } from "./abi/messages";

// A context starts with these shared empty arrays and makes its own on the first add: nearly
// every command adds nothing, and four arrays made per context were eight of the guest's ~24
// allocations per command. Nothing writes to them (CommandResult.clearFields() only sets an
// empty array's length to 0).
const NO_SIDE_EFFECTS = new Array<SideEffect>(0);
const NO_TIMERS = new Array<TimerRequest>(0);
const NO_PUBLICATIONS = new Array<Publication>(0);
const NO_METADATA = new Array<MetadataEntry>(0);

export class Context {
  /** Set by fail(); the host answers the caller with it and writes nothing. */
  failure: Failure | null = null;
  /** Set by forward(): the caller's reply comes from this call. */
  forwarded: ServiceCall | null = null;
  private addedSideEffects: Array<SideEffect> = NO_SIDE_EFFECTS;
  private addedTimers: Array<TimerRequest> = NO_TIMERS;
  private addedPublications: Array<Publication> = NO_PUBLICATIONS;
  /** What the call carries besides its message (set by the SDK before the handler runs). */
  callMetadata: Array<MetadataEntry> = NO_METADATA;

  /** Added by sideEffect(), in order. */
  get sideEffects(): Array<SideEffect> {
    return this.addedSideEffects;
  }

  /** Added by schedule() and cancelTimer(), in order. */
  get timers(): Array<TimerRequest> {
    return this.addedTimers;
  }

  /** Added by publish(), in order. */
  get publications(): Array<Publication> {
    return this.addedPublications;
  }

  /**
   * A value the call carries besides its message, or null. A subscription's delivery carries
   * the CloudEvents attributes "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject" (and
   * "ce-sequence" from an event log); a delivery of a stored effect or timer, "idempotency-key".
   */
  metadata(key: string): string | null {
    for (let i = 0; i < this.callMetadata.length; i++) {
      if (this.callMetadata[i].key == key) return this.callMetadata[i].value;
    }
    return null;
  }

  /**
   * Calls `service`/`method` with `message` once `delayMs` have passed, durably: the timer is
   * stored with this command's state change and fired (at least once, with the same
   * idempotency key on every try) by whichever node owns this entity then, restarts included.
   * A `name` makes it this entity's timer `name`: scheduling the name again replaces it and
   * cancelTimer(name) deletes it. A failed command schedules nothing.
   */
  schedule(delayMs: u64, service: string, method: string, message: Message, name: string = ""): void {
    const timer = new TimerRequest();
    timer.name = name;
    timer.delayMs = delayMs;
    timer.call = serviceCall(service, method, message);
    this.addTimer(timer);
  }

  /** Deletes this entity's timer `name` with this command's state change (nothing happens when there is none). */
  cancelTimer(name: string): void {
    const timer = new TimerRequest();
    timer.name = name;
    timer.cancel = true;
    this.addTimer(timer);
  }

  /**
   * Publishes `message` to `topic` once this command's state change is stored: every
   * subscription of the topic gets it at least once, messages with one `partitionKey` in the
   * order they were published. A failed command publishes nothing.
   */
  publish(topic: string, message: Message, partitionKey: string = ""): void {
    const publication = new Publication();
    publication.topic = topic;
    publication.type = message.typeName();
    publication.payload = encode(message);
    publication.partitionKey = partitionKey;
    if (this.addedPublications == NO_PUBLICATIONS) this.addedPublications = new Array<Publication>();
    this.addedPublications.push(publication);
  }

  /**
   * Answers the caller with the reply of `service`/`method` called with `message`
   * (e.g. "shop.Ledger", "Record"). The host persists this command's state change first,
   * then makes the call; the handler may return null after it. The target must be
   * deployed and reply with this method's reply type, else the command fails with
   * UNIMPLEMENTED and nothing of it is stored. The last forward() of a command wins.
   */
  forward(service: string, method: string, message: Message): void {
    this.forwarded = serviceCall(service, method, message);
  }

  /**
   * Calls `service`/`method` with `message` once this command's state change is
   * persisted; its reply is dropped. synchronous: the call completes before the caller
   * gets its reply, and a failure of it is the caller's answer (the state change stays
   * stored). Otherwise it runs after the reply and is retried with backoff on failure.
   */
  sideEffect(service: string, method: string, message: Message, synchronous: bool = false): void {
    const effect = new SideEffect();
    effect.call = serviceCall(service, method, message);
    effect.synchronous = synchronous;
    if (this.addedSideEffects == NO_SIDE_EFFECTS) this.addedSideEffects = new Array<SideEffect>();
    this.addedSideEffects.push(effect);
  }

  private addTimer(timer: TimerRequest): void {
    if (this.addedTimers == NO_TIMERS) this.addedTimers = new Array<TimerRequest>();
    this.addedTimers.push(timer);
  }

  /** Refuses the command with a gRPC status code and a message for the caller. Return null after it. */
  fail(code: u32, message: string): void {
    const failure = new Failure();
    failure.code = code;
    failure.message = message;
    this.failure = failure;
  }
}

/** Event-sourced entities. */
export class CommandContext extends Context {
  /** Events emitted so far by this command, in order. */
  readonly emitted: Array<Message> = [];

  constructor(
    /** The entity's key, as read from the request's (keystate.entity_key) fields. */
    readonly entityKey: string,
    /** Event-sourced: the sequence number of the last event in the state. */
    readonly sequence: i64,
  ) {
    super();
  }

  /** Event-sourced: records an event; it is folded into the state and journaled once the command succeeds. */
  emit(event: Message): void {
    this.emitted.push(event);
  }
}

/**
 * Value (key-value) entities. The state a handler receives is a copy: changing it
 * stores nothing until the handler calls updateState(). The last of
 * updateState()/deleteState() in a command wins; a failed command stores nothing.
 */
export class ValueContext<S extends Message> extends Context {
  /** STATE_KEEP, STATE_UPDATE or STATE_DELETE (keystate.abi.StateAction). */
  stateAction: i32 = StateAction.STATE_KEEP;
  /** The value to store when stateAction is STATE_UPDATE. */
  updated: S | null = null;

  constructor(
    /** The entity's key, as read from the request's (keystate.entity_key) fields. */
    readonly entityKey: string,
  ) {
    super();
  }

  /** Replaces the stored value with `state`, encoded as it is when the handler returns, once the command succeeds. */
  updateState(state: S): void {
    this.updated = state;
    this.stateAction = StateAction.STATE_UPDATE;
  }

  /** Deletes the stored value once the command succeeds; the next command sees initialState(). */
  deleteState(): void {
    this.updated = null;
    this.stateAction = StateAction.STATE_DELETE;
  }
}

/** Stateless actions: no entity key, no state; a handler replies or fails. */
export class ActionContext extends Context {}

function serviceCall(service: string, method: string, message: Message): ServiceCall {
  const call = new ServiceCall();
  call.service = service;
  call.method = method;
  call.payload = encode(message);
  return call;
}
