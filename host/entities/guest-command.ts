// Runs one ks_command on a pooled instance of a service's module (the ABI codec hands
// back every bytes field as a real Uint8Array).
import type { CommandCall, CommandResult } from "../abi/abi-codec.js";
import { findFuelGlobal } from "../runtime/fuel.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type GuestCommand = Omit<CommandCall, "service">;

/** Throws what the guest call threw (a trap); a failure the guest chose is in `failure`. */
export function guestCommand(service: ServiceRuntime, call: GuestCommand): CommandResult {
  const observer = service.observer;
  if (!observer) return service.pool.run((guest) => guest.command({ service: service.name, ...call }));
  const start = performance.now();
  let fuelLeft: number | undefined;
  try {
    return service.pool.run((guest) => {
      try {
        return guest.command({ service: service.name, ...call });
      } finally {
        // The instance's fuel counter starts each call at the budget and counts down.
        fuelLeft = findFuelGlobal({ exports: guest.exports as unknown as WebAssembly.Exports })?.value as number | undefined;
      }
    });
  } finally {
    // A trapped call is timed too: it is the one that burnt its CPU budget.
    const budget = service.fuelPerCall;
    const fuelUsed = fuelLeft === undefined || budget === undefined ? undefined : budget - Math.max(0, fuelLeft);
    observer.guestCall(service.name, (performance.now() - start) / 1000, fuelUsed);
  }
}
