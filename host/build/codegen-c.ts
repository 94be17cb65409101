// Generates the C side of a module for guest-sdk-c from its FileDescriptorSet and module.json:
//   messages.h / messages.c  one struct per reachable message, with decode/encode functions
//                            and a ks_message_type table (<Type>_TYPE) the SDK dispatches through
//   handlers.h / handlers.c  the prototypes of the handlers the author defines, and the
//                            service tables (ks_services) that route calls to them
// The wire runtime the generated code calls is guest-sdk-c/include/keystate_pb.h.
import type { IDescriptorProto, IFieldDescriptorProto, IFileDescriptorSet, IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import { stripLeadingDot } from "../proto/descriptors.js";
import { assignClassNames, isMapEntry, isSet, ownTypes, typeRef, type TypeEntry } from "./codegen-names.js";
import { scalarOf, TYPE_GROUP, TYPE_MESSAGE } from "./codegen-scalars.js";
import type { EntityConfig } from "./module-config.js";

export interface GeneratedC {
  readonly messagesH: string;
  readonly messagesC: string;
  readonly handlersH: string;
  readonly handlersC: string;
}

const LABEL_REQUIRED = 2;
const LABEL_REPEATED = 3;

const C_KEYWORDS = new Set(
  (
    "auto break case char const continue default do double else enum extern float for goto if inline int long register " +
    "restrict return short signed sizeof static struct switch typedef union unsigned void volatile while bool true false " +
    "_Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local NULL"
  ).split(" "),
);

/** How one protobuf scalar looks in C, keyed by codegen-scalars' method names. */
interface CScalar {
  cType: string;
  read: string;
  /** Statement(s) writing value `v` (after its tag). */
  write: (v: string) => string;
  nonDefault: (v: string) => string;
}

const num = (v: string) => `${v} != 0`;
const C_SCALARS: Record<string, CScalar> = {
  int32: { cType: "int32_t", read: "(int32_t)ks_r_varint(r)", write: (v) => `ks_w_varint(w, (uint64_t)(int64_t)${v});`, nonDefault: num },
  int64: { cType: "int64_t", read: "(int64_t)ks_r_varint(r)", write: (v) => `ks_w_varint(w, (uint64_t)${v});`, nonDefault: num },
  uint32: { cType: "uint32_t", read: "(uint32_t)ks_r_varint(r)", write: (v) => `ks_w_varint(w, ${v});`, nonDefault: num },
  uint64: { cType: "uint64_t", read: "ks_r_varint(r)", write: (v) => `ks_w_varint(w, ${v});`, nonDefault: num },
  bool: { cType: "bool", read: "ks_r_varint(r) != 0", write: (v) => `ks_w_varint(w, ${v} ? 1 : 0);`, nonDefault: (v) => v },
  sint32: { cType: "int32_t", read: "ks_unzigzag32(ks_r_varint(r))", write: (v) => `ks_w_varint(w, ks_zigzag32(${v}));`, nonDefault: num },
  sint64: { cType: "int64_t", read: "ks_unzigzag64(ks_r_varint(r))", write: (v) => `ks_w_varint(w, ks_zigzag64(${v}));`, nonDefault: num },
  fixed32: { cType: "uint32_t", read: "ks_r_fixed32(r)", write: (v) => `ks_w_fixed32(w, ${v});`, nonDefault: num },
  sfixed32: { cType: "int32_t", read: "(int32_t)ks_r_fixed32(r)", write: (v) => `ks_w_fixed32(w, (uint32_t)${v});`, nonDefault: num },
  fixed64: { cType: "uint64_t", read: "ks_r_fixed64(r)", write: (v) => `ks_w_fixed64(w, ${v});`, nonDefault: num },
  sfixed64: { cType: "int64_t", read: "(int64_t)ks_r_fixed64(r)", write: (v) => `ks_w_fixed64(w, (uint64_t)${v});`, nonDefault: num },
  // -0.0 differs from the default and is written; NaN != 0 holds.
  float: { cType: "float", read: "ks_r_float(r)", write: (v) => `ks_w_float(w, ${v});`, nonDefault: (v) => `(${v} != 0 || __builtin_signbit(${v}))` },
  double: { cType: "double", read: "ks_r_double(r)", write: (v) => `ks_w_double(w, ${v});`, nonDefault: (v) => `(${v} != 0 || __builtin_signbit(${v}))` },
  string: { cType: "ks_str", read: "ks_r_str(r)", write: (v) => `ks_w_varint(w, ${v}.len); ks_w_raw(w, ${v}.data, ${v}.len);`, nonDefault: (v) => `${v}.len != 0` },
  bytes: { cType: "ks_bytes", read: "ks_r_bytes(r)", write: (v) => `ks_w_varint(w, ${v}.len); ks_w_raw(w, ${v}.data, ${v}.len);`, nonDefault: (v) => `${v}.len != 0` },
};

interface CField {
  number: number;
  /** Member name in the struct. */
  name: string;
  repeated: boolean;
  /** Struct name of a message field. */
  message?: string;
  scalar?: CScalar;
  wireType: number;
  packable: boolean;
  packed: boolean;
  /** Writes even the default: a presence flag `has_<name>` (oneof members, `optional`, proto2) or proto2 `required`. */
  presence: boolean;
  required: boolean;
}

export function generateC(set: IFileDescriptorSet, options: { files: readonly string[]; entities: readonly EntityConfig[] }): GeneratedC {
  const { index, types } = ownTypes(set, options.files);
  const names = assignClassNames(types);
  const nameOf = (fullName: string): string => {
    const name = names.get(stripLeadingDot(fullName));
    if (!name) throw new Error(`codegen: no C type was planned for ${fullName}`);
    return name;
  };
  const messages = types.filter((t) => t.kind === "message");
  const enums = types.filter((t) => t.kind === "enum");
  const plans = new Map(messages.map((t) => [t, planFields(t, index, nameOf)]));

  const header = (guard: string, includes: string[]) => [
    "// Generated by `keystate build` for guest-sdk-c. Do not edit.",
    `#ifndef ${guard}`,
    `#define ${guard}`,
    "",
    ...includes,
    "",
  ];

  const h = header("KEYSTATE_GENERATED_MESSAGES_H", ['#include "keystate.h"']);
  for (const t of messages) h.push(`typedef struct ${nameOf(t.fullName)} ${nameOf(t.fullName)};`);
  for (const t of enums) {
    const name = nameOf(t.fullName);
    h.push("", `/** Enum ${t.fullName} (open, as in proto3: any int32 may arrive). */`, `typedef int32_t ${name};`, "enum {");
    for (const v of t.enumType?.value ?? []) h.push(`  ${name}_${v.name} = ${v.number ?? 0},`);
    h.push("};");
  }
  const c = ["// Generated by `keystate build` for guest-sdk-c. Do not edit.", '#include <string.h>', "", '#include "keystate_pb.h"', '#include "messages.h"', ""];
  for (const t of messages) c.push(`static void ${nameOf(t.fullName)}_read(ks_reader *r, ${nameOf(t.fullName)} *m);`);
  for (const t of messages) {
    const name = nameOf(t.fullName);
    const fields = plans.get(t)!;
    h.push("", `/** Message ${t.fullName}. */`, `struct ${name} {`);
    if (fields.length === 0) h.push("  char unused_;");
    for (const f of fields) h.push(...structMembers(f));
    h.push("};");
    h.push(`extern const ks_message_type ${name}_TYPE;`);
    h.push(`/** Decodes \`bytes\` into \`*m\` (zeroed first); strings and bytes point into \`bytes\`. False when malformed. */`);
    h.push(`bool ${name}_decode(ks_bytes bytes, ${name} *m);`);
    h.push(`/** Encodes \`*m\` into the call's arena. */`);
    h.push(`ks_bytes ${name}_encode(const ${name} *m);`);
    h.push(`void ${name}_write(ks_writer *w, const ${name} *m);`);
    for (const f of fields.filter((x) => x.repeated)) {
      if (f.message) h.push(`/** Appends a zeroed element to \`${f.name}\` and returns it. */`, `${f.message} *${name}_add_${f.name}(${name} *m);`);
      else h.push(`/** Appends \`value\` to \`${f.name}\`. */`, `void ${name}_add_${f.name}(${name} *m, ${f.scalar!.cType} value);`);
    }
    c.push("", ...messageCode(name, t.fullName, fields));
  }
  h.push("", "#endif", "");

  const handlers = generateHandlersC(options.entities, set, nameOf);
  return { messagesH: h.join("\n"), messagesC: c.join("\n") + "\n", handlersH: handlers.h, handlersC: handlers.c };
}

function planFields(t: TypeEntry, index: Map<string, TypeEntry>, nameOf: (full: string) => string): CField[] {
  const syntax = t.file.syntax || "proto2";
  if (syntax !== "proto2" && syntax !== "proto3") throw new Error(`codegen: ${t.file.name} uses ${syntax}; only proto2 and proto3 files are supported`);
  const used = new Set<string>();
  const message: IDescriptorProto = t.message ?? {};
  const fields = [...(message.field ?? [])].sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
  return fields.map((f: IFieldDescriptorProto) => {
    const where = `${t.fullName}.${f.name}`;
    let name = f.name ?? `field${f.number}`;
    if (C_KEYWORDS.has(name)) name += "_";
    while (used.has(name)) name += "_";
    used.add(name);
    const type = f.type ?? 0;
    const repeated = f.label === LABEL_REPEATED;
    const hasOneof = isSet(f, "oneofIndex") && !f.proto3Optional;
    const presence = !repeated && (hasOneof || f.proto3Optional === true || (syntax === "proto2" && f.label !== LABEL_REQUIRED));
    const base = { number: f.number ?? 0, name, repeated, required: f.label === LABEL_REQUIRED };
    if (type === TYPE_GROUP) throw new Error(`codegen: ${where} is a group; groups are not supported`);
    if (type === TYPE_MESSAGE) {
      const target = typeRef(index, f.typeName);
      if (isMapEntry(target)) throw new Error(`codegen: ${where} is a map field; maps are not supported by the C SDK yet (use a repeated message)`);
      return { ...base, message: nameOf(target.fullName), wireType: 2, packable: false, packed: false, presence: false };
    }
    const scalar = scalarOf(type);
    const cScalar = scalar ? C_SCALARS[scalar.method] : undefined;
    if (!scalar || !cScalar) throw new Error(`codegen: ${where} has unknown field type ${type}`);
    const packedOption = f.options && isSet(f.options, "packed") ? f.options.packed === true : null;
    const packed = repeated && scalar.packable && (packedOption ?? syntax === "proto3");
    return { ...base, scalar: cScalar, wireType: scalar.wireType, packable: scalar.packable, packed, presence };
  });
}

function structMembers(f: CField): string[] {
  const element = f.message ?? f.scalar!.cType;
  if (f.repeated) return [`  ${element} *${f.name};`, `  uint32_t ${f.name}_count;`, `  uint32_t ${f.name}_cap;`];
  if (f.message) return [`  ${element} *${f.name};`];
  const lines = [`  ${element} ${f.name};`];
  if (f.presence) lines.push(`  bool has_${f.name};`);
  return lines;
}

function messageCode(name: string, fullName: string, fields: CField[]): string[] {
  const out: string[] = [];
  // write
  out.push(`void ${name}_write(ks_writer *w, const ${name} *m) {`);
  if (fields.length === 0) out.push("  (void)w;", "  (void)m;");
  for (const f of fields) {
    const v = `m->${f.name}`;
    if (f.message && f.repeated) {
      out.push(`  for (uint32_t i = 0; i < ${v}_count; i++) {`, `    uint32_t mark = ks_w_begin(w, ${f.number});`, `    ${f.message}_write(w, &${v}[i]);`, "    ks_w_end(w, mark);", "  }");
    } else if (f.message) {
      out.push(`  if (${v}) {`, `    uint32_t mark = ks_w_begin(w, ${f.number});`, `    ${f.message}_write(w, ${v});`, "    ks_w_end(w, mark);", "  }");
    } else if (f.repeated && f.packed) {
      out.push(`  if (${v}_count) {`, `    uint32_t mark = ks_w_begin(w, ${f.number});`, `    for (uint32_t i = 0; i < ${v}_count; i++) { ${f.scalar!.write(`${v}[i]`)} }`, "    ks_w_end(w, mark);", "  }");
    } else if (f.repeated) {
      out.push(`  for (uint32_t i = 0; i < ${v}_count; i++) {`, `    ks_w_tag(w, ${f.number}, ${f.wireType});`, `    ${f.scalar!.write(`${v}[i]`)}`, "  }");
    } else {
      const cond = f.required ? "1" : f.presence ? `m->has_${f.name}` : f.scalar!.nonDefault(v);
      out.push(`  if (${cond}) {`, `    ks_w_tag(w, ${f.number}, ${f.wireType});`, `    ${f.scalar!.write(v)}`, "  }");
    }
  }
  out.push("}", "");
  // read
  out.push(`static void ${name}_read(ks_reader *r, ${name} *m) {`, ...(fields.length === 0 ? ["  (void)m;"] : []), "  uint32_t tag;", "  while ((tag = ks_r_tag(r))) {", "    uint32_t wt = tag & 7;", "    switch (tag >> 3) {");
  for (const f of fields) {
    const v = `m->${f.name}`;
    out.push(`      case ${f.number}:`);
    if (f.message && f.repeated) {
      out.push(
        "        if (wt != KS_WT_LEN) goto skip;",
        `        ${v} = ks_grow_array(${v}, ${v}_count, &${v}_cap, sizeof *${v});`,
        `        memset(&${v}[${v}_count], 0, sizeof *${v});`,
        `        KS_R_NESTED(r, ${f.message}_read, &${v}[${v}_count++]);`,
      );
    } else if (f.message) {
      out.push("        if (wt != KS_WT_LEN) goto skip;", `        if (!${v}) ${v} = ks_alloc(sizeof *${v});`, `        KS_R_NESTED(r, ${f.message}_read, ${v});`);
    } else if (f.repeated) {
      const add = `${name}_add_${f.name}(m, ${f.scalar!.read})`;
      if (f.packable) {
        out.push(
          "        if (wt == KS_WT_LEN) {",
          "          uint32_t end = ks_r_len_end(r);",
          "          ks_reader whole = *r;",
          "          r->end = end;",
          `          while (r->pos < end) ${add};`,
          "          r->end = whole.end;",
          "          if (!r->ok) r->pos = r->end;",
          "          break;",
          "        }",
        );
      }
      out.push(`        if (wt != ${f.wireType}) goto skip;`, `        ${add};`);
    } else {
      out.push(`        if (wt != ${f.wireType}) goto skip;`, `        ${v} = ${f.scalar!.read};`);
      if (f.presence) out.push(`        m->has_${f.name} = true;`);
    }
    out.push("        break;");
  }
  out.push("      default:", fields.length ? "      skip:" : "", "        ks_r_skip(r, wt);", "    }", "  }", "}", "");
  // decode / encode / type table / adders
  out.push(
    `bool ${name}_decode(ks_bytes bytes, ${name} *m) {`,
    "  memset(m, 0, sizeof *m);",
    "  ks_reader reader = ks_reader_of(bytes);",
    `  ${name}_read(&reader, m);`,
    "  return reader.ok;",
    "}",
    "",
    `ks_bytes ${name}_encode(const ${name} *m) { return ks_encode(&${name}_TYPE, m); }`,
    "",
    `static bool ${name}_decode_any(ks_bytes bytes, void *m) { return ${name}_decode(bytes, m); }`,
    `static void ${name}_write_any(ks_writer *w, const void *m) { ${name}_write(w, m); }`,
    `const ks_message_type ${name}_TYPE = {${JSON.stringify(fullName)}, sizeof(${name}), ${name}_decode_any, ${name}_write_any};`,
  );
  for (const f of fields.filter((x) => x.repeated)) {
    const v = `m->${f.name}`;
    if (f.message) {
      out.push(
        "",
        `${f.message} *${name}_add_${f.name}(${name} *m) {`,
        `  ${v} = ks_grow_array(${v}, ${v}_count, &${v}_cap, sizeof *${v});`,
        `  memset(&${v}[${v}_count], 0, sizeof *${v});`,
        `  return &${v}[${v}_count++];`,
        "}",
      );
    } else {
      out.push(
        "",
        `void ${name}_add_${f.name}(${name} *m, ${f.scalar!.cType} value) {`,
        `  ${v} = ks_grow_array(${v}, ${v}_count, &${v}_cap, sizeof *${v});`,
        `  ${v}[${v}_count++] = value;`,
        "}",
      );
    }
  }
  return out;
}

// ---- Handlers.

interface CMethod {
  rpc: string;
  input: string;
  output: string;
}

function generateHandlersC(entities: readonly EntityConfig[], set: IFileDescriptorSet, nameOf: (full: string) => string): { h: string; c: string } {
  const services = new Map<string, IServiceDescriptorProto>();
  for (const file of set.file ?? []) {
    for (const s of file.service ?? []) services.set((file.package ? file.package + "." : "") + s.name, s);
  }
  const h = ["// Generated by `keystate build` for guest-sdk-c. Do not edit.", "// Define every function declared here in the module's src/*.c.", "#ifndef KEYSTATE_GENERATED_HANDLERS_H", "#define KEYSTATE_GENERATED_HANDLERS_H", "", '#include "messages.h"', ""];
  const c = ["// Generated by `keystate build` for guest-sdk-c. Do not edit.", '#include "handlers.h"', ""];
  const prefixes = new Set<string>();
  const emitted = new Set<string>();
  const serviceRefs: string[] = [];
  for (const entity of entities) {
    const service = services.get(entity.service);
    if (!service) throw new Error(`module.json names service ${entity.service}, which the .proto files do not define`);
    if (entity.kind === "replicated") throw new Error(`service ${entity.service}: replicated (CRDT) entities are not supported by the C SDK yet`);
    const prefix = service.name ?? "Service";
    if (prefixes.has(prefix)) throw new Error(`service ${entity.service}: another service of this module is also named ${prefix}; the C SDK needs distinct service names`);
    prefixes.add(prefix);
    const methods: CMethod[] = [];
    for (const m of service.method ?? []) {
      if (m.clientStreaming || m.serverStreaming) {
        h.push(`// rpc ${m.name} is streaming; C entities serve unary calls only (the host answers UNIMPLEMENTED).`);
        continue;
      }
      methods.push({ rpc: m.name ?? "", input: nameOf(m.inputType ?? ""), output: nameOf(m.outputType ?? "") });
    }
    const state = entity.kind === "action" ? undefined : entity.state ? nameOf(entity.state) : undefined;
    if (entity.kind !== "action" && !state) throw new Error(`service ${entity.service}: module.json needs "state" for a ${entity.kind} entity`);
    const kindName = entity.kind === "event-sourced" ? "KS_EVENT_SOURCED" : entity.kind === "value" ? "KS_VALUE" : "KS_ACTION";
    h.push(`/* ---- ${entity.service} (${entity.kind}${state ? `, state ${state}` : ""}) ---- */`, "");
    for (const m of methods) {
      h.push(`/** rpc ${m.rpc}: return the reply, or call ks_fail() and return NULL. */`);
      h.push(state ? `${m.output} *${prefix}_${m.rpc}(const ${m.input} *command, ${state} *state, ks_context *ctx);` : `${m.output} *${prefix}_${m.rpc}(const ${m.input} *command, ks_context *ctx);`);
      c.push(
        `static void *${prefix}_${m.rpc}_thunk(const void *command, void *state, ks_context *ctx) {`,
        state ? `  return ${prefix}_${m.rpc}(command, state, ctx);` : `  (void)state;\n  return ${prefix}_${m.rpc}(command, ctx);`,
        "}",
      );
    }
    const events = entity.kind === "event-sourced" ? (entity.events ?? []).map((full) => nameOf(full)) : [];
    for (const e of events) {
      h.push(`/** Folds a ${e} event into the state; returns the new state (NULL: it cannot be applied). */`);
      h.push(`${state} *${prefix}_on_${e}(const ${e} *event, ${state} *state);`);
      c.push(`static void *${prefix}_on_${e}_thunk(const void *event, void *state) { return ${prefix}_on_${e}(event, state); }`);
      if (!emitted.has(e)) {
        emitted.add(e);
        h.push(`/** Records a ${e} event (see ks_emit). */`, `static inline void emit_${e}(ks_context *ctx, const ${e} *event) { ks_emit(ctx, &${e}_TYPE, event); }`);
      }
    }
    if (entity.kind === "value") {
      h.push(`/** Replaces the stored value once the command succeeds (see ks_update_state). */`);
      h.push(`static inline void ${prefix}_update_state(ks_context *ctx, const ${state} *state) { ks_update_state(ctx, &${state}_TYPE, state); }`);
    }
    h.push("");
    c.push("");
    if (methods.length) {
      c.push(`static const ks_method ${prefix}_methods[] = {`);
      for (const m of methods) c.push(`  {${JSON.stringify(m.rpc)}, &${m.input}_TYPE, &${m.output}_TYPE, ${prefix}_${m.rpc}_thunk},`);
      c.push("};");
    }
    if (events.length) {
      c.push(`static const ks_event_handler ${prefix}_events[] = {`);
      for (const e of events) c.push(`  {&${e}_TYPE, ${prefix}_on_${e}_thunk},`);
      c.push("};");
    }
    c.push(
      `static const ks_service ${prefix}_service = {`,
      `  ${JSON.stringify(entity.service)}, ${kindName}, ${state ? `&${state}_TYPE` : "0"}, 0,`,
      `  ${methods.length ? `${prefix}_methods` : "0"}, ${methods.length}, ${events.length ? `${prefix}_events` : "0"}, ${events.length},`,
      "};",
      "",
    );
    serviceRefs.push(`&${prefix}_service`);
  }
  h.push("#endif", "");
  c.push(`const ks_service *const ks_services[] = {${serviceRefs.join(", ")}};`, `const uint32_t ks_service_count = ${serviceRefs.length};`, "");
  return { h: h.join("\n"), c: c.join("\n") };
}
