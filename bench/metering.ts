// The cost of CPU metering (the fuel counter injected at deploy) on the shopping-cart
// command path: the same cart module instrumented with and without `meterFuel`, driven
// through GuestInstance (ABI encode, guest call, decode) with AddItem and GetCart
// commands, interleaved block by block in one process so both see the same machine state.
//
//   node --import=tsx bench/metering.ts [--rounds 300] [--block 200]
//
// Prints per-call p50 and p99 for each, and metered/unmetered ratios (per-call
// percentiles, and the median over rounds of the per-round mean ratio, which is the
// figure least disturbed by other load on the machine).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GuestInstance } from "../host/abi/guest-instance.js";
import type { CommandCall } from "../host/abi/abi-codec.js";
import { DEFAULT_FUEL_PER_CALL, DEFAULT_GUEST_LIMITS } from "../host/runtime/guest-limits.js";
import { instrumentModule } from "../host/runtime/instrument.js";
import { Recorder, type Latency } from "./lib/histogram.js";

const CART_WASM = fileURLToPath(new URL("../modules/shopping-cart/build/shopping-cart.wasm", import.meta.url));
const SERVICE = "keystate.examples.shoppingcart.ShoppingCart";
const METHODS = ["AddItem", "GetCart"] as const;
type Method = (typeof METHODS)[number];

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

function field(tag: number, value: string | number): number[] {
  if (typeof value === "number") return [(tag << 3) | 0, value];
  const bytes = Buffer.from(value, "utf8");
  return [(tag << 3) | 2, bytes.length, ...bytes];
}

const PAYLOADS: Record<Method, Uint8Array> = {
  AddItem: Uint8Array.from([...field(1, "user-1"), ...field(2, "pen"), ...field(3, "A pen"), ...field(4, 1)]),
  GetCart: Uint8Array.from(field(1, "user-1")),
};

/** One cart instance, compiled from bytes instrumented as the registry does, with or without fuel. */
class Subject {
  readonly guest: GuestInstance;
  readonly recorders: Record<Method, Recorder> = { AddItem: new Recorder(), GetCart: new Recorder() };
  /** Mean ns per call of each round, per method. */
  readonly roundMeans: Record<Method, number[]> = { AddItem: [], GetCart: [] };
  #state: Uint8Array | undefined;
  #sequence = 0;

  constructor(readonly label: string, bytes: Uint8Array, meterFuel: boolean) {
    const { maxMemoryPages } = DEFAULT_GUEST_LIMITS;
    const { bytes: code, report } = instrumentModule(bytes, { maxMemoryPages, meterFuel, importMemory: true });
    const module = new WebAssembly.Module(code);
    this.guest = new GuestInstance(module, () => undefined, {
      fuelPerCall: DEFAULT_FUEL_PER_CALL,
      maxMemoryPages: report.memories[0]?.maxPages ?? maxMemoryPages,
      importedMemoryPages: report.memoryImported ? report.memories[0]!.minPages : undefined,
    });
  }

  /** Runs `count` commands of `method`, threading the state as the entity does; records each call if `record`. */
  run(method: Method, count: number, record: boolean): void {
    const call: CommandCall = { service: SERVICE, method, entityKey: "user-1", sequence: 0, state: undefined, payload: PAYLOADS[method] };
    const recorder = this.recorders[method];
    const roundStart = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      call.sequence = this.#sequence;
      call.state = this.#state;
      const start = process.hrtime.bigint();
      const result = this.guest.command(call);
      if (record) recorder.recordNs(Number(process.hrtime.bigint() - start));
      if (result.failure) throw new Error(`${this.label}: the cart refused ${method}: ${result.failure.message}`);
      // AddItem appends one event and returns the folded state; keep it small (one line, growing quantity).
      if (result.events.length > 0) this.#sequence += result.events.length;
      if (result.state.length > 0) this.#state = result.state;
    }
    if (record) this.roundMeans[method].push(Number(process.hrtime.bigint() - roundStart) / count);
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const rounds = argument("rounds", 300);
const block = argument("block", 200);
const bytes = readFileSync(CART_WASM);
const plain = new Subject("unmetered", bytes, false);
const metered = new Subject("metered", bytes, true);
const subjects = [plain, metered];

// Warm-up: both through every tier before anything is recorded.
for (let i = 0; i < 20; i++) for (const s of subjects) for (const m of METHODS) s.run(m, block, false);
for (let r = 0; r < rounds; r++) {
  // Alternate which goes first, so neither always runs right after a GC or the other's warm caches.
  const order = r % 2 === 0 ? subjects : [...subjects].reverse();
  for (const s of order) for (const m of METHODS) s.run(m, block, true);
}

const us = (x: number): string => x.toFixed(2);
const rows: string[] = [
  `cart command path through GuestInstance (ABI encode + guest call + decode), ${rounds} rounds x ${block} calls per method, interleaved`,
  "| method | unmetered p50 / p99 (us) | metered p50 / p99 (us) | ratio p50 | ratio p99 | ratio of round means (median) |",
  "|---|---|---|---|---|---|",
];
for (const m of METHODS) {
  const a: Latency = plain.recorders[m].summary();
  const b: Latency = metered.recorders[m].summary();
  const perRound = plain.roundMeans[m].map((x, i) => metered.roundMeans[m][i]! / x);
  rows.push(`| ${m} | ${us(a.p50)} / ${us(a.p99)} | ${us(b.p50)} / ${us(b.p99)} | x${(b.p50 / a.p50).toFixed(2)} | x${(b.p99 / a.p99).toFixed(2)} | x${median(perRound).toFixed(2)} |`);
}
console.log(rows.join("\n"));
