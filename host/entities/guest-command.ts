// Runs one ks_command on a pooled instance of a service's module (the ABI codec hands
// back every bytes field as a real Uint8Array).
import type { CommandCall, CommandResult } from "../abi/abi-codec.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type GuestCommand = Omit<CommandCall, "service">;

/** Throws what the guest call threw (a trap); a failure the guest chose is in `failure`. */
export function guestCommand(service: ServiceRuntime, call: GuestCommand): CommandResult {
  return service.pool.run((guest) => guest.command({ service: service.name, ...call }));
}
