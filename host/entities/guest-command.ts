// Runs one ks_command on a pooled instance of a service's module (the ABI codec hands
// back every bytes field as a real Uint8Array).
import type { CallMetadata, CommandCall, CommandResult } from "../abi/abi-codec.js";
import type { Envelope } from "./mailbox.js";
import type { GuestCallContext } from "./guest-errors.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type GuestCommand = Omit<CommandCall, "service">;

/** Throws what the guest call threw (a trap); a failure the guest chose is in `failure`. */
export function guestCommand(service: ServiceRuntime, call: GuestCommand): CommandResult {
  return runCommand(service, { service: service.name, ...call });
}

/** guestCommand for a keyed entity's command (the hot path: one call object, no spread). */
export function keyedCommand(
  service: ServiceRuntime,
  method: string,
  entityKey: string,
  sequence: number,
  state: Uint8Array | undefined,
  payload: Uint8Array,
  metadata?: CallMetadata,
): CommandResult {
  return runCommand(service, { service: service.name, method, entityKey, sequence, state, payload, metadata });
}

function runCommand(service: ServiceRuntime, call: CommandCall): CommandResult {
  const observer = service.observer;
  if (!observer) {
    // An instance that threw is discarded, never reused (as pool.run does).
    const guest = service.pool.acquire();
    let result: CommandResult;
    try {
      result = guest.command(call);
    } catch (err) {
      service.pool.discard(guest);
      throw err;
    }
    service.pool.release(guest);
    return result;
  }
  const start = performance.now();
  let fuelUsed: number | undefined;
  try {
    return service.pool.run((guest) => {
      try {
        return guest.command(call);
      } finally {
        fuelUsed = guest.fuelUsed;
      }
    });
  } finally {
    // A trapped call is timed too: it is the one that burnt its CPU budget.
    observer.guestCall(service.name, (performance.now() - start) / 1000, fuelUsed);
  }
}

/** Where a keyed command ran, for the log line of a trap. */
export function commandContext(
  entity: { readonly service: ServiceRuntime; readonly key: string },
  envelope: Pick<Envelope<{ readonly method: string }, unknown>, "command" | "context">,
): GuestCallContext {
  const { service } = entity;
  return { module: service.moduleName, service: service.name, method: envelope.command.method, entityKey: entity.key, requestId: envelope.context?.requestId };
}
