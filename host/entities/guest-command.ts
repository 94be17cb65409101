// Runs one ks_command on a pooled instance of a service's module (the ABI codec hands
// back every bytes field as a real Uint8Array).
import type { CommandCall, CommandResult } from "../abi/abi-codec.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type GuestCommand = Omit<CommandCall, "service">;

/** Throws what the guest call threw (a trap); a failure the guest chose is in `failure`. */
export function guestCommand(service: ServiceRuntime, call: GuestCommand): CommandResult {
  const observer = service.observer;
  if (!observer) return service.pool.run((guest) => guest.command({ service: service.name, ...call }));
  const start = performance.now();
  try {
    return service.pool.run((guest) => guest.command({ service: service.name, ...call }));
  } finally {
    // A trapped call is timed too: it is the one that burnt its CPU budget.
    observer.guestCall(service.name, (performance.now() - start) / 1000);
  }
}
