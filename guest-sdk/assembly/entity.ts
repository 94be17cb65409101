// The base every entity kind extends, and the registry the ABI exports dispatch through.
import { CommandCall, CommandResult, Failure, ReplayCall, ReplayResult } from "./abi/messages";
import { Context } from "./context";
import { Message, Writer, writeMessage } from "./proto/index";
import { Status } from "./status";

export abstract class EntityHandler {
  /** The fully qualified gRPC service this entity serves (generated). */
  abstract serviceName(): string;
  abstract handleCommand(call: CommandCall, out: CommandResult): void;

  handleReplay(call: ReplayCall, out: ReplayResult): void {
    out.failure = failure(Status.UNIMPLEMENTED, "service " + call.service + " has no journal to replay");
  }
}

// The registered services and their handlers, side by side. A module serves a few services,
// so a scan is as quick as a Map, and a cold start's first call does not compile the Map's
// lookup and string hashing (~2.3 KB of machine code, ~6% of what that call compiled).
const services = new Array<string>();
const handlers = new Array<EntityHandler>();
// The last service asked for: a module's calls mostly go to one service, and one string
// comparison (the SDK hands the same string object for a service every call) is cheaper than
// a scan.
let lastService = "";
let lastHandler: EntityHandler | null = null;

/** Makes `handler` serve its service (in place of one registered for it before). Call once per entity at the top level of index.ts. */
export function register(handler: EntityHandler): void {
  const service = handler.serviceName();
  const at = services.indexOf(service);
  if (at >= 0) {
    handlers[at] = handler;
  } else {
    services.push(service);
    handlers.push(handler);
  }
}

export function handlerFor(service: string): EntityHandler | null {
  if (service == lastService && lastHandler != null) return lastHandler;
  for (let i = 0; i < services.length; i++) {
    if (services[i] == service) {
      lastHandler = handlers[i];
      lastService = service;
      return lastHandler;
    }
  }
  return null;
}

/**
 * The result of the command being answered, written straight into the bytes exports.ts
 * sends: before, each event, the reply and the new state was first encoded into an array
 * of its own and then copied into the result, two allocations and a copy per message on
 * every command. Set by the entity kinds; all of it is dropped when the command fails.
 */
export class StagedResult {
  /**
   * The result's bytes: events as they are emitted, the other fields when it is sent. Empty
   * between calls; ks_replay writes its result here too.
   */
  readonly writer: Writer = new Writer(1024);
  reply: Message | null = null;
  state: Message | null = null;

  /** Empties it: after the result is sent, and when the command failed (a failed command returns nothing but its failure). */
  reset(): void {
    this.writer.reset();
    this.reply = null;
    this.state = null;
  }

  /**
   * Appends an emitted event (CommandResult field 3) encoded as it is now: the handler of a
   * later event may change objects this event shares with the state, so it cannot wait.
   */
  addEvent(event: Message): void {
    const w = this.writer;
    w.uint32(26);
    const mark = w.fork();
    w.uint32(10);
    w.string(event.typeName());
    writeMessage(w, 18, event);
    w.ldelim(mark);
  }
}

export const staged = new StagedResult();

export function failure(code: u32, message: string): Failure {
  const f = new Failure();
  f.code = code;
  f.message = message;
  return f;
}

/**
 * Writes a handler's outcome into `out`: the failure it chose, INTERNAL for a null reply
 * without ctx.fail() or ctx.forward(), or the encoded reply and effects. True when the command succeeded.
 */
export function settleReply(ctx: Context, reply: Message | null, method: string, out: CommandResult): bool {
  if (ctx.failure != null) {
    out.failure = ctx.failure;
    return false;
  }
  if (reply == null && ctx.forwarded == null) {
    out.failure = failure(Status.INTERNAL, "the handler for " + method + " returned null without ctx.fail() or ctx.forward()");
    return false;
  }
  staged.reply = reply;
  writeEffects(ctx, out);
  return true;
}

/** Copies a successful command's forward, side effects, timers and publications into `out` (a failed command has none). */
export function writeEffects(ctx: Context, out: CommandResult): void {
  out.forward = ctx.forwarded;
  out.sideEffects = ctx.sideEffects;
  out.timers = ctx.timers;
  out.publications = ctx.publications;
}
