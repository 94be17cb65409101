// The base every entity kind extends, and the registry the ABI exports dispatch through.
import { CommandCall, CommandResult, Failure, ReplayCall, ReplayResult } from "./abi/messages";
import { Context } from "./context";
import { Message } from "./proto/index";
import { Status } from "./status";

export abstract class EntityHandler {
  /** The fully qualified gRPC service this entity serves (generated). */
  abstract serviceName(): string;
  abstract handleCommand(call: CommandCall, out: CommandResult): void;

  handleReplay(call: ReplayCall, out: ReplayResult): void {
    out.failure = failure(Status.UNIMPLEMENTED, "service " + call.service + " has no journal to replay");
  }
}

const handlers = new Map<string, EntityHandler>();
// The last service asked for: a module's calls mostly go to one service, and one string
// comparison (the SDK hands the same string object for a service every call) is cheaper than
// hashing the name twice.
let lastService = "";
let lastHandler: EntityHandler | null = null;

/** Makes `handler` serve its service. Call once per entity at the top level of index.ts. */
export function register(handler: EntityHandler): void {
  handlers.set(handler.serviceName(), handler);
}

export function handlerFor(service: string): EntityHandler | null {
  if (service == lastService && lastHandler != null) return lastHandler;
  if (!handlers.has(service)) return null;
  lastHandler = handlers.get(service);
  lastService = service;
  return lastHandler;
}

/**
 * The reply and new state of the command being answered. exports.ts encodes them straight
 * into the result it sends, rather than each into an array of its own first and then
 * copied: that was two allocations and a copy per message, on every command.
 * Set by the entity kinds; dropped when the command fails.
 */
export class StagedMessages {
  reply: Message | null = null;
  state: Message | null = null;

  clear(): void {
    this.reply = null;
    this.state = null;
  }
}

export const staged = new StagedMessages();

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
