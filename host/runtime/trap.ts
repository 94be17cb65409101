// Tells why a guest call failed, so the host can answer RESOURCE_EXHAUSTED for a limit the
// caller hit ("fuel", "memory") and INTERNAL for a failure of the guest's code ("stack",
// "trap"). Call it on whatever the call threw, with the instance it ran in; the host then
// discards that instance either way.
import { KeystateError } from "../errors.js";
import { findFuelGlobal, findGrowGlobal, type InstanceExports } from "./fuel.js";
import { WASM_PAGE_BYTES } from "./guest-limits.js";

export type TrapKind = "fuel" | "memory" | "stack" | "trap";

const PAGE = 65536;

/**
 * - "fuel": the fuel global is at 0 or below. Only the injected check writes it and that
 *   check traps as soon as it reaches 0, so this is unambiguous.
 * - "stack": V8's RangeError "Maximum call stack size exceeded" (deep recursion that ran
 *   out of stack before it ran out of fuel).
 * - "memory": a RangeError from growing or allocating a memory (host-side Memory.grow past
 *   the maximum, V8 out of address space); AssemblyScript's "Allocation too large" abort;
 *   or an `unreachable` trap while the exported memory is at `maxMemoryPages` -- what
 *   AssemblyScript's allocator does when memory.grow fails; or any Wasm trap after the
 *   call's last memory.grow asked for more than the headroom left (the `keystate_grow`
 *   global: a big allocation refused below the maximum, then the allocator's trap).
 *   A request that fit, followed later in the call by an unrelated trap, stays "trap".
 * - "trap": everything else (WebAssembly.RuntimeError, an abort thrown by a host import).
 *
 * `maxMemoryPages` is the memory's effective maximum: `report.memories[0].maxPages` from
 * instrumentModule (the cap, or the module's own lower maximum).
 */
export function classifyTrap(err: unknown, instance: InstanceExports, maxMemoryPages: number): TrapKind {
  const fuel = findFuelGlobal(instance);
  if (fuel && (fuel.value as number) <= 0) return "fuel";
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof RangeError) {
    if (/call stack/i.test(message)) return "stack";
    if (/memory|grow|allocat/i.test(message)) return "memory";
  }
  if (/Allocation too large/.test(message)) return "memory";
  if (err instanceof WebAssembly.RuntimeError && lastGrowRefused(instance, maxMemoryPages)) return "memory";
  if (err instanceof WebAssembly.RuntimeError && /unreachable/i.test(message) && memoryAtMax(instance, maxMemoryPages)) {
    return "memory";
  }
  return "trap";
}

/** The call's last memory.grow asked for more pages than the maximum leaves room for. */
function lastGrowRefused(instance: InstanceExports, maxMemoryPages: number): boolean {
  const requested = findGrowGlobal(instance)?.value as number | undefined;
  if (!requested) return false;
  const memory = Object.values(instance.exports).find((value) => value instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined;
  // Unsigned: memory.grow reads its operand as u32, so -1 asks for 4 Gi pages.
  return memory !== undefined && memory.buffer.byteLength / PAGE + (requested >>> 0) > maxMemoryPages;
}

function memoryAtMax(instance: InstanceExports, maxMemoryPages: number): boolean {
  for (const value of Object.values(instance.exports)) {
    if (value instanceof WebAssembly.Memory) return value.buffer.byteLength / PAGE >= maxMemoryPages;
  }
  return false; // a memory the host cannot see cannot be judged: report a plain trap
}

/**
 * The error a caller sees for a trap of `kind` (core modules and components alike):
 * RESOURCE_EXHAUSTED for a limit the call hit, INTERNAL for a failure of the guest's code.
 */
export function trapError(kind: TrapKind, err: unknown, fuel: number, maxMemoryPages: number): KeystateError {
  switch (kind) {
    case "fuel":
      return new KeystateError("RESOURCE_LIMIT", `the call used up its CPU budget (${fuel} fuel units)`, { cause: err });
    case "memory": {
      const mib = (maxMemoryPages * WASM_PAGE_BYTES) / (1024 * 1024);
      return new KeystateError("RESOURCE_LIMIT", `the call exceeded the module's memory limit (${mib} MiB)`, { cause: err });
    }
    case "stack":
      return new KeystateError("GUEST_TRAP", "the entity's code overflowed its stack", { cause: err });
    default:
      return new KeystateError("GUEST_TRAP", undefined, { cause: err });
  }
}
