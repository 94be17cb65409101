// Plans each field of a message (its AS name, type, presence, oneof) from the descriptor.
// The code for encoding and decoding a planned field is in codegen-field-code.ts.
import type { IFieldDescriptorProto } from "protobufjs/ext/descriptor.js";
import { camelCase, isMapEntry, isSet, MemberNames, pascalCase, typeRef, type TypeEntry } from "./codegen-names.js";
import { defaultLiteral, scalarOf, TYPE_ENUM, TYPE_GROUP, TYPE_MESSAGE, type Scalar } from "./codegen-scalars.js";

const LABEL_REQUIRED = 2;
const LABEL_REPEATED = 3;

export interface OneofPlan {
  name: string;
  /** Method that resets every member (decoding one member clears the others). */
  clearMethod: string;
  /** Method returning the field number of the member that is set, or 0. */
  caseMethod: string;
  members: FieldPlan[];
}

export interface FieldPlan {
  number: number;
  /** AssemblyScript property name. */
  prop: string;
  shape: "scalar" | "message" | "map";
  repeated: boolean;
  /** The scalar type (scalar fields) or the map key type. */
  scalar?: Scalar;
  /** Message class of a message field, or of a map's values when they are messages. */
  className?: string;
  /** Map value type when it is a scalar. */
  mapValue?: Scalar;
  /** Repeated numeric fields written as one packed run. */
  packed: boolean;
  /** `has<Name>` flag of a scalar with explicit presence (oneof member, `optional`, proto2). */
  presence?: string;
  /** Proto2 `required`: written even when it holds the default. */
  required: boolean;
  oneof?: OneofPlan;
  initializer: string;
}

export interface Context {
  index: Map<string, TypeEntry>;
  classNames: Map<string, string>;
}

/** Field plans in field-number order, and the message's real (non-synthetic) oneofs. */
export function planFields(entry: TypeEntry, ctx: Context): { fields: FieldPlan[]; oneofs: OneofPlan[] } {
  const syntax = entry.file.syntax || "proto2";
  if (syntax !== "proto2" && syntax !== "proto3") {
    throw new Error(`codegen: ${entry.file.name} uses ${syntax}; only proto2 and proto3 files are supported`);
  }
  const members = new MemberNames();
  const descriptors = [...(entry.message?.field ?? [])].sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
  // Claim every field name first so flags and helper methods yield to fields, not the reverse.
  const props = new Map(descriptors.map((f) => [f, members.claim(camelCase(f.name ?? ""))]));
  const oneofs = new Map<number, OneofPlan>();
  const fields = descriptors.map((f) => {
    const plan = planField(entry, f, props.get(f)!, syntax === "proto3", ctx);
    const hasOneof = isSet(f, "oneofIndex") && !f.proto3Optional;
    const explicitPresence = hasOneof || f.proto3Optional === true || (syntax === "proto2" && f.label !== LABEL_REQUIRED);
    if (plan.shape === "scalar" && !plan.repeated && explicitPresence) {
      plan.presence = members.claim("has" + pascalCase(plan.prop));
    }
    if (hasOneof) {
      const i = f.oneofIndex!;
      let oneof = oneofs.get(i);
      if (!oneof) {
        const name = pascalCase(entry.message?.oneofDecl?.[i]?.name ?? `oneof${i}`);
        oneof = { name, clearMethod: "", caseMethod: "", members: [] };
        oneofs.set(i, oneof);
      }
      oneof.members.push(plan);
      plan.oneof = oneof;
    }
    return plan;
  });
  for (const oneof of oneofs.values()) {
    oneof.clearMethod = members.claim("clear" + oneof.name);
    oneof.caseMethod = members.claim(oneof.name[0]!.toLowerCase() + oneof.name.slice(1) + "Case");
  }
  return { fields, oneofs: [...oneofs.values()] };
}

function planField(owner: TypeEntry, f: IFieldDescriptorProto, prop: string, proto3: boolean, ctx: Context): FieldPlan {
  const where = `${owner.fullName}.${f.name}`;
  const type = f.type ?? 0;
  const repeated = f.label === LABEL_REPEATED;
  const base = { number: f.number ?? 0, prop, repeated, packed: false, required: f.label === LABEL_REQUIRED };
  if (type === TYPE_GROUP) throw new Error(`codegen: ${where} is a group; groups are not supported`);
  if (type === TYPE_MESSAGE) {
    const target = typeRef(ctx.index, f.typeName);
    if (isMapEntry(target)) return planMap(target, base, where, ctx);
    const className = classOf(ctx, target);
    return {
      ...base,
      shape: "message",
      className,
      initializer: repeated ? `new Array<${className}>()` : "null",
    };
  }
  const scalar = scalarOf(type);
  if (!scalar) throw new Error(`codegen: ${where} has unknown field type ${type}`);
  // proto3 packs numeric repeated fields unless [packed = false]; proto2 only with [packed = true].
  const packedOption = f.options && isSet(f.options, "packed") ? f.options.packed === true : null;
  const packed = repeated && scalar.packable && (packedOption ?? proto3);
  let initializer = repeated ? `new Array<${scalar.asType}>()` : scalar.zero;
  if (!repeated && isSet(f, "defaultValue")) {
    initializer = defaultLiteral(scalar, f.defaultValue!, (name) => enumNumber(ctx, f, name));
  }
  return { ...base, shape: "scalar", scalar, packed, initializer };
}

function planMap(entryType: TypeEntry, base: Omit<FieldPlan, "shape" | "initializer">, where: string, ctx: Context): FieldPlan {
  const [keyField, valueField] = [1, 2].map((n) => entryType.message?.field?.find((x) => x.number === n));
  const key = scalarOf(keyField?.type ?? 0);
  if (!key || !valueField) throw new Error(`codegen: ${where} is a map with an unusable key or value`);
  if (valueField.type === TYPE_MESSAGE) {
    const className = classOf(ctx, typeRef(ctx.index, valueField.typeName));
    return { ...base, repeated: false, shape: "map", scalar: key, className, initializer: `new Map<${key.asType}, ${className}>()` };
  }
  const value = scalarOf(valueField.type ?? 0);
  if (!value) throw new Error(`codegen: ${where} is a map with an unusable value type`);
  return {
    ...base,
    repeated: false,
    shape: "map",
    scalar: key,
    mapValue: value,
    initializer: `new Map<${key.asType}, ${value.asType}>()`,
  };
}

function classOf(ctx: Context, target: TypeEntry): string {
  const name = ctx.classNames.get(target.fullName);
  if (!name) throw new Error(`codegen: no class was planned for ${target.fullName}`);
  return name;
}

function enumNumber(ctx: Context, f: IFieldDescriptorProto, valueName: string): number {
  if (f.type !== TYPE_ENUM) throw new Error(`codegen: default "${valueName}" of ${f.name} is not a number`);
  const value = typeRef(ctx.index, f.typeName).enumType?.value?.find((v) => v.name === valueName);
  if (!value) throw new Error(`codegen: default ${valueName} of ${f.name} is not a value of ${f.typeName}`);
  return value.number ?? 0;
}

/** The AssemblyScript type of a planned field's property. */
export function propertyType(f: FieldPlan): string {
  if (f.shape === "map") return `Map<${f.scalar!.asType}, ${f.className ?? f.mapValue!.asType}>`;
  const element = f.shape === "message" ? f.className! : f.scalar!.asType;
  if (f.repeated) return `Array<${element}>`;
  return f.shape === "message" ? `${element} | null` : element;
}
