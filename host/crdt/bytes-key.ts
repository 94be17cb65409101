// Set elements, register values and map keys are opaque user bytes. JavaScript maps compare
// Uint8Arrays by identity, so each one is keyed by its lowercase hex string: equal bytes give
// equal keys, and sorting keys sorts the bytes lexicographically (a canonical order).
import { refuse } from "./errors.js";
import { bufferOf } from "../buffer-of.js";

export type BytesKey = string;

export function bytesKey(bytes: Uint8Array): BytesKey {
  if (!(bytes instanceof Uint8Array)) refuse(`expected bytes (a Uint8Array), got ${typeof bytes}`);
  return bufferOf(bytes).toString("hex");
}

/** A private copy, so that a caller reusing its buffer cannot change stored state. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(bufferOf(a), bufferOf(b));
}

/** Code-unit order, the same on every node, for keys that must be listed canonically. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
