// A small pool of instances per loaded module. Guest calls are synchronous, so one
// instance serves a whole process; the pool exists so that a trapped instance is
// thrown away and a fresh one (microseconds from the compiled module) takes its place.
import { GuestInstance, type GuestLogger, type InstanceLimits } from "../abi/guest-instance.js";

export class InstancePool {
  /** The compiled module; a function for a module compiled on its first call (see describeArtifact). */
  readonly #module: () => WebAssembly.Module;
  readonly #log: GuestLogger;
  readonly #idle: GuestInstance[] = [];
  readonly #maxIdle: number;
  readonly #limits: InstanceLimits;
  #created = 0;

  constructor(module: () => WebAssembly.Module, log: GuestLogger, limits: InstanceLimits, maxIdle = 2) {
    this.#module = module;
    this.#limits = limits;
    this.#log = log;
    this.#maxIdle = maxIdle;
  }

  /** Instances created so far (a measure of how often traps replaced one). */
  get created(): number {
    return this.#created;
  }

  acquire(): GuestInstance {
    const instance = this.#idle.pop();
    if (instance) return instance;
    this.#created++;
    return new GuestInstance(this.#module(), this.#log, this.#limits);
  }

  /** Returns a healthy instance for reuse. */
  release(instance: GuestInstance): void {
    if (this.#idle.length < this.#maxIdle) this.#idle.push(instance);
  }

  /** Runs `call` on a pooled instance; an instance that threw is discarded, never reused. */
  run<T>(call: (instance: GuestInstance) => T): T {
    const instance = this.acquire();
    const result = call(instance);
    this.release(instance);
    return result;
  }
}
