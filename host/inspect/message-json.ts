// Stored protobuf bytes (a state, an event payload) as JSON through the module's own
// descriptors, with the proto3 JSON mapping the HTTP/JSON ingress uses for replies. Bytes
// the module's API cannot decode are still shown, as base64, with a note saying why.
import type { JsonCodec } from "../ingress/json-codec.js";
import { bufferOf } from "../buffer-of.js";

export type DecodedMessage =
  | { readonly json: unknown }
  | { readonly base64: string; readonly note: string };

export function decodeMessage(codec: JsonCodec, typeName: string, bytes: Uint8Array): DecodedMessage {
  const base64 = bufferOf(bytes).toString("base64");
  if (!typeName) return { base64, note: "the module declares no message type for these bytes; shown as base64" };
  if (!codec.hasMessage(typeName)) return { base64, note: `the module's API defines no message ${typeName}; shown as base64` };
  try {
    return { json: codec.messageJson(typeName, bytes) };
  } catch {
    return { base64, note: `the bytes do not decode as ${typeName}; shown as base64` };
  }
}
