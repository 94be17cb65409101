// A GuestInstance built the way the instance pool builds one: from a compiled module and its
// instance limits (which say whether the host provides the memory), with a generous fuel
// budget, since the benchmarks measure speed, not the limits.
import { GuestInstance, type GuestLogger, type InstanceLimits } from "../../host/abi/guest-instance.js";

const noLog: GuestLogger = () => undefined;

export function freshGuest(loaded: { readonly compiled: WebAssembly.Module; readonly limits: InstanceLimits }): GuestInstance {
  return new GuestInstance(loaded.compiled, noLog, { ...loaded.limits, fuelPerCall: 1_000_000_000 });
}
