// 1,000 modules in one process: what they cost in RSS and address space, how many Wasm
// memories stay live, and how far that is from V8's limit on live memories (~13k with
// the default trap handler: each memory reserves ~10 GiB of virtual address space).
// Decides with numbers whether `--disable-wasm-trap-handler` is needed.
//
//   node --import=tsx bench/many-modules.ts [--modules 1000]
//
// The parent runs the measurement twice, each in a fresh child process: with default V8
// flags and with --disable-wasm-trap-handler, then prints both side by side.
// The modules are the shopping cart, each copy renamed (package, services, module name and
// persistence id rewritten in place with equal-length names, in the descriptor and manifest
// and in the guest's own UTF-16 strings), so all 1,000 are distinct modules with their own
// services and their own compiled code, deployed through ModuleRegistry.deploy on a real
// embedded store and called through the Router.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { EntityManager } from "../host/entities/entity-manager.js";
import { Router } from "../host/entities/router.js";
import { EmbeddedStore } from "../host/journal/embedded-store.js";
import { setLogLevel } from "../host/log.js";
import { ModuleRegistry } from "../host/runtime/module-registry.js";
import { Recorder, type Latency } from "./lib/histogram.js";

const CART_WASM = fileURLToPath(new URL("../modules/shopping-cart/build/shopping-cart.wasm", import.meta.url));
const PACKAGE = "keystate.examples.shoppingcart"; // 30 characters
const MODULE = "shopping-cart"; // 13 characters
/** Extra memories the probe tries to create after the modules, to find the headroom left. */
const PROBE_LIMIT = 20_000;

interface Figures {
  readonly flags: string;
  readonly modules: number;
  readonly deployMs: Latency;
  readonly callUs: Latency;
  readonly rssMb: { before: number; deployed: number; called: number };
  readonly vmSizeGb: { before: number; deployed: number; called: number };
  readonly heapMb: number;
  /** Instances the pools created (one per module at deploy; more only after traps). */
  readonly instances: number;
  /** Memories that still fit after the modules (stopped at PROBE_LIMIT), and the error that stopped it. */
  readonly probe: { extra: number; stoppedBy: string };
}

// ------------------------------------------------------------------------- module copies

function replaceAll(bytes: Buffer, from: string, to: string): void {
  for (const encoding of ["utf8", "utf16le"] as const) {
    const a = Buffer.from(from, encoding);
    const b = Buffer.from(to, encoding);
    if (a.length !== b.length) throw new Error(`renaming must keep lengths: ${from} -> ${to}`);
    for (let at = bytes.indexOf(a); at >= 0; at = bytes.indexOf(a, at + b.length)) b.copy(bytes, at);
  }
}

/** Copy `i` of the cart: package keystate.examples.shoppingNNNN, module shopping-NNNN. */
function cartCopy(original: Buffer, i: number): { bytes: Buffer; service: string } {
  const n = String(i).padStart(4, "0");
  const bytes = Buffer.from(original);
  const pkg = `keystate.examples.shopping${n}`;
  replaceAll(bytes, PACKAGE, pkg);
  replaceAll(bytes, MODULE, `shopping-${n}`);
  return { bytes, service: `${pkg}.ShoppingCart` };
}

// ---------------------------------------------------------------------------- process figures

function vmSizeGb(): number {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = Number(/VmSize:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024 / 1024;
}

function settle(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const rssMb = (): number => process.memoryUsage().rss / 1024 / 1024;

function field(tag: number, value: string | number): number[] {
  if (typeof value === "number") return [(tag << 3) | 0, value];
  const bytes = Buffer.from(value, "utf8");
  return [(tag << 3) | 2, bytes.length, ...bytes];
}

// ---------------------------------------------------------------------------- one measurement

async function measure(modules: number): Promise<Figures> {
  setLogLevel("silent");
  const original = readFileSync(CART_WASM);
  const dir = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "keystate-many-"));
  const store = await EmbeddedStore.open(dir);
  const registry = new ModuleRegistry(store);
  const entities = new EntityManager(store, 3_600_000);
  const router = new Router(registry, entities);
  try {
    settle();
    const before = { rss: rssMb(), vm: vmSizeGb() };
    const deploys = new Recorder();
    const services: string[] = [];
    for (let i = 0; i < modules; i++) {
      const copy = cartCopy(original, i);
      const start = process.hrtime.bigint();
      await registry.deploy(copy.bytes);
      deploys.recordNs(Number(process.hrtime.bigint() - start));
      services.push(copy.service);
    }
    settle();
    const deployed = { rss: rssMb(), vm: vmSizeGb() };

    // One entity per module: an AddItem and a GetCart each, timed one by one.
    const calls = new Recorder();
    const add = Uint8Array.from([...field(1, "u"), ...field(2, "p"), ...field(3, "Pen"), ...field(4, 1)]);
    const get = Uint8Array.from(field(1, "u"));
    for (const service of services) {
      for (const [method, payload] of [["AddItem", add], ["GetCart", get]] as const) {
        const start = process.hrtime.bigint();
        await router.call(service, method, payload);
        calls.recordNs(Number(process.hrtime.bigint() - start));
      }
    }
    settle();
    const called = { rss: rssMb(), vm: vmSizeGb() };
    const instances = services.reduce((sum, name) => sum + (registry.service(name)?.pool.created ?? 0), 0);
    const heapMb = process.memoryUsage().heapUsed / 1024 / 1024;

    // How many more memories (capped like a guest's, 32 MiB) fit in this process now.
    const held: WebAssembly.Memory[] = [];
    let stoppedBy = `stopped at ${PROBE_LIMIT}`;
    try {
      while (held.length < PROBE_LIMIT) held.push(new WebAssembly.Memory({ initial: 1, maximum: 512 }));
    } catch (err) {
      stoppedBy = `${(err as Error).name}: ${(err as Error).message}`;
    }
    const extra = held.length;
    held.length = 0;

    return {
      flags: process.execArgv.filter((a) => a.startsWith("--") && !a.startsWith("--import") && a !== "--expose-gc").join(" ") || "(default)",
      modules,
      deployMs: scale(deploys.summary(), 1 / 1000),
      callUs: calls.summary(),
      rssMb: { before: before.rss, deployed: deployed.rss, called: called.rss },
      vmSizeGb: { before: before.vm, deployed: deployed.vm, called: called.vm },
      heapMb,
      instances,
      probe: { extra, stoppedBy },
    };
  } finally {
    entities.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function scale(l: Latency, k: number): Latency {
  return { n: l.n, p50: l.p50 * k, p90: l.p90 * k, p99: l.p99 * k, max: l.max * k, mean: l.mean * k };
}

// ---------------------------------------------------------------------------- report

function table(runs: Figures[]): string {
  const f1 = (x: number) => x.toFixed(1);
  const rows: Array<[string, (f: Figures) => string]> = [
    ["V8 flags", (f) => f.flags],
    ["modules deployed", (f) => String(f.modules)],
    ["deploy p50 / p99 (ms)", (f) => `${f1(f.deployMs.p50)} / ${f1(f.deployMs.p99)}`],
    ["call p50 / p99 (us), AddItem+GetCart", (f) => `${f1(f.callUs.p50)} / ${f1(f.callUs.p99)}`],
    ["RSS before -> deployed -> called (MB)", (f) => `${f1(f.rssMb.before)} -> ${f1(f.rssMb.deployed)} -> ${f1(f.rssMb.called)}`],
    ["RSS per module (KB)", (f) => f1(((f.rssMb.called - f.rssMb.before) * 1024) / f.modules)],
    ["VmSize before -> deployed -> called (GiB)", (f) => `${f1(f.vmSizeGb.before)} -> ${f1(f.vmSizeGb.deployed)} -> ${f1(f.vmSizeGb.called)}`],
    ["VmSize per module (GiB)", (f) => ((f.vmSizeGb.called - f.vmSizeGb.before) / f.modules).toFixed(2)],
    ["JS heap used (MB)", (f) => f1(f.heapMb)],
    ["instances created (live: one per module)", (f) => String(f.instances)],
    ["extra 32 MiB memories that still fit", (f) => `${f.probe.extra}${f.probe.extra < PROBE_LIMIT ? ` (${f.probe.stoppedBy.slice(0, 60)})` : "+"}`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, cell]) => `${label.padEnd(width)} | ${runs.map((run) => cell(run).padEnd(34)).join(" | ")}`).join("\n");
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const modules = Number(argument("modules") ?? 1000);
if (process.argv.includes("--child")) {
  process.stdout.write(JSON.stringify(await measure(modules)) + "\n");
} else {
  const runs: Figures[] = [];
  for (const flags of [[], ["--disable-wasm-trap-handler"]]) {
    console.error(`measuring ${modules} modules with ${flags.join(" ") || "default flags"} ...`);
    const child = spawnSync(process.execPath, [...flags, "--expose-gc", "--import=tsx", fileURLToPath(import.meta.url), "--child", "--modules", String(modules)], {
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
    });
    if (child.status !== 0) throw new Error(`the measuring process failed (${child.status ?? child.signal}):\n${child.stderr}`);
    runs.push(JSON.parse(child.stdout.trim().split("\n").pop()!) as Figures);
  }
  console.log(table(runs));
}
