// The resource limits every guest call runs under, and their defaults. Memory is capped
// at deploy time (the instrumenter sets every memory's maximum); fuel is set per call.
export interface GuestLimits {
  /** Every guest memory's maximum, in 64 KiB pages. */
  readonly maxMemoryPages: number;
  /** Fuel units (function entries + loop iterations) a command may use; a manifest may set its own. */
  readonly fuelPerCall: number;
}

export const WASM_PAGE_BYTES = 65536;

/** 32 MiB of guest memory: state in, state out keeps instances small. */
export const DEFAULT_MAX_MEMORY_MB = 32;
/** About 10–35 ms of CPU in tight code: far above any sane handler, far below a stuck node. */
export const DEFAULT_FUEL_PER_CALL = 10_000_000;

export const DEFAULT_GUEST_LIMITS: GuestLimits = {
  maxMemoryPages: (DEFAULT_MAX_MEMORY_MB * 1024 * 1024) / WASM_PAGE_BYTES,
  fuelPerCall: DEFAULT_FUEL_PER_CALL,
};

/** A replay folds many events in one call; its budget grows with the batch. */
export function replayFuel(fuelPerCall: number, events: number): number {
  return Math.min(0x7fffffff, fuelPerCall * (1 + Math.ceil(events / 100)));
}
