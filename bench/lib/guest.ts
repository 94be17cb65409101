// A GuestInstance built the way the instance pool builds one. The constructor gained a
// limits argument (fuel per call, memory cap) while this suite was written; passing it
// to either version keeps the benchmark compiling and running on both.
import { GuestInstance, type GuestLogger } from "../../host/abi/guest-instance.js";

/** Generous limits: the benchmarks measure speed, not the limits. */
const LIMITS = { fuelPerCall: 1_000_000_000, maxMemoryPages: 1024 };

type GuestConstructor = new (module: WebAssembly.Module, log: GuestLogger, limits: typeof LIMITS) => GuestInstance;

const noLog: GuestLogger = () => undefined;

export function freshGuest(module: WebAssembly.Module): GuestInstance {
  return new (GuestInstance as unknown as GuestConstructor)(module, noLog, LIMITS);
}
