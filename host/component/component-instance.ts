// One instance of a component entity: serves the calls a GuestInstance serves (command,
// replay, fuelUsed), through jco's glue instead of the linear-memory ABI. Every core instance
// the glue makes goes through `instantiateCore` here, so the host holds their fuel globals:
// before each call each one gets the call's budget (the engine's main module is the one that
// can burn it; jco's trampolines only pass calls through), and a trap is classified on the
// core instance that owns the memory, exactly as for a core module (host/runtime/trap.ts).
import { KeystateError } from "../errors.js";
import type { CommandCall, CommandResult, ReplayCall, ReplayResult } from "../abi/abi-codec.js";
import { REPLAY_CHUNK, type GuestLogger, type InstanceLimits } from "../abi/guest-instance.js";
import { findFuelGlobal } from "../runtime/fuel.js";
import { replayFuel, WASM_PAGE_BYTES } from "../runtime/guest-limits.js";
import { classifyTrap, trapError } from "../runtime/trap.js";
import { commandCallRecord, commandResultOf, replayCallRecord, replayResultOf } from "./abi-records.js";
import type { ComponentCode } from "./component-code.js";
import { HOST_INTERFACE } from "./component-interface.js";

interface EntityExports {
  handleCommand(call: unknown): unknown;
  replay(call: unknown): unknown;
}

/** Longest log line kept from a component (the rest is cut). */
const MAX_LOG_CHARS = 8192;

export class ComponentInstance {
  readonly #exports: EntityExports;
  readonly #limits: InstanceLimits;
  readonly #fuel: WebAssembly.Global[] = [];
  /** The core instance that owns the memory (the JavaScript engine): traps are judged on it. */
  #main: WebAssembly.Instance | undefined;
  #lastFuel = 0;
  /** Past this many bytes of memory the instance is retired after its call (see `retired`). */
  #retireAtBytes = Infinity;
  #retired = false;

  constructor(code: ComponentCode, log: GuestLogger, limits: InstanceLimits) {
    this.#limits = limits;
    const imports = {
      [HOST_INTERFACE]: {
        log: (level: number, message: string) => log(Math.min(level, 3), message.length > MAX_LOG_CHARS ? `${message.slice(0, MAX_LOG_CHARS)}…` : message),
      },
    };
    const getCoreModule = (name: string): WebAssembly.Module => {
      const module = code.modules.get(name);
      if (!module) throw new KeystateError("GUEST_TRAP", `the component's glue asked for an unknown core module ${name}`);
      return module;
    };
    const instantiateCore = (module: WebAssembly.Module, coreImports: WebAssembly.Imports): WebAssembly.Instance => {
      const instance = new WebAssembly.Instance(module, coreImports);
      const fuel = findFuelGlobal(instance);
      if (fuel) this.#fuel.push(fuel);
      if (Object.values(instance.exports).some((value) => value instanceof WebAssembly.Memory)) this.#main ??= instance;
      return instance;
    };
    this.#exports = code.instantiate(getCoreModule, imports, instantiateCore) as unknown as EntityExports;
    const initial = this.#memoryBytes();
    this.#retireAtBytes = initial + (limits.maxMemoryPages * WASM_PAGE_BYTES - initial) / 2;
  }

  /**
   * True once the instance's memory grew past half of its headroom: the pool then drops it and
   * makes a fresh one. The JavaScript engine keeps memory from call to call (measured with
   * componentize-js 0.23: ~2 KB per counter call plus the size of each call's arguments, never
   * given back), so without this an instance would hit the memory cap after some thousands of
   * calls. State in, state out: an instance holds nothing worth keeping.
   */
  get retired(): boolean {
    return this.#retired;
  }

  #memoryBytes(): number {
    const memory = this.#main && Object.values(this.#main.exports).find((value) => value instanceof WebAssembly.Memory);
    return memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0;
  }

  /** Fuel the last call used in the engine's module; undefined without a fuel counter. */
  get fuelUsed(): number | undefined {
    const fuel = this.#main && findFuelGlobal(this.#main);
    return fuel === undefined ? undefined : this.#lastFuel - Math.max(0, fuel.value as number);
  }

  command(call: CommandCall): CommandResult {
    return commandResultOf(this.#invoke(this.#limits.fuelPerCall, () => this.#exports.handleCommand(commandCallRecord(call))));
  }

  /** Folds the events in chunks of REPLAY_CHUNK, the state threaded from chunk to chunk (as GuestInstance.replay). */
  replay(call: ReplayCall): ReplayResult {
    let state = call.state;
    for (let from = 0; ; from += REPLAY_CHUNK) {
      const events = call.events.length <= REPLAY_CHUNK ? call.events : call.events.slice(from, from + REPLAY_CHUNK);
      const chunk: ReplayCall = { service: call.service, state, events };
      const result = replayResultOf(this.#invoke(replayFuel(this.#limits.fuelPerCall, events.length), () => this.#exports.replay(replayCallRecord(chunk))));
      if (result.failure || from + REPLAY_CHUNK >= call.events.length) return result;
      state = result.state;
    }
  }

  #invoke(fuel: number, run: () => unknown): unknown {
    for (const global of this.#fuel) global.value = fuel;
    this.#lastFuel = fuel;
    let result: unknown;
    try {
      result = run();
    } catch (err) {
      throw this.#translateTrap(err, fuel);
    }
    if (this.#memoryBytes() >= this.#retireAtBytes) this.#retired = true;
    return result;
  }

  /** Why the call stopped, as the error the caller sees (the pool discards this instance). */
  #translateTrap(err: unknown, fuel: number): unknown {
    if (err instanceof KeystateError) return err;
    const burnt = this.#fuel.some((global) => (global.value as number) <= 0);
    const kind = burnt ? "fuel" : this.#main ? classifyTrap(err, this.#main, this.#limits.maxMemoryPages) : "trap";
    return trapError(kind, err, fuel, this.#limits.maxMemoryPages);
  }
}
