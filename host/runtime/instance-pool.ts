// A small pool of instances per loaded module. Guest calls are synchronous, so one
// instance serves a whole process; the pool exists so that a trapped instance is
// thrown away and a fresh one (microseconds from the compiled module) takes its place.
import type { CommandCall, CommandResult, ReplayCall, ReplayResult } from "../abi/abi-codec.js";

/** What the entity layer calls on an instance: a core module's GuestInstance, or a component's ComponentInstance. */
export interface EntityInstance {
  command(call: CommandCall): CommandResult;
  replay(call: ReplayCall): ReplayResult;
  /** Fuel the last call used; undefined when the instance has no fuel counter. */
  readonly fuelUsed: number | undefined;
  /** An instance that should not serve again (a component whose memory grew too much); the pool drops it on release. */
  readonly retired?: boolean;
  /** Frees what the instance holds (a GuestInstance's memory goes back to guestMemories); it never runs again. */
  dispose?(): void;
}

export class InstancePool {
  /** Makes a fresh instance (compiling the module on first use for a lazily loaded one). */
  readonly #create: () => EntityInstance;
  readonly #idle: EntityInstance[] = [];
  #maxIdle: number;
  #created = 0;

  constructor(create: () => EntityInstance, maxIdle = 2) {
    this.#create = create;
    this.#maxIdle = maxIdle;
  }

  /** Instances created so far (a measure of how often traps replaced one). */
  get created(): number {
    return this.#created;
  }

  acquire(): EntityInstance {
    const instance = this.#idle.pop();
    if (instance) return instance;
    this.#created++;
    return this.#create();
  }

  /** Returns a healthy instance for reuse. */
  release(instance: EntityInstance): void {
    if (this.#idle.length < this.#maxIdle && instance.retired !== true) this.#idle.push(instance);
    else instance.dispose?.();
  }

  /**
   * The version stopped being served (another replaced it, or it was undeployed): its idle
   * instances are freed now, so their memories go back to the memory pool for the next
   * version's instances instead of waiting for the garbage collector; a call still in flight
   * on this version gets an instance as before, freed when it is released.
   */
  retire(): void {
    this.#maxIdle = 0;
    for (const instance of this.#idle.splice(0)) instance.dispose?.();
  }

  /** Drops an instance that threw: it is never reused, and what it held is freed. */
  discard(instance: EntityInstance): void {
    instance.dispose?.();
  }

  /** Runs `call` on a pooled instance; an instance that threw is discarded, never reused. */
  run<T>(call: (instance: EntityInstance) => T): T {
    const instance = this.acquire();
    let result: T;
    try {
      result = call(instance);
    } catch (err) {
      this.discard(instance);
      throw err;
    }
    this.release(instance);
    return result;
  }
}
