// Which protobuf types a module needs as AssemblyScript classes, and what to call them.
import type {
  IDescriptorProto,
  IEnumDescriptorProto,
  IFileDescriptorProto,
  IFileDescriptorSet,
} from "protobufjs/ext/descriptor.js";

export interface TypeEntry {
  kind: "message" | "enum";
  /** Fully qualified name without the leading dot, e.g. "shop.Cart.Line". */
  fullName: string;
  pkg: string;
  /** Names from the file's top level down, e.g. ["Cart", "Line"]. */
  path: string[];
  file: IFileDescriptorProto;
  message?: IDescriptorProto;
  enumType?: IEnumDescriptorProto;
}

/**
 * True when `obj` really carries `key`. Descriptors decoded by protobufjs expose proto2
 * defaults through their prototype (an unset `oneofIndex` reads as 0), so a plain
 * `obj.key != null` test would see fields that were never on the wire.
 */
export function isSet<T extends object>(obj: T | null | undefined, key: keyof T): boolean {
  return obj != null && Object.prototype.hasOwnProperty.call(obj, key) && obj[key] != null;
}

/** "user_id" -> "userId", exactly as protobufjs names fields (first character kept). */
export function camelCase(protoName: string): string {
  return protoName.slice(0, 1) + protoName.slice(1).replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** "shopping_cart.domain" -> "ShoppingCartDomain"; "userId" -> "UserId". */
export function pascalCase(name: string): string {
  return name
    .split(/[._]/)
    .filter((part) => part.length > 0)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join("");
}

/** Indexes every message and enum of the set by fully qualified name. */
export function indexTypes(set: IFileDescriptorSet): Map<string, TypeEntry> {
  const index = new Map<string, TypeEntry>();
  for (const file of set.file ?? []) {
    const pkg = file.package ?? "";
    const add = (kind: TypeEntry["kind"], path: string[], node: IDescriptorProto | IEnumDescriptorProto) => {
      const fullName = (pkg ? pkg + "." : "") + path.join(".");
      const entry: TypeEntry = { kind, fullName, pkg, path, file };
      if (kind === "message") entry.message = node as IDescriptorProto;
      else entry.enumType = node as IEnumDescriptorProto;
      index.set(fullName, entry);
    };
    const walk = (messages: IDescriptorProto[] | undefined, enums: IEnumDescriptorProto[] | undefined, outer: string[]) => {
      for (const e of enums ?? []) add("enum", [...outer, e.name ?? ""], e);
      for (const m of messages ?? []) {
        const path = [...outer, m.name ?? ""];
        add("message", path, m);
        walk(m.nestedType, m.enumType, path);
      }
    };
    walk(file.messageType, file.enumType, []);
  }
  return index;
}

/** A map<K, V> field's type is a synthetic nested message; it becomes a Map, not a class. */
export function isMapEntry(entry: TypeEntry | undefined): boolean {
  return entry?.kind === "message" && entry.message?.options?.mapEntry === true;
}

export function typeRef(index: Map<string, TypeEntry>, typeName: string | undefined | null): TypeEntry {
  const name = (typeName ?? "").replace(/^\./, "");
  const entry = index.get(name);
  if (!entry) throw new Error(`codegen: type ${typeName} is not in the descriptor set (was an import left out?)`);
  return entry;
}

/**
 * Every type declared in the module's own files, plus the types their fields and
 * service methods refer to, transitively. Option and descriptor types of imported
 * files (google.api, keystate, descriptor.proto) only come in when referenced.
 */
export function reachableTypes(index: Map<string, TypeEntry>, ownFiles: IFileDescriptorProto[]): TypeEntry[] {
  const seen = new Set<string>();
  const order: TypeEntry[] = [];
  const visit = (entry: TypeEntry) => {
    if (seen.has(entry.fullName)) return;
    seen.add(entry.fullName);
    if (!isMapEntry(entry)) order.push(entry);
    for (const f of entry.message?.field ?? []) {
      if (isSet(f, "typeName")) visit(typeRef(index, f.typeName));
    }
    for (const nested of entry.message?.nestedType ?? []) {
      // Nested map entries are reached through their field; other nested types are declared.
      if (!nested.options?.mapEntry) visit(typeRef(index, `${entry.fullName}.${nested.name}`));
    }
    for (const e of entry.message?.enumType ?? []) visit(typeRef(index, `${entry.fullName}.${e.name}`));
  };
  for (const file of ownFiles) {
    const prefix = file.package ? file.package + "." : "";
    for (const e of file.enumType ?? []) visit(typeRef(index, prefix + e.name));
    for (const m of file.messageType ?? []) visit(typeRef(index, prefix + m.name));
    for (const s of file.service ?? []) {
      for (const method of s.method ?? []) {
        visit(typeRef(index, method.inputType));
        visit(typeRef(index, method.outputType));
      }
    }
  }
  return order;
}

/** The index of `set`, and the types reachable from the module's own `files` (named as in the set). */
export function ownTypes(set: IFileDescriptorSet, files: readonly string[]): { index: Map<string, TypeEntry>; types: TypeEntry[] } {
  const index = indexTypes(set);
  const ownFiles = files.map((name) => {
    const file = (set.file ?? []).find((f) => f.name === name);
    if (!file) throw new Error(`codegen: ${name} is not in the descriptor set`);
    return file;
  });
  return { index, types: reachableTypes(index, ownFiles) };
}

// Names the generated file itself uses (globals, and locals of generated methods); a
// proto type of that name would shadow them or be shadowed.
const RESERVED_CLASS_NAMES = new Set([
  "Array", "Map", "Set", "Uint8Array", "String", "Math", "Object", "Error", "Date", "JSON",
  "Number", "Boolean", "ArrayBuffer", "StaticArray", "DataView", "Function", "Symbol",
  "__pb", "r", "w", "end", "tag", "wt", "m", "k", "v", "x", "i", "n", "keys", "mark", "outer",
]);

/**
 * Class names: "Cart", nested "Cart_Line"; when two reachable types would share a name,
 * all of them get their package in front ("ShopApi_Cart", "ShopDomain_Cart"), and a
 * number as the last resort (a nested "A.B" next to a top-level "A_B").
 */
export function assignClassNames(types: TypeEntry[]): Map<string, string> {
  const byBase = new Map<string, TypeEntry[]>();
  for (const t of types) {
    const base = t.path.join("_");
    byBase.set(base, [...(byBase.get(base) ?? []), t]);
  }
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const [base, group] of byBase) {
    const clash = group.length > 1 || RESERVED_CLASS_NAMES.has(base);
    for (const t of group) {
      const qualified = clash ? (t.pkg ? `${pascalCase(t.pkg)}_${base}` : `${base}_`) : base;
      let name = qualified;
      for (let n = 2; taken.has(name) || RESERVED_CLASS_NAMES.has(name); n++) name = `${qualified}${n}`;
      taken.add(name);
      names.set(t.fullName, name);
    }
  }
  return names;
}

/** Hands out member names unique within one class, suffixing "_" on a clash. */
export class MemberNames {
  private readonly used = new Set<string>(["typeName", "encodeTo", "mergeFrom", "clearFields", "constructor"]);

  claim(wanted: string): string {
    let name = wanted;
    while (this.used.has(name)) name += "_";
    this.used.add(name);
    return name;
  }
}
