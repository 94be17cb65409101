// Table caps (host/runtime/table-cap.ts): every defined table gets a maximum of at most
// MAX_TABLE_ENTRIES so table.grow past it returns -1 instead of allocating; a table starting
// above the cap, more than MAX_TABLES tables, or an imported table is refused at deploy.
// Fixtures are hand-assembled bytes so each test controls the exact limits encoding.
import test from "ava";
import { readdirSync } from "node:fs";
import { isComponentBinary } from "../../host/component/component-binary.js";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isKeystateError } from "../../host/errors.js";
import { setFuel } from "../../host/runtime/fuel.js";
import { instrumentModule, type InstrumentOptions } from "../../host/runtime/instrument.js";
import { MAX_TABLES, MAX_TABLE_ENTRIES } from "../../host/runtime/table-cap.js";

const METERED: InstrumentOptions = { maxMemoryPages: 16, meterFuel: true };

function leb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const section = (id: number, contents: number[]): number[] => [id, ...leb(contents.length), ...contents];
const wasm = (...sections: number[][]): Uint8Array<ArrayBuffer> =>
  Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...sections.flat()]);
const name = (s: string): number[] => [s.length, ...new TextEncoder().encode(s)];

/** A funcref table's type: 0x70, then limits (flags 0x00 = no maximum, 0x01 = a maximum follows). */
const funcref = (min: number, max?: number): number[] =>
  max === undefined ? [0x70, 0x00, ...leb(min)] : [0x70, 0x01, ...leb(min), ...leb(max)];

/**
 * One table with the given type, exported as "table", and `grow(delta: i32) -> i32` doing
 * `table.grow 0 (ref.null func) delta`, which returns the old size or -1.
 */
function growable(tableType: number[]): Uint8Array<ArrayBuffer> {
  return wasm(
    section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]), // type 0: (i32) -> i32
    section(3, [1, 0]), // function 0 has type 0
    section(4, [1, ...tableType]), // one table
    section(7, [2, ...name("grow"), 0x00, 0, ...name("table"), 0x01, 0]), // exports: func 0, table 0
    // body: no locals; ref.null func; local.get 0; table.grow 0; end
    section(10, [1, 9, 0, 0xd0, 0x70, 0x20, 0x00, 0xfc, 0x0f, 0x00, 0x0b]),
  );
}

interface TableExports {
  grow(delta: number): number;
  table: WebAssembly.Table;
}

function instantiateMetered(bytes: Uint8Array<ArrayBuffer>): TableExports {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  setFuel(instance, 1000);
  return instance.exports as unknown as TableExports;
}

function refusal(bytes: Uint8Array, t: { throws: (fn: () => unknown) => unknown; true: (v: boolean) => void }): string {
  const err = t.throws(() => instrumentModule(bytes, METERED));
  t.true(isKeystateError(err, "INVALID_MODULE"));
  return (err as Error).message;
}

test("a huge declared maximum is lowered to the cap: table.grow past it returns -1, within it succeeds", (t) => {
  const bytes = growable(funcref(1, 10_000_000));
  // Uninstrumented, the same module grows beyond the cap (and would go on to 10 M entries).
  const plain = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as TableExports;
  t.is(plain.grow(MAX_TABLE_ENTRIES), 1);

  const { bytes: out, report } = instrumentModule(bytes, METERED);
  t.deepEqual(report.tables, [{ minEntries: 1, maxEntries: MAX_TABLE_ENTRIES, table64: false }]);
  const exports = instantiateMetered(out);
  t.is(exports.grow(0x7fffffff), -1); // a huge delta: refused, nothing allocated
  t.is(exports.grow(MAX_TABLE_ENTRIES), -1); // one past the cap
  t.is(exports.table.length, 1);
  t.is(exports.grow(MAX_TABLE_ENTRIES - 1), 1); // up to the cap exactly: returns the old size
  t.is(exports.table.length, MAX_TABLE_ENTRIES);
  t.is(exports.grow(1), -1);
  t.throws(() => exports.table.grow(1), { instanceOf: RangeError }); // from JS too
});

test("a table without a maximum gets the cap; a maximum below the cap is kept", (t) => {
  const none = instrumentModule(growable(funcref(2)), METERED);
  t.deepEqual(none.report.tables, [{ minEntries: 2, maxEntries: MAX_TABLE_ENTRIES, table64: false }]);
  t.is(instantiateMetered(none.bytes).grow(MAX_TABLE_ENTRIES - 1), -1);

  const small = instrumentModule(growable(funcref(2, 10)), METERED);
  t.deepEqual(small.report.tables, [{ minEntries: 2, maxEntries: 10, table64: false }]);
  const exports = instantiateMetered(small.bytes);
  t.is(exports.grow(9), -1);
  t.is(exports.grow(8), 2);
});

test("a table whose initial size exceeds the cap is refused, naming the limit; one at the cap is accepted", (t) => {
  const message = refusal(growable(funcref(MAX_TABLE_ENTRIES + 1)), t);
  t.regex(message, /table 0 starts at 100001 entries, above the limit of 100000 entries per table/);

  const { bytes, report } = instrumentModule(growable(funcref(MAX_TABLE_ENTRIES)), METERED);
  t.is(report.tables[0]?.maxEntries, MAX_TABLE_ENTRIES);
  t.is(instantiateMetered(bytes).grow(1), -1);
});

test("more tables than the limit are refused; the limit itself is accepted", (t) => {
  const tables = (n: number): Uint8Array<ArrayBuffer> =>
    wasm(section(4, [n, ...Array.from({ length: n }, () => funcref(1)).flat()]));
  t.regex(refusal(tables(MAX_TABLES + 1), t), new RegExp(`defines ${MAX_TABLES + 1} tables, above the limit of ${MAX_TABLES} tables per module`));

  const { bytes, report } = instrumentModule(tables(MAX_TABLES), METERED);
  t.is(report.tables.length, MAX_TABLES);
  t.true(report.tables.every((table) => table.maxEntries === MAX_TABLE_ENTRIES));
  t.notThrows(() => new WebAssembly.Instance(new WebAssembly.Module(bytes)));
});

test("an imported table is refused like an imported memory", (t) => {
  // import "env" "table": kind 0x01 (table), funcref, limits min 1 max 1
  const bytes = wasm(section(2, [1, ...name("env"), ...name("table"), 0x01, ...funcref(1, 1)]));
  t.true(WebAssembly.validate(bytes));
  t.regex(refusal(bytes, t), /imports a table \(env\.table\); a guest must define its own tables/);
});

test("a table with an initializer expression keeps it; a non-constant opcode in it is refused", (t) => {
  // The function-references form: 0x40 0x00, reference type, limits, then a constant expression.
  // Node 20 cannot compile it, so the rewritten table section is checked byte for byte.
  const withInit = (expr: number[]): Uint8Array<ArrayBuffer> => wasm(section(4, [1, 0x40, 0x00, ...funcref(3), ...expr]));
  const out = instrumentModule(withInit([0xd0, 0x70, 0x0b]), { maxMemoryPages: 1, meterFuel: false }).bytes; // ref.null func; end
  t.deepEqual([...out.subarray(8)], section(4, [1, 0x40, 0x00, ...funcref(3, MAX_TABLE_ENTRIES), 0xd0, 0x70, 0x0b]));
  t.regex(refusal(withInit([0x20, 0x00, 0x0b]), t), /table 0 has an initializer with opcode 0x20/); // local.get
});

test("a table with unknown limits flags is refused", (t) => {
  t.regex(refusal(wasm(section(4, [1, 0x70, 0x03, 1, 1])), t), /table 0 has unsupported limits flags 0x3/); // shared
});

test("a module without tables is unchanged in that respect and still runs", (t) => {
  // type () -> i32; one function returning 7, exported as "seven"
  const bytes = wasm(
    section(1, [1, 0x60, 0, 1, 0x7f]),
    section(3, [1, 0]),
    section(7, [1, ...name("seven"), 0x00, 0]),
    section(10, [1, 4, 0, 0x41, 7, 0x0b]),
  );
  const { bytes: out, report } = instrumentModule(bytes, METERED);
  t.deepEqual(report.tables, []);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(out));
  setFuel(instance, 10);
  t.is((instance.exports["seven"] as () => number)(), 7);
});

test("the built example core modules instrument, keep at most one table within the cap, and instantiate", async (t) => {
  const modules = fileURLToPath(new URL("../../modules/", import.meta.url));
  const files = readdirSync(modules).flatMap((dir) => {
    try {
      return readdirSync(`${modules}${dir}/build`).filter((f) => f.endsWith(".wasm")).map((f) => `${modules}${dir}/build/${f}`);
    } catch {
      return []; // not built: `npm run build:examples`
    }
  });
  if (files.length === 0) t.fail("no example module is built: npm run build:examples");
  for (const file of files) {
    const upload = await readFile(file);
    // A component (counter-js) is instrumented core module by core module on its own path
    // (host/component; test/integration/component-sandbox.test.ts).
    if (isComponentBinary(upload)) continue;
    const { bytes, report } = instrumentModule(upload, METERED);
    t.true(report.tables.length <= 1, file);
    t.true(report.tables.every((table) => table.maxEntries <= MAX_TABLE_ENTRIES), file);
    const module = new WebAssembly.Module(bytes);
    // Every import is a host function; no-op stubs are enough to run the start function.
    const imports: Record<string, Record<string, () => void>> = {};
    for (const { module: from, name: field } of WebAssembly.Module.imports(module)) (imports[from] ??= {})[field] = () => {};
    t.notThrows(() => new WebAssembly.Instance(module, imports), file);
  }
});
