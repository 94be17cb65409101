// One instance of a guest module and the linear-memory calling convention (ABI.md):
// the host asks the guest for an input buffer, copies the call message in, invokes the
// export, and copies the result out: from where the export's return value says it is
// (ABI version 3), or as the module hands it to the `keystate.output` import (1 and 2).
import { KeystateError } from "../errors.js";
import {
  decodeCommandResult,
  decodeCommandResultIn,
  copyInto,
  decodeReplayResult,
  encodeCommandCallInto,
  encodeReplayCall,
  type EncodeTarget,
  type CommandCall,
  type CommandResult,
  type ReplayCall,
  type ReplayResult,
} from "./abi-codec.js";
import { describeAbort, readAssemblyScriptString, recordedAbort } from "./guest-strings.js";
import { findFuelGlobal, findGrowGlobal } from "../runtime/fuel.js";
import { classifyTrap, trapError } from "../runtime/trap.js";
import { replayFuel } from "../runtime/guest-limits.js";
import { HOST_MEMORY_IMPORT } from "../runtime/memory-cap.js";
import { guestMemories } from "../runtime/memory-pool.js";

/** What one instance runs under: the per-call fuel budget and its memory's effective maximum. */
export interface InstanceLimits {
  readonly fuelPerCall: number;
  readonly maxMemoryPages: number;
  /**
   * The initial size in pages of the memory the module imports from the host (instrumented
   * with `importMemory`); undefined for a module that defines its own memory.
   */
  readonly importedMemoryPages?: number;
}

export interface GuestExports {
  readonly memory: WebAssembly.Memory;
  ks_input(length: number): number;
  /** The address of the result's (pointer, length), or nothing for a module that calls `keystate.output`. */
  ks_command(length: number): number | undefined;
  ks_replay(length: number): number | undefined;
  /** After a trap: the address of the abort's (message, file, line, column), 0 when it was no abort (ABI version 3). */
  ks_abort?(): number;
}

export const REQUIRED_EXPORTS = ["memory", "ks_input", "ks_command", "ks_replay"] as const;

/** Events per ks_replay call (see GuestInstance.replay). */
export const REPLAY_CHUNK = 256;

export type GuestLogger = (level: number, message: string) => void;

/** Why a guest call aborted: thrown by the `env.abort` import, or made from the module's abort record after the trap. */
export class GuestAbort extends Error {
  override readonly name = "GuestAbort";
}

/** The view before the first access and after dispose: empty, so the next access makes one. */
const NO_VIEW = Buffer.alloc(0);

export class GuestInstance implements EncodeTarget {
  readonly #exports: GuestExports;
  readonly #instance: WebAssembly.Instance;
  readonly #limits: InstanceLimits;
  /** The injected fuel counter; undefined for a module instrumented without metering. */
  readonly #fuel: WebAssembly.Global | undefined;
  /** The page count of the guest's last memory.grow (see classifyTrap); zeroed before each call. */
  readonly #grow: WebAssembly.Global | undefined;
  #output: Uint8Array | undefined;
  /** The fuel the last call started with (see fuelUsed). */
  #lastFuel = 0;
  /**
   * A view of all of guest memory, kept across calls; memory.grow detaches the old
   * ArrayBuffer (its length drops to 0), and the next access makes a new view.
   */
  #memory: Buffer = NO_VIEW;
  /**
   * The same memory as a plain Uint8Array, made with #memory: results are read and copied
   * through it, since a Buffer's slice() goes through Buffer's species constructor.
   */
  #bytes: Uint8Array = NO_VIEW;
  /** Where the last call's returned result lies in #bytes (set by #locateResult). */
  #resultStart = 0;
  #resultEnd = 0;
  /** The memory the host provided (from guestMemories), until dispose() gives it back. */
  #hostMemory: WebAssembly.Memory | undefined;
  #disposed = false;

  constructor(module: WebAssembly.Module, log: GuestLogger, limits: InstanceLimits) {
    this.#limits = limits;
    const hostMemory = limits.importedMemoryPages === undefined ? undefined : guestMemories.acquire(limits.importedMemoryPages, limits.maxMemoryPages);
    const imports = {
      keystate: {
        output: (ptr: number, length: number) => {
          // Copy out: the instance is reused for the next call as soon as this one returns.
          const copy = new Uint8Array(length);
          copy.set(new Uint8Array(this.#checked(ptr, length).buffer, ptr, length));
          this.#output = copy;
        },
        log: (level: number, ptr: number, length: number) => {
          log(level, this.#checked(ptr, length).toString("utf8", ptr, ptr + length));
        },
      },
      env: {
        abort: (messagePtr: number, filePtr: number, line: number, column: number) => {
          // Inside the start function the instance does not exist yet; a memory it defines
          // neither (one the host provides does).
          const starting = (this.#exports as GuestExports | undefined) === undefined;
          const memory = hostMemory ?? (this.#exports as GuestExports | undefined)?.memory;
          if (starting) {
            const message = memory && readAssemblyScriptString(memory, messagePtr);
            throw new GuestAbort(`abort() in the module's start function${message ? `: ${describeAbort(memory, messagePtr, filePtr, line, column)}` : ` (line ${line}, column ${column})`}`);
          }
          throw new GuestAbort(describeAbort(memory, messagePtr, filePtr, line, column));
        },
      },
    };
    if (hostMemory) (imports.keystate as Record<string, unknown>)[HOST_MEMORY_IMPORT.name] = hostMemory;
    // The start function runs here on the fuel the instrumenter gave the global initially.
    try {
      this.#instance = new WebAssembly.Instance(module, imports);
    } catch (err) {
      if (hostMemory) guestMemories.release(hostMemory, limits.maxMemoryPages);
      throw err;
    }
    this.#hostMemory = hostMemory;
    this.#exports = this.#instance.exports as unknown as GuestExports;
    this.#fuel = findFuelGlobal(this.#instance);
    this.#grow = findGrowGlobal(this.#instance);
  }

  /** Fuel the last call used (its budget less what is left); undefined for a module without the fuel counter. */
  get fuelUsed(): number | undefined {
    return this.#fuel === undefined ? undefined : this.#lastFuel - Math.max(0, this.#fuel.value as number);
  }

  /** The instance's exports, for fuel and memory inspection. */
  get exports(): GuestExports {
    return this.#exports;
  }

  command(call: CommandCall): CommandResult {
    return this.#command(() => this.#exports.ks_command(encodeCommandCallInto(call, this)));
  }

  /**
   * Runs a CommandCall encoded by the caller. The ABI conformance tests use it for layouts
   * the host's own encoder never makes (fields out of order, long names, malformed input),
   * which a guest SDK must still read as protobuf.
   */
  commandEncoded(input: Uint8Array): CommandResult {
    return this.#command(() => this.#exports.ks_command(copyInto(input, this)));
  }

  /**
   * Folds the events into the state, REPLAY_CHUNK events per guest call with the state
   * threaded from call to call. The guest collects garbage between calls only (the minimal
   * runtime), so one call for a whole long journal would hold all of its garbage at once and
   * could hit the memory cap that a chunked replay stays far below.
   */
  replay(call: ReplayCall): ReplayResult {
    let state = call.state;
    for (let from = 0; ; from += REPLAY_CHUNK) {
      const events = call.events.length <= REPLAY_CHUNK ? call.events : call.events.slice(from, from + REPLAY_CHUNK);
      const fuel = replayFuel(this.#limits.fuelPerCall, events.length);
      const chunk: ReplayCall = { service: call.service, state, events };
      const result = decodeReplayResult(this.#invoke(fuel, () => this.#exports.ks_replay(copyInto(encodeReplayCall(chunk), this))));
      if (result.failure || from + REPLAY_CHUNK >= call.events.length) return result;
      state = result.state;
    }
  }

  /** EncodeTarget: the guest's input buffer for the next call (ks_input may grow memory). */
  reserve(size: number): number {
    const ptr = this.#exports.ks_input(size);
    this.#checked(ptr, size);
    return ptr;
  }

  /** EncodeTarget: all of guest memory; valid after reserve(). */
  get buffer(): Buffer {
    return this.#memory;
  }

  /**
   * Ends the instance: it never runs again, and the memory the host gave it goes back to the
   * pool, zeroed, for the next instance. Only the owner that will drop it may call this.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#memory = NO_VIEW;
    this.#bytes = NO_VIEW;
    const memory = this.#hostMemory;
    this.#hostMemory = undefined;
    if (memory) guestMemories.release(memory, this.#limits.maxMemoryPages);
  }

  /**
   * One ks_command (encoding its input is part of it: ks_input can trap too), its result
   * decoded. A result the module returns (ABI version 3) is read where it lies in guest
   * memory, through no view of its own: decodeCommandResultIn copies every field it keeps, and
   * the instance does not run again before it returns.
   */
  #command(run: () => number | undefined): CommandResult {
    const copied = this.#call(this.#limits.fuelPerCall, run);
    return copied ? decodeCommandResult(copied) : decodeCommandResultIn(this.#bytes, this.#resultStart, this.#resultEnd);
  }

  /** Runs one guest call and returns a copy of its result's bytes. */
  #invoke(fuel: number, run: () => number | undefined): Uint8Array {
    return this.#call(fuel, run) ?? this.#bytes.slice(this.#resultStart, this.#resultEnd);
  }

  /**
   * Runs `run` on a fresh budget of `fuel`. Returns the copy a module passed to
   * `keystate.output` (ABI versions 1 and 2), or undefined when the module returned its
   * result's record (ABI version 3), whose range is then in #resultStart and #resultEnd.
   */
  #call(fuel: number, run: () => number | undefined): Uint8Array | undefined {
    // A disposed instance's memory may already belong to another instance.
    if (this.#disposed) throw new KeystateError("GUEST_TRAP", "a disposed guest instance was called (a host bug: the instance pool reused it)");
    if (this.#fuel) this.#fuel.value = fuel;
    this.#lastFuel = fuel;
    if (this.#grow) this.#grow.value = 0;
    this.#output = undefined;
    let resultAt: number | undefined;
    try {
      resultAt = run();
      // A record out of bounds fails the call like a bad buffer passed to `keystate.output`.
      if (this.#output === undefined && resultAt) this.#locateResult(resultAt);
    } catch (err) {
      throw this.#translateTrap(err, fuel);
    }
    if (this.#output) return this.#output;
    if (!resultAt) throw new KeystateError("GUEST_TRAP", "the guest returned without producing a result");
    return undefined;
  }

  /**
   * Reads the result's (pointer, length) record at `at` (ABI version 3) into #resultStart and
   * #resultEnd, both checked against guest memory (a GuestAbort when out of bounds).
   */
  #locateResult(at: number): void {
    const memory = this.#checked(at, 8);
    const ptr = memory.readUInt32LE(at);
    const length = memory.readUInt32LE(at + 4);
    this.#checked(ptr, length);
    this.#resultStart = ptr;
    this.#resultEnd = ptr + length;
  }

  /** Why the call stopped, as the error the caller sees (the instance is discarded by the pool). */
  #translateTrap(err: unknown, fuel: number): unknown {
    if (err instanceof KeystateError) return err;
    const cause = err instanceof WebAssembly.RuntimeError ? (this.#abortOfTrap() ?? err) : err;
    return trapError(classifyTrap(cause, this.#instance, this.#limits.maxMemoryPages), cause, fuel, this.#limits.maxMemoryPages);
  }

  /**
   * The abort a trapped call recorded (ABI version 3: the module's abort() writes its record
   * and traps instead of calling `env.abort`); undefined when it recorded none, or when the
   * call ran out of fuel (reading the record is a guest call, and needs fuel of its own).
   */
  #abortOfTrap(): GuestAbort | undefined {
    if (this.#fuel !== undefined && (this.#fuel.value as number) <= 0) return undefined;
    const aborted = recordedAbort(this.#exports.ks_abort, this.#exports.memory);
    return aborted === undefined ? undefined : new GuestAbort(aborted);
  }

  /** The view of guest memory, after checking that the guest's buffer lies inside it. */
  #checked(ptr: number, length: number): Buffer {
    let memory = this.#memory;
    if (memory.byteLength === 0) {
      memory = this.#memory = Buffer.from(this.#exports.memory.buffer);
      this.#bytes = new Uint8Array(memory.buffer);
    }
    if (ptr < 0 || length < 0 || ptr + length > memory.byteLength) {
      throw new GuestAbort(`the guest passed an out-of-bounds buffer (${ptr}+${length})`);
    }
    return memory;
  }
}
