// Runs one ks_command on a pooled instance of a service's module and returns its result
// with every bytes field a real Uint8Array. protobufjs decodes an empty or absent bytes
// field as a plain `[]`, and an empty message (a reply of all defaults, an Empty, a
// counter at 0) is exactly that: callers and stores need bytes, not an Array.
import type { CommandCall, CommandResult } from "../abi/abi-codec.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type GuestCommand = Omit<CommandCall, "service">;

/** Throws what the guest call threw (a trap); a failure the guest chose is in `failure`. */
export function guestCommand(service: ServiceRuntime, call: GuestCommand): CommandResult {
  const result = service.pool.run((guest) => guest.command({ service: service.name, ...call }));
  return {
    ...result,
    reply: asBytes(result.reply),
    state: asBytes(result.state),
    events: result.events.map((event) => ({ type: event.type, payload: asBytes(event.payload) })),
  };
}

/** `value` as a Uint8Array (protobufjs hands out `[]` for empty bytes). */
export function asBytes(value: Uint8Array | ArrayLike<number> | undefined): Uint8Array {
  if (value instanceof Uint8Array) return value;
  return Uint8Array.from(value ?? []);
}
