// A GuestInstance of a built module file, for tests that call a guest directly (no node).
import { readFileSync } from "node:fs";
import { GuestInstance } from "../../host/abi/guest-instance.js";
import { DEFAULT_GUEST_LIMITS, type GuestLimits } from "../../host/runtime/guest-limits.js";
import { compileModule } from "../../host/runtime/loaded-module.js";

export async function guestFromFile(wasmPath: string, limits: GuestLimits = DEFAULT_GUEST_LIMITS): Promise<GuestInstance> {
  const loaded = await compileModule(readFileSync(wasmPath), 0, limits);
  return new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
}
