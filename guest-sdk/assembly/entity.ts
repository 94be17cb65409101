// The base every entity kind extends, and the registry the ABI exports dispatch through.
import { CommandCall, CommandResult, Failure, ReplayCall, ReplayResult } from "./abi/messages";
import { Context } from "./context";
import { Message, encode } from "./proto/index";
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

/** Makes `handler` serve its service. Call once per entity at the top level of index.ts. */
export function register(handler: EntityHandler): void {
  handlers.set(handler.serviceName(), handler);
}

export function handlerFor(service: string): EntityHandler | null {
  return handlers.has(service) ? handlers.get(service) : null;
}

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
  if (reply != null) out.reply = encode(reply);
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
