// Upload-path fuzzing: mutated variants of a real module (the shopping cart) go through
// ModuleRegistry.deploy on a real embedded store, and every variant that deploys is then
// called through the Router. Each variant must end one of two clean ways: refused with a
// KeystateError carrying a message, or deployed and then answered (a reply or a
// KeystateError) on every call. Anything else -- another exception type, an empty
// message, a call that never settles, a wrong reply from a variant whose code and API are
// untouched -- is a failure, reported with the iteration and seed that reproduce it.
//
//   node --import=tsx scripts/fuzz-modules.ts --iterations 100000 [--seed N] [--wasm file]
//
// The CI run (test/integration/module-fuzz.test.ts) calls fuzzModules() with 10,000.
// A guest call is synchronous: a variant whose loop escaped the fuel meter would hang the
// process rather than trip the call timeout, and the test runner's timeout reports it.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KeystateError } from "../host/errors.js";
import { EntityManager } from "../host/entities/entity-manager.js";
import { Router } from "../host/entities/router.js";
import { EmbeddedStore } from "../host/journal/embedded-store.js";
import { setLogLevel } from "../host/log.js";
import { ModuleRegistry } from "../host/runtime/module-registry.js";

export const CART_WASM = fileURLToPath(new URL("../modules/shopping-cart/build/shopping-cart.wasm", import.meta.url));
const CART = "keystate.examples.shoppingcart.ShoppingCart";

export interface FuzzOptions {
  readonly iterations: number;
  readonly seed: number;
  /** The module to mutate; default the built shopping cart. */
  readonly wasm?: Uint8Array;
  /** A call or deploy that has not settled after this long is a failure. */
  readonly timeoutMs?: number;
  readonly progress?: (done: number) => void;
}

export interface FuzzFailure {
  readonly iteration: number;
  readonly mutation: string;
  readonly detail: string;
}

export interface FuzzReport {
  readonly seed: number;
  readonly iterations: number;
  readonly elapsedMs: number;
  /** refused / served / served-exact (an untouched-code variant whose replies were checked byte for byte). */
  readonly outcomes: Record<string, number>;
  /** Milliseconds spent on the variants of each outcome. */
  readonly outcomeMs: Record<string, number>;
  /** How many variants each mutation made, and how many of those deployed. */
  readonly mutations: Record<string, { made: number; deployed: number }>;
  /** Refusal messages, cut at their first colon or number, with counts. */
  readonly refusals: Record<string, number>;
  /** Statuses that calls on deployed variants ended with (KeystateError codes), with counts. */
  readonly callErrors: Record<string, number>;
  readonly failures: FuzzFailure[];
}

// ---------------------------------------------------------------------------- PRNG

/** mulberry32: small, fast, seedable; the same seed gives the same variants. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------------ mutations

interface SectionSpan {
  readonly id: number;
  readonly name: string;
  /** Offset of the id byte. */
  readonly start: number;
  /** Offset of the contents (after the size, and for custom sections before the name). */
  readonly contents: number;
  readonly end: number;
}

/** The section table of a valid module (only the original is parsed, never a variant). */
function sectionSpans(bytes: Uint8Array): SectionSpan[] {
  const spans: SectionSpan[] = [];
  let p = 8;
  const leb = (): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  while (p < bytes.length) {
    const start = p;
    const id = bytes[p++]!;
    const size = leb();
    const contents = p;
    let name = "";
    if (id === 0) {
      const length = leb();
      name = Buffer.from(bytes.subarray(p, p + length)).toString("utf8");
    }
    spans.push({ id, name, start, contents, end: contents + size });
    p = contents + size;
  }
  return spans;
}

const SECTION_NAMES: Record<number, string> = { 1: "type", 2: "import", 3: "function", 5: "memory", 6: "global", 7: "export", 8: "start", 10: "code", 11: "data", 12: "datacount" };
const label = (s: SectionSpan): string => (s.id === 0 ? s.name : SECTION_NAMES[s.id] ?? `section${s.id}`);
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0b, 0x03, 0x0c, 0x10, 0x41, 0x40];

interface Variant {
  readonly bytes: Uint8Array;
  readonly mutation: string;
  /** True when only bytes no host or engine reads as code or API changed: replies must be exact. */
  readonly preservesBehaviour: boolean;
}

type Random = () => number;
const int = (rand: Random, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Random, xs: readonly T[]): T => xs[int(rand, xs.length)]!;

function flipIn(rand: Random, bytes: Uint8Array, from: number, to: number, count: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < count && to > from; i++) {
    const at = from + int(rand, to - from);
    out[at] = rand() < 0.5 ? out[at]! ^ (1 << int(rand, 8)) : pick(rand, INTERESTING);
  }
  return out;
}

function customSection(rand: Random): Uint8Array {
  const name = Buffer.from(`fuzz${int(rand, 1000)}`);
  const payload = Uint8Array.from({ length: int(rand, 64) }, () => int(rand, 256));
  return Buffer.concat([Uint8Array.from([0, name.length + 1 + payload.length, name.length]), name, payload]);
}

/** One variant of `original` (whose sections are `spans`), chosen and made with `rand`. */
export function mutate(original: Uint8Array, spans: readonly SectionSpan[], rand: Random): Variant {
  const whole = (mutation: string, bytes: Uint8Array, preservesBehaviour = false): Variant => ({ bytes, mutation, preservesBehaviour });
  const kind = int(rand, 11);
  const section = pick(rand, spans);
  let variant: Variant;
  switch (kind) {
    case 0: // random flips anywhere (header included)
      variant = whole("flip", flipIn(rand, original, 0, original.length, 1 + int(rand, 8)));
      break;
    case 1: // truncation
      variant = whole("truncate", original.subarray(0, int(rand, original.length)));
      break;
    case 2: { // random bytes inserted
      const at = int(rand, original.length + 1);
      const inserted = Uint8Array.from({ length: 1 + int(rand, 16) }, () => int(rand, 256));
      variant = whole("insert", Buffer.concat([original.subarray(0, at), inserted, original.subarray(at)]));
      break;
    }
    case 3: { // a range deleted
      const at = int(rand, original.length);
      variant = whole("delete", Buffer.concat([original.subarray(0, at), original.subarray(Math.min(original.length, at + 1 + int(rand, 64)))]));
      break;
    }
    case 4: case 5: case 6: { // flips inside one section's contents: code, customs, imports, exports weighted up
      const targets = spans.filter((s) => s.id === 10 || s.id === 0 || s.id === 2 || s.id === 7);
      const s = kind === 6 ? section : pick(rand, targets);
      variant = whole(`flip-${label(s)}`, flipIn(rand, original, s.contents, s.end, 1 + int(rand, 4)));
      break;
    }
    case 7: { // a section duplicated right after itself
      const copy = original.subarray(section.start, section.end);
      variant = whole(`duplicate-${label(section)}`, Buffer.concat([original.subarray(0, section.end), copy, original.subarray(section.end)]));
      break;
    }
    case 8: // a section dropped
      variant = whole(`drop-${label(section)}`, Buffer.concat([original.subarray(0, section.start), original.subarray(section.end)]));
      break;
    case 9: { // a one-byte immediate after a likely i32.const / local / call / br opcode in code changed: often still valid, behaves differently
      const code = spans.find((s) => s.id === 10)!;
      const out = original.slice();
      for (let n = 1 + int(rand, 3); n > 0; n--) {
        for (let tries = 0; tries < 64; tries++) {
          const at = code.contents + int(rand, code.end - code.contents - 1);
          if ([0x41, 0x20, 0x21, 0x22, 0x10, 0x0c, 0x0d].includes(out[at]!) && out[at + 1]! < 0x80) {
            out[at + 1] = int(rand, 0x80);
            break;
          }
        }
      }
      variant = whole("code-immediate", out);
      break;
    }
    default: { // an unknown custom section inserted between two sections: nothing may change
      const at = pick(rand, [...spans.map((s) => s.start), original.length]);
      variant = whole("insert-custom", Buffer.concat([original.subarray(0, at), customSection(rand), original.subarray(at)]), true);
    }
  }
  // Sometimes a second, blind flip on top, so mutations combine.
  if (rand() < 0.2 && variant.bytes.length > 0) {
    return whole(`${variant.mutation}+flip`, flipIn(rand, variant.bytes, 0, variant.bytes.length, 1));
  }
  return variant;
}

// --------------------------------------------------------------------------- calls

function field(tag: number, value: Uint8Array | number): number[] {
  if (typeof value === "number") return [(tag << 3) | 0, value];
  return [(tag << 3) | 2, value.length, ...value];
}

const text = (s: string): Uint8Array => Buffer.from(s, "utf8");
const addItem = (user: string): Uint8Array => Uint8Array.from([...field(1, text(user)), ...field(2, text("p1")), ...field(3, text("Pen")), ...field(4, 2)]);
const getCart = (user: string): Uint8Array => Uint8Array.from(field(1, text(user)));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Normalises a refusal message into a category: variable parts (offsets, names, sizes) cut. */
function category(message: string): string {
  return message.replace(/\d+/g, "N").replace(/"[^"]*"/g, '"…"').slice(0, 90);
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

// ---------------------------------------------------------------------------- runner

export async function fuzzModules(options: FuzzOptions): Promise<FuzzReport> {
  const original = options.wasm ?? new Uint8Array(await readFile(CART_WASM));
  const spans = sectionSpans(original);
  const timeoutMs = options.timeoutMs ?? 10_000;
  // On tmpfs when there is one: the store is real (LMDB, synced writes), the disk is not the subject.
  const dir = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "keystate-fuzz-"));
  const store = await EmbeddedStore.open(dir);
  const registry = new ModuleRegistry(store);
  // A long sweep interval: the runner passivates by hand after each deployed variant.
  const entities = new EntityManager(store, 3_600_000);
  const router = new Router(registry, entities);
  const report: FuzzReport = { seed: options.seed, iterations: options.iterations, elapsedMs: 0, outcomes: {}, outcomeMs: {}, mutations: {}, refusals: {}, callErrors: {}, failures: [] };
  const started = performance.now();
  try {
    // The replies of the unmutated module, for the variants that must answer exactly alike.
    const expected = await serve(registry, router, entities, original, "baseline", timeoutMs);
    if (!expected.replies) throw new Error(`the unmutated module does not serve: ${expected.failure ?? "refused"}`);
    const rand = prng(options.seed);
    for (let i = 0; i < options.iterations; i++) {
      const variant = mutate(original, spans, rand);
      const stats = (report.mutations[variant.mutation.replace(/\+flip$/, "")] ??= { made: 0, deployed: 0 });
      stats.made++;
      const t0 = performance.now();
      const result = await serve(registry, router, entities, variant.bytes, `v${i}`, timeoutMs);
      const outcome = result.failure ? "failure" : result.refusal !== undefined ? "refused" : "deployed";
      report.outcomeMs[outcome] = (report.outcomeMs[outcome] ?? 0) + performance.now() - t0;
      const fail = (detail: string) => report.failures.push({ iteration: i, mutation: variant.mutation, detail });
      if (result.failure) fail(result.failure);
      else if (result.refusal !== undefined) {
        bump(report.outcomes, "refused");
        bump(report.refusals, category(result.refusal));
      } else {
        stats.deployed++;
        for (const code of result.callErrors) bump(report.callErrors, code);
        if (variant.preservesBehaviour) {
          const same = result.replies!.length === expected.replies.length && result.replies!.every((r, k) => Buffer.compare(r, expected.replies![k]!) === 0);
          if (!same) fail("a variant with untouched code and API answered differently from the original");
          bump(report.outcomes, "served-exact");
        } else {
          bump(report.outcomes, "served");
        }
      }
      options.progress?.(i + 1);
    }
  } finally {
    entities.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  return { ...report, elapsedMs: performance.now() - started };
}

interface Served {
  /** Set when the variant was refused at deploy (its message). */
  refusal?: string;
  /** The replies, in call order (a call that failed cleanly has none). */
  replies?: Uint8Array[];
  callErrors: string[];
  /** Set when the variant broke the rules. */
  failure?: string;
}

/** Deploys `bytes`; when it deploys, adds an item twice and reads the cart, then undeploys it. */
async function serve(registry: ModuleRegistry, router: Router, entities: EntityManager, bytes: Uint8Array, user: string, timeoutMs: number): Promise<Served> {
  let name: string;
  try {
    name = (await withTimeout(registry.deploy(bytes), timeoutMs, "deploy")).name;
  } catch (err) {
    if (err instanceof KeystateError && err.message) return { refusal: err.message, callErrors: [] };
    return { callErrors: [], failure: `deploy threw ${describe(err)}` };
  }
  const served: Served = { replies: [], callErrors: [] };
  try {
    for (const [method, payload] of [["AddItem", addItem(user)], ["AddItem", addItem(user)], ["GetCart", getCart(user)]] as const) {
      try {
        served.replies!.push(await withTimeout(router.call(CART, method, payload), timeoutMs, `${method}`));
      } catch (err) {
        if (!(err instanceof KeystateError) || !err.message) return { ...served, failure: `${method} threw ${describe(err)}` };
        served.callErrors.push(err.code);
      }
    }
  } finally {
    // Drop the variant and the entities it made, so no instance outlives its iteration.
    await registry.undeploy(name).catch(() => undefined);
    entities.passivateIdle(Date.now() + 365 * 24 * 3600 * 1000);
  }
  return served;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.constructor.name}: ${err.message}\n${err.stack ?? ""}` : String(err);
}

// ------------------------------------------------------------------------------ CLI

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

export function formatReport(report: FuzzReport): string {
  const lines = [
    `seed ${report.seed}: ${report.iterations} variants in ${(report.elapsedMs / 1000).toFixed(1)} s (${(report.elapsedMs / report.iterations).toFixed(2)} ms each)`,
    `outcomes: ${JSON.stringify(report.outcomes)}; failures: ${report.failures.length}`,
    `time per outcome: ${Object.entries(report.outcomeMs).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(", ")}`,
    `calls on deployed variants that failed cleanly: ${JSON.stringify(report.callErrors)}`,
    "mutation                     made  deployed",
    ...Object.entries(report.mutations).sort().map(([m, s]) => `${m.padEnd(28)} ${String(s.made).padStart(5)} ${String(s.deployed).padStart(9)}`),
    "top refusals:",
    ...Object.entries(report.refusals).sort((a, b) => b[1] - a[1]).slice(0, 15).map(([m, n]) => `${String(n).padStart(6)}  ${m}`),
  ];
  for (const f of report.failures.slice(0, 10)) lines.push(`FAILURE at iteration ${f.iteration} (${f.mutation}): ${f.detail}`);
  return lines.join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const iterations = Number(argument("iterations") ?? 10_000);
  const seed = Number(argument("seed") ?? Math.floor(Math.random() * 2 ** 32));
  const wasmPath = argument("wasm");
  console.log(`fuzzing ${iterations} variants of ${wasmPath ?? CART_WASM} with seed ${seed} (rerun: --seed ${seed})`);
  const wasm = wasmPath ? new Uint8Array(await readFile(wasmPath)) : undefined;
  // Every deploy and every trapped call would log a line: keep the output to the report.
  setLogLevel(argument("log-level") ?? "silent");
  const report = await fuzzModules({
    iterations, seed, wasm,
    progress: (done) => { if (done % 5000 === 0) console.log(`  ${done} done`); },
  });
  console.log(formatReport(report));
  process.exitCode = report.failures.length === 0 ? 0 : 1;
}
