// AssemblyScript statements that encode and decode one planned field.
// Generated code refers to the runtime as `__pb` (a namespace import), so proto types
// called Message, Reader or Writer cannot shadow it.
import type { FieldPlan, OneofPlan } from "./codegen-fields.js";

const WIRE_LEN = 2;
const key = (fieldNumber: number, wireType: number) => ((fieldNumber << 3) | wireType) >>> 0;

// ---- encoding ---------------------------------------------------------------

/** Condition under which a singular field is written, and the statements that write it. */
function singular(f: FieldPlan): { when: string | null; write: string[] } {
  const v = `this.${f.prop}`;
  if (f.shape === "message") {
    return { when: `${v} != null`, write: [`__pb.writeMessage(w, ${key(f.number, WIRE_LEN)}, ${v}!);`] };
  }
  const s = f.scalar!;
  const when = f.presence ? `this.${f.presence}` : f.required ? null : s.nonDefault(v);
  return { when, write: [`w.uint32(${key(f.number, s.wireType)});`, `w.${s.method}(${v});`] };
}

/** Statements for `encodeTo` that write field `f` (not a oneof member). */
export function encodeField(f: FieldPlan): string[] {
  const v = `this.${f.prop}`;
  if (f.shape === "map") return encodeMap(f);
  if (!f.repeated) {
    const { when, write } = singular(f);
    return when === null ? write : [`if (${when}) {`, ...indent(write), "}"];
  }
  const loop = (body: string[]) => [
    `for (let i = 0, n = ${v}.length; i < n; i++) {`,
    `  const x = unchecked(${v}[i]);`,
    ...indent(body),
    "}",
  ];
  if (f.shape === "message") return loop([`__pb.writeMessage(w, ${key(f.number, WIRE_LEN)}, x);`]);
  const s = f.scalar!;
  if (!f.packed) return loop([`w.uint32(${key(f.number, s.wireType)});`, `w.${s.method}(x);`]);
  return [
    `if (${v}.length != 0) {`,
    `  w.uint32(${key(f.number, WIRE_LEN)});`,
    "  const mark = w.fork();",
    ...indent(loop([`w.${s.method}(x);`])),
    "  w.ldelim(mark);",
    "}",
  ];
}

/** Only the first member that is set gets written, so the wire never carries two. */
export function encodeOneof(o: OneofPlan): string[] {
  const out: string[] = [];
  o.members.forEach((m, i) => {
    const { when, write } = singular(m);
    out.push(`${i === 0 ? "if" : "} else if"} (${when}) {`, ...indent(write));
  });
  out.push("}");
  return out;
}

// Map entries are written key then value, in the Map's insertion order.
function encodeMap(f: FieldPlan): string[] {
  const k = f.scalar!;
  const writeValue = f.className
    ? [`__pb.writeMessage(w, ${key(2, WIRE_LEN)}, v);`]
    : [`w.uint32(${key(2, f.mapValue!.wireType)});`, `w.${f.mapValue!.method}(v);`];
  // keys() allocates, so an empty map (the usual case) is tested first.
  return [
    `if (this.${f.prop}.size != 0) {`,
    `  const keys = this.${f.prop}.keys();`,
    "  for (let i = 0, n = keys.length; i < n; i++) {",
    "    const k = unchecked(keys[i]);",
    `    const v = this.${f.prop}.get(k);`,
    `    w.uint32(${key(f.number, WIRE_LEN)});`,
    "    const mark = w.fork();",
    `    w.uint32(${key(1, k.wireType)});`,
    `    w.${k.method}(k);`,
    ...indent(writeValue, 2),
    "    w.ldelim(mark);",
    "  }",
    "}",
  ];
}

// ---- decoding ---------------------------------------------------------------

/** Name of the private method that reads one entry of map field `f`. */
export function mapEntryReader(f: FieldPlan): string {
  return `__readEntry_${f.prop}`;
}

/**
 * The `case` of `mergeFrom`'s switch for field `f`. `wt` is the wire type just read; a
 * value with the wrong wire type is skipped as an unknown field, as other runtimes do.
 */
export function decodeCase(f: FieldPlan): string[] {
  return [`case ${f.number}: {`, ...indent(decodeBody(f)), "  break;", "}"];
}

function expectWire(wireType: number): string {
  return `if (wt != ${wireType}) { r.skip(wt); break; }`;
}

function decodeBody(f: FieldPlan): string[] {
  const v = `this.${f.prop}`;
  const clear = f.oneof ? [`this.${f.oneof.clearMethod}();`] : [];
  if (f.shape === "map") return [expectWire(WIRE_LEN), `this.${mapEntryReader(f)}(r);`];
  if (f.shape === "message") {
    if (f.repeated) {
      return [expectWire(WIRE_LEN), `const m = new ${f.className}();`, "__pb.readMessage(r, m);", `${v}.push(m);`];
    }
    // A message seen twice is merged, as the protobuf spec asks.
    return [
      expectWire(WIRE_LEN),
      `let m = ${v};`,
      ...clear,
      `if (m == null) m = new ${f.className}();`,
      `${v} = m;`,
      "__pb.readMessage(r, m);",
    ];
  }
  const s = f.scalar!;
  if (f.repeated && s.packable) {
    // Parsers must accept packed and unpacked runs whatever the field's declaration.
    return [
      `if (wt == ${WIRE_LEN}) {`,
      "  const outer = r.beginRegion();",
      `  while (r.pos < r.end) ${v}.push(r.${s.method}());`,
      "  r.endRegion(outer);",
      `} else if (wt == ${s.wireType}) {`,
      `  ${v}.push(r.${s.method}());`,
      "} else {",
      "  r.skip(wt);",
      "}",
    ];
  }
  if (f.repeated) return [expectWire(s.wireType), `${v}.push(r.${s.method}());`];
  const flag = f.presence ? [`this.${f.presence} = true;`] : [];
  return [expectWire(s.wireType), ...clear, `${v} = r.${s.method}();`, ...flag];
}

/** The private method that reads one length-delimited map entry into map field `f`. */
export function mapEntryMethod(f: FieldPlan): string[] {
  const k = f.scalar!;
  const valueType = f.className ? `${f.className} | null` : f.mapValue!.asType;
  const valueInit = f.className ? "null" : f.mapValue!.zero;
  const readValue = f.className
    ? [expectWire(WIRE_LEN), `if (v == null) v = new ${f.className}();`, "__pb.readMessage(r, v);"]
    : [expectWire(f.mapValue!.wireType), `v = r.${f.mapValue!.method}();`];
  const store = f.className ? `this.${f.prop}.set(k, v != null ? v : new ${f.className}());` : `this.${f.prop}.set(k, v);`;
  return [
    `private ${mapEntryReader(f)}(r: __pb.Reader): void {`,
    "  const outer = r.beginRegion();",
    // A missing key or value means the default, as for any field.
    `  let k: ${k.asType} = ${k.zero};`,
    `  let v: ${valueType} = ${valueInit};`,
    "  while (r.pos < r.end) {",
    "    const tag = r.tag();",
    "    const wt = tag & 7;",
    "    switch (tag >>> 3) {",
    "      case 1: {",
    `        ${expectWire(k.wireType)}`,
    `        k = r.${k.method}();`,
    "        break;",
    "      }",
    "      case 2: {",
    ...indent(readValue, 4),
    "        break;",
    "      }",
    "      default:",
    "        r.skip(wt);",
    "    }",
    "  }",
    "  r.endRegion(outer);",
    `  if (!r.error) ${store}`,
    "}",
  ];
}

/** Resets every member of a oneof to its default and clears its presence. */
export function clearOneofMethod(o: OneofPlan): string[] {
  const body = o.members.flatMap((m) => [
    `this.${m.prop} = ${m.initializer};`,
    ...(m.presence ? [`this.${m.presence} = false;`] : []),
  ]);
  return [`${o.clearMethod}(): void {`, ...indent(body), "}"];
}

/**
 * `clearFields()`: every field back to its default without allocating, so one instance can
 * serve call after call (the SDK's results). Repeated fields and maps keep their array or
 * map, emptied; AssemblyScript compiles the method only into modules that call it.
 */
export function clearFieldsMethod(fields: FieldPlan[]): string[] {
  const body = fields.flatMap((f) => [
    f.repeated ? `this.${f.prop}.length = 0;` : f.shape === "map" ? `this.${f.prop}.clear();` : `this.${f.prop} = ${f.initializer};`,
    ...(f.presence ? [`this.${f.presence} = false;`] : []),
  ]);
  return ["clearFields(): void {", ...indent(body), "}"];
}

/** Field number of the member that is set (the one encodeTo would write), or 0. */
export function oneofCaseMethod(o: OneofPlan): string[] {
  const body = o.members.map((m) => `if (${singular(m).when}) return ${m.number};`);
  return [`${o.caseMethod}(): i32 {`, ...indent([...body, "return 0;"]), "}"];
}

export function indent(lines: string[], levels = 1): string[] {
  const pad = "  ".repeat(levels);
  return lines.map((l) => (l.length > 0 ? pad + l : l));
}
