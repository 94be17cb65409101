// Runs a stateless action: no key, no mailbox, no state, nothing persisted. Guest calls
// are synchronous, so each one simply takes an instance from the module's pool.
import type { EntityCommand } from "./event-sourced.js";
import { guestCommand } from "./guest-command.js";
import { failureToError, trapToError } from "./guest-errors.js";
import type { ServiceRuntime } from "./service-runtime.js";

export function runAction(service: ServiceRuntime, command: EntityCommand, requestId?: string): Uint8Array {
  let result;
  try {
    result = guestCommand(service, { method: command.method, entityKey: "", sequence: 0, state: undefined, payload: command.payload, metadata: command.metadata });
  } catch (err) {
    throw trapToError(err, { module: service.moduleName, service: service.name, method: command.method, requestId });
  }
  if (result.failure) throw failureToError(result.failure);
  command.effects?.accept(result);
  return result.reply;
}
