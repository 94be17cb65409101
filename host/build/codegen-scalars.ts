// How each protobuf scalar type looks in AssemblyScript and on the wire.
// Numbers are google.protobuf.FieldDescriptorProto.Type values.

export const TYPE_GROUP = 10;
export const TYPE_MESSAGE = 11;
export const TYPE_ENUM = 14;

export interface Scalar {
  /** AssemblyScript type of the field. */
  asType: string;
  /** Wire type of one value: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wireType: number;
  /** Name of the Writer/Reader method that moves one value. */
  method: string;
  /** Initializer for the proto3 default. */
  zero: string;
  /** Expression that is true when `v` differs from the default, so it must be written. */
  nonDefault: (v: string) => string;
  /** Varint and fixed-width types can be packed into one length-delimited run. */
  packable: boolean;
}

const notZero = (v: string) => `${v} != 0`;
const num = (asType: string, wireType: number, method: string): Scalar => ({
  asType,
  wireType,
  method,
  zero: "0",
  nonDefault: notZero,
  packable: true,
});

// Floats compare by bits: -0.0 is not the default and must be written, and NaN != 0
// would hold anyway but reads oddly.
const SCALARS: Record<number, Scalar> = {
  1: { ...num("f64", 1, "double"), nonDefault: (v) => `reinterpret<u64>(${v}) != 0` },
  2: { ...num("f32", 5, "float"), nonDefault: (v) => `reinterpret<u32>(${v}) != 0` },
  3: num("i64", 0, "int64"),
  4: num("u64", 0, "uint64"),
  5: num("i32", 0, "int32"),
  6: num("u64", 1, "fixed64"),
  7: num("u32", 5, "fixed32"),
  8: { ...num("bool", 0, "bool"), zero: "false", nonDefault: (v) => v },
  9: { asType: "string", wireType: 2, method: "string", zero: '""', nonDefault: (v) => `${v}.length != 0`, packable: false },
  12: {
    asType: "Uint8Array",
    wireType: 2,
    method: "bytes",
    // One shared empty array (proto/reader.ts): a bytes field costs no allocation until set.
    zero: "__pb.EMPTY_BYTES",
    nonDefault: (v) => `${v}.length != 0`,
    packable: false,
  },
  13: num("u32", 0, "uint32"),
  // Enums are open in proto3: any int32 is kept, so the field is a plain i32.
  14: num("i32", 0, "int32"),
  15: num("i32", 5, "sfixed32"),
  16: num("i64", 1, "sfixed64"),
  17: num("i32", 0, "sint32"),
  18: num("i64", 0, "sint64"),
};

export function scalarOf(type: number): Scalar | undefined {
  return SCALARS[type];
}

/**
 * The initializer for a proto2 `[default = ...]`, as protoc writes it in the descriptor
 * (numbers in decimal, "inf"/"nan", enum values by name, strings unescaped).
 */
export function defaultLiteral(scalar: Scalar, text: string, enumValue: (name: string) => number): string {
  switch (scalar.asType) {
    case "string":
      return JSON.stringify(text);
    case "bool":
      return text === "true" ? "true" : "false";
    case "Uint8Array":
      // Bytes defaults are C-escaped; rare enough that the proto3 default is used.
      return scalar.zero;
    case "f32":
    case "f64": {
      const inf = text === "inf" ? "Infinity" : text === "-inf" ? "-Infinity" : text === "nan" ? "NaN" : null;
      return inf ?? `<${scalar.asType}>${text}`;
    }
  }
  if (/^-?\d+$/.test(text)) return `<${scalar.asType}>${text}`;
  return String(enumValue(text));
}
