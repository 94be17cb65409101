// JSON <-> protobuf bytes for one module version, per the proto3 JSON mapping (protobufjs
// protojson). Built once per LoadedModule from its descriptor set; HTTP requests are
// assembled from body, query and path parameters, then parsed strictly so a wrong type
// or an unknown field is an INVALID_ARGUMENT naming the field.
import protobuf from "protobufjs";
import type {} from "protobufjs/ext/descriptor.js";
import protojson from "protobufjs/ext/protojson.js";
import { KeystateError } from "../errors.js";
import { log } from "../log.js";
import type { LoadedModule } from "../runtime/loaded-module.js";
import { loadDescriptorExtension } from "../proto/descriptor-extension.js";

export interface FieldValue {
  readonly fieldPath: readonly string[];
  readonly value: string;
}

export interface HttpRequestParts {
  /** The parsed JSON body, or undefined when the binding takes none. */
  readonly body: unknown;
  /** "*", a field path, or undefined (see HttpBinding.body). */
  readonly bodyField: string | undefined;
  readonly query: readonly FieldValue[];
  readonly pathParams: readonly FieldValue[];
}

/** Well-known types whose JSON form is a string, so a path or query string can fill them. */
const STRING_JSON_TYPES = new Set([".google.protobuf.Timestamp", ".google.protobuf.Duration", ".google.protobuf.FieldMask"]);
const WRAPPER_PREFIX = ".google.protobuf.";
const WRAPPERS = new Set(["DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue", "StringValue", "BytesValue"]);

const cache = new WeakMap<LoadedModule, JsonCodec>();

export class JsonCodec {
  readonly #root: protobuf.Root;

  private constructor(root: protobuf.Root) {
    this.#root = root;
  }

  /** The codec of a module version; built on first use and kept as long as the version is. */
  static async forModule(module: LoadedModule): Promise<JsonCodec> {
    const built = cache.get(module);
    if (built) return built;
    await loadDescriptorExtension();
    // Another caller may have built it while the extension loaded.
    let codec = cache.get(module);
    if (!codec) {
      // keepCase: fields keep their proto names (templates and query keys use them);
      // protojson still writes lowerCamelCase JSON names and accepts both on input.
      // From the decoded set the module already has: decoding the bytes again would cost
      // protobufjs generating descriptor.proto's decoders (~20 ms, right after a node starts).
      const root = protobuf.Root.fromDescriptor(module.api.descriptors.set, { keepCase: true });
      root.resolveAll();
      codec = new JsonCodec(root);
      cache.set(module, codec);
    }
    return codec;
  }

  /** Why `fieldPath` (dotted) does not name a field of `typeName`, or undefined when it does. */
  fieldPathError(typeName: string, fieldPath: string): string | undefined {
    try {
      resolvePath(this.#root.lookupType(typeName), fieldPath.split("."), "field path");
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** Builds the request message from the HTTP parts; throws INVALID_REQUEST naming the problem. */
  requestBytes(typeName: string, parts: HttpRequestParts): Uint8Array {
    const type = this.#root.lookupType(typeName);
    let json: Record<string, unknown> = {};
    if (parts.bodyField === "*") {
      if (!isPlainObject(parts.body)) throw invalid(`the request body must be a JSON object (${typeName})`);
      json = parts.body;
    } else if (parts.bodyField !== undefined && parts.body !== undefined) {
      setPath(type, json, parts.bodyField.split("."), parts.body, "body field");
    }
    // Query parameters first, path parameters last: the path (which names the entity) wins.
    const repeated = new Map<string, unknown[]>();
    for (const { fieldPath, value } of parts.query) {
      const { field } = resolvePath(type, fieldPath, "query parameter");
      const converted = fromString(field, value, `query parameter "${fieldPath.join(".")}"`);
      if (field.repeated) {
        const key = fieldPath.join(".");
        const list = repeated.get(key) ?? [];
        list.push(converted);
        repeated.set(key, list);
        setPath(type, json, fieldPath, list, "query parameter");
      } else {
        setPath(type, json, fieldPath, converted, "query parameter");
      }
    }
    for (const { fieldPath, value } of parts.pathParams) {
      const { field } = resolvePath(type, fieldPath, "path parameter");
      if (field.repeated) throw invalid(`path parameter "${fieldPath.join(".")}" names a repeated field`);
      setPath(type, json, fieldPath, fromString(field, value, `path parameter "${fieldPath.join(".")}"`), "path parameter");
    }
    let message: protobuf.Message;
    try {
      message = protojson.fromJson(type, json);
    } catch (err) {
      // protojson names the field as ".pkg.Type.field"; the type is already in our message.
      const detail = (err as Error).message.replace(`.${typeName}.`, "").replace(`.${typeName}: `, "");
      throw invalid(`the request is not a valid ${typeName}: ${detail}`);
    }
    return type.encode(message).finish();
  }

  /** Whether the module's API defines the message `typeName` (fully qualified, no leading dot). */
  hasMessage(typeName: string): boolean {
    return this.#root.lookup(typeName) instanceof protobuf.Type;
  }

  /** `bytes` as proto3 JSON of `typeName`, the mapping replies use (the entity inspector shows state and events so); throws when they do not decode. */
  messageJson(typeName: string, bytes: Uint8Array): unknown {
    const type = this.#root.lookupType(typeName);
    return protojson.toJson(type, type.decode(bytes));
  }

  /** The reply as proto3 JSON, or only its `responseBody` field when the binding names one. */
  replyJson(typeName: string, bytes: Uint8Array, responseBody: string | undefined): unknown {
    const type = this.#root.lookupType(typeName);
    let json: unknown;
    try {
      json = protojson.toJson(type, type.decode(bytes));
    } catch (err) {
      // The caller gets a generic INTERNAL; the details are for the operator.
      log().error({ err, replyType: typeName }, "an entity's reply does not decode as its declared type");
      throw new KeystateError("GUEST_TRAP", `the entity's reply is not a valid ${typeName}`, { cause: err });
    }
    if (responseBody === undefined) return json;
    const path = responseBody.split(".");
    const { field } = resolvePath(type, path, "response_body");
    let current = type;
    let value: unknown = json;
    for (const name of path) {
      const step = resolveField(current, name)!;
      value = isPlainObject(value) ? value[step.jsonName] : undefined;
      if (step.resolvedType instanceof protobuf.Type) current = step.resolvedType;
    }
    return value === undefined ? defaultJson(field) : value;
  }
}

function invalid(message: string): KeystateError {
  return new KeystateError("INVALID_REQUEST", message);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function resolveField(type: protobuf.Type, name: string): protobuf.Field | undefined {
  return type.fields[name] ?? type.fieldsArray.find((f) => f.jsonName === name);
}

/** The field a dotted path names; every step but the last must be a singular message field. */
function resolvePath(type: protobuf.Type, fieldPath: readonly string[], what: string): { field: protobuf.Field } {
  let current = type;
  let field: protobuf.Field | undefined;
  for (let i = 0; i < fieldPath.length; i++) {
    field = resolveField(current, fieldPath[i]!);
    if (!field) throw invalid(`${what} "${fieldPath.join(".")}": ${current.fullName.slice(1)} has no field "${fieldPath[i]}"`);
    if (i < fieldPath.length - 1) {
      if (!(field.resolvedType instanceof protobuf.Type) || field.repeated || field.map) {
        throw invalid(`${what} "${fieldPath.join(".")}": "${fieldPath[i]}" is not a singular message field`);
      }
      current = field.resolvedType;
    }
  }
  return { field: field! };
}

/** Sets `value` at `fieldPath` in the JSON object, creating parents and replacing any spelling of the same field. */
function setPath(type: protobuf.Type, json: Record<string, unknown>, fieldPath: readonly string[], value: unknown, what: string): void {
  let current = type;
  let target = json;
  for (let i = 0; i < fieldPath.length; i++) {
    const field = resolveField(current, fieldPath[i]!);
    if (!field) throw invalid(`${what} "${fieldPath.join(".")}": ${current.fullName.slice(1)} has no field "${fieldPath[i]}"`);
    const existingKey = [field.name, field.jsonName].find((k) => Object.hasOwn(target, k));
    if (i === fieldPath.length - 1) {
      if (existingKey !== undefined) delete target[existingKey];
      target[field.name] = value;
      return;
    }
    const child = existingKey === undefined ? {} : target[existingKey];
    if (!isPlainObject(child) || !(field.resolvedType instanceof protobuf.Type)) {
      throw invalid(`${what} "${fieldPath.join(".")}": "${fieldPath[i]}" is not a message field`);
    }
    if (existingKey !== undefined) delete target[existingKey];
    target[field.name] = child;
    target = child;
    current = field.resolvedType;
  }
}

/** A path or query string as the JSON value protojson expects for the field's type. */
function fromString(field: protobuf.Field, value: string, what: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) return /^-?\d+$/.test(value) ? Number(value) : value;
  if (resolved instanceof protobuf.Type) {
    if (STRING_JSON_TYPES.has(resolved.fullName)) return value;
    const short = resolved.fullName.slice(WRAPPER_PREFIX.length);
    if (resolved.fullName.startsWith(WRAPPER_PREFIX) && WRAPPERS.has(short)) return fromString(resolved.fields.value!, value, what);
    throw invalid(`${what} names the message field "${field.name}", which a string cannot fill`);
  }
  if (field.type === "bool") {
    if (value === "true") return true;
    if (value === "false") return false;
    throw invalid(`${what}: expected true or false, got "${value}"`);
  }
  // Numbers stay strings: the JSON mapping accepts numeric strings and protojson range-checks them.
  return value;
}

/** The JSON of an unset field, for a response_body that names one (protojson omits defaults). */
function defaultJson(field: protobuf.Field): unknown {
  if (field.map) return {};
  if (field.repeated) return [];
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return {};
  if (resolved instanceof protobuf.Enum) return Object.keys(resolved.values).find((k) => resolved.values[k] === 0) ?? 0;
  switch (field.type) {
    case "bool":
      return false;
    case "string":
    case "bytes":
      return "";
    case "int64":
    case "uint64":
    case "sint64":
    case "fixed64":
    case "sfixed64":
      return "0";
    default:
      return 0;
  }
}
