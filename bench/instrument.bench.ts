// Cost of deploy-time instrumentation, and of fuel metering per call, on the AssemblyScript
// metering fixture (test/fixtures/metering/handler.ts, compiled -O3 on the incremental runtime).
//   node --import=tsx --import=./test/loader/register.mjs bench/instrument.bench.ts   (RUNS=... to change the sample count;
//   the second --import loads binaryen as it is: through tsx its import alone takes ~18 s)
// Prints markdown tables. Baselines are measured in the same run: the uninstrumented module
// for calls, and binaryen's read+write round trip (the floor of any binaryen-based pass) for
// instrumentation.
import binaryen from "binaryen";
import { fileURLToPath } from "node:url";
import { compileAssemblyScript } from "../host/build/asc-compile.js";
import { MAX_FUEL, findFuelGlobal, setFuel } from "../host/runtime/fuel.js";
import { instrumentModule, type InstrumentOptions } from "../host/runtime/instrument.js";

const RUNS = Number(process.env["RUNS"] ?? 2000);
const OPTIONS: InstrumentOptions = { maxMemoryPages: 256, meterFuel: true };

interface Stats { p50: number; p99: number }

function stats(samplesNs: number[]): Stats {
  const sorted = [...samplesNs].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Runs `fn` `runs` times after a warm-up and returns per-run nanoseconds. */
function sample(runs: number, fn: (i: number) => void): number[] {
  for (let i = 0; i < Math.min(200, runs); i++) fn(i);
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn(i);
    out.push(Number(process.hrtime.bigint() - start));
  }
  return out;
}

const ms = (ns: number): string => (ns / 1e6).toFixed(3);
const us = (ns: number): string => (ns / 1e3).toFixed(2);

/**
 * The module with a trailing custom section holding `i`: V8 caches compiled modules by their
 * bytes, so a deploy of new bytes must not hit that cache. Instrumentation copies it as is.
 */
function unique(bytes: Uint8Array, i: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes.length + 9);
  out.set(bytes);
  out.set([0, 7, 2, 0x6b, 0x73, i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, 0], bytes.length);
  return out;
}

function deployTable(bytes: Uint8Array): void {
  const validate = sample(RUNS, (i) => { WebAssembly.validate(unique(bytes, i)); });
  const instrument = sample(RUNS, (i) => { instrumentModule(unique(bytes, i), OPTIONS); });
  const compilePlain = sample(RUNS, (i) => { new WebAssembly.Module(unique(bytes, 1e6 + i)); });
  const compileMetered = sample(RUNS, (i) => { new WebAssembly.Module(instrumentModule(unique(bytes, 2e6 + i), OPTIONS).bytes); });
  const deploy = sample(RUNS, (i) => {
    const upload = unique(bytes, 3e6 + i);
    if (!WebAssembly.validate(upload)) throw new Error("invalid");
    new WebAssembly.Module(instrumentModule(upload, OPTIONS).bytes);
  });
  const binaryenRuns = Math.max(20, Math.floor(RUNS / 20));
  const roundTrip = sample(binaryenRuns, () => {
    const m = binaryen.readBinary(bytes);
    m.emitBinary();
    m.dispose();
  });
  const logExecution = sample(binaryenRuns, () => {
    const m = binaryen.readBinary(bytes);
    m.runPasses(["log-execution"]);
    m.emitBinary();
    m.dispose();
  });
  const { report } = instrumentModule(bytes, OPTIONS);
  const phases = { parseMs: [] as number[], memoryMs: [] as number[], fuelMs: [] as number[], emitMs: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    const r = instrumentModule(bytes, OPTIONS).report.phases;
    for (const key of Object.keys(phases) as (keyof typeof phases)[]) phases[key].push(r[key] * 1e6);
  }

  console.log(`\n### Deploy of a ${(bytes.length / 1024).toFixed(1)} KB module (${report.functions} functions, ${report.fuelSites} fuel checks, ` +
    `+${report.bytesOut - report.bytesIn} B), ${RUNS} runs, unique bytes each run\n`);
  console.log("| step | p50 ms | p99 ms |\n|---|---:|---:|");
  const row = (name: string, samples: number[]): void => {
    const s = stats(samples);
    console.log(`| ${name} | ${ms(s.p50)} | ${ms(s.p99)} |`);
  };
  row("WebAssembly.validate", validate);
  row("**instrumentModule** (memory cap + fuel)", instrument);
  for (const [key, samples] of Object.entries(phases)) row(`&nbsp;&nbsp;phase ${key.replace("Ms", "")}`, samples);
  row("new WebAssembly.Module, uninstrumented", compilePlain);
  row("instrumentModule + new WebAssembly.Module", compileMetered);
  row("**deploy: validate + instrument + compile**", deploy);
  row(`baseline: binaryen readBinary + emitBinary (${binaryenRuns} runs)`, roundTrip);
  row(`baseline: binaryen readBinary + log-execution + emitBinary (${binaryenRuns} runs)`, logExecution);
}

interface HandlerExports {
  memory: WebAssembly.Memory;
  inputBuffer(len: number): number;
  handle(len: number): number;
  callHeavy(n: number): number;
  loopHeavy(n: number): number;
}

function instance(bytes: Uint8Array<ArrayBuffer>): { instance: WebAssembly.Instance; exports: HandlerExports } {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { abort: () => { throw new Error("abort"); } } });
  return { instance: inst, exports: inst.exports as unknown as HandlerExports };
}

function callsTable(bytes: Uint8Array<ArrayBuffer>): void {
  const plain = instance(bytes);
  const metered = instance(instrumentModule(bytes, OPTIONS).bytes);
  // The host looks the fuel global up once per instance and writes its value before each call.
  const fuel = findFuelGlobal(metered.instance)!;
  const account = [...new TextEncoder().encode("account-42")];
  const command = Uint8Array.from([0x0a, account.length, ...account, 0x10, 0x96, 0x01, 0x1a, 4, 0x6e, 0x6f, 0x74, 0x65,
    0x22, 5, 0x61, 0x2d, 0x62, 0x2d, 0x63]);
  const handle = (e: HandlerExports): void => {
    const ptr = e.inputBuffer(command.length);
    new Uint8Array(e.memory.buffer, ptr, command.length).set(command);
    if (e.handle(command.length) <= 0) throw new Error("handle failed");
  };
  const cases: Array<[string, (e: HandlerExports) => void]> = [
    ["handle: decode a command, update a map, encode a reply", handle],
    ["callHeavy(15): 1973 calls of recursive fib", (e) => e.callHeavy(15)],
    ["loopHeavy(1000): 1000 iterations of a tight loop", (e) => e.loopHeavy(1000)],
    ["callHeavy(1): a tiny call", (e) => e.callHeavy(1)],
  ];
  console.log(`\n### Per call, uninstrumented vs fuel-metered (fuel global set before each metered call), ${RUNS * 5} calls each\n`);
  console.log("| handler | plain p50 us | metered p50 us | ratio p50 | plain p99 us | metered p99 us |\n|---|---:|---:|---:|---:|---:|");
  for (const [name, run] of cases) {
    // Interleaved call by call, so drift (tiering, GC, other load on the box) hits both alike.
    const plainNs: number[] = [];
    const meteredNs: number[] = [];
    const calls = RUNS * 5;
    for (let i = 0; i < calls + 500; i++) {
      const t0 = process.hrtime.bigint();
      run(plain.exports);
      const t1 = process.hrtime.bigint();
      fuel.value = MAX_FUEL;
      run(metered.exports);
      const t2 = process.hrtime.bigint();
      if (i < 500) continue; // warm-up
      plainNs.push(Number(t1 - t0));
      meteredNs.push(Number(t2 - t1));
    }
    const p = stats(plainNs);
    const m = stats(meteredNs);
    console.log(`| ${name} | ${us(p.p50)} | ${us(m.p50)} | x${(m.p50 / p.p50).toFixed(2)} | ${us(p.p99)} | ${us(m.p99)} |`);
  }
  // The checked helper (validates the budget, finds the export) for comparison; batched
  // because one write is below the timer's resolution.
  const perWrite = (write: () => void): string => {
    const s = stats(sample(RUNS, () => { for (let i = 0; i < 100; i++) write(); }));
    return (s.p50 / 100).toFixed(1);
  };
  console.log(`\nSetting the budget: \`fuel.value = n\` ${perWrite(() => { fuel.value = MAX_FUEL; })} ns, ` +
    `\`setFuel(instance, n)\` ${perWrite(() => setFuel(metered.instance, MAX_FUEL))} ns (p50).`);
}

const entry = fileURLToPath(new URL("../test/fixtures/metering/handler.ts", import.meta.url));
const bytes = new Uint8Array(await compileAssemblyScript(entry));
console.log(`## Instrumentation (Node ${process.version}, ${RUNS} runs per row)`);
deployTable(bytes);
callsTable(bytes);
