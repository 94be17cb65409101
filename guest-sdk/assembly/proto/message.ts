// Base class of generated message classes and the encode/decode entry points.
import { Reader } from "./reader";
import { Writer } from "./writer";

export abstract class Message {
  /** Fully qualified protobuf name, e.g. "shoppingcart.Cart". */
  abstract typeName(): string;
  /** Appends this message's fields (no length prefix) to `w`. */
  abstract encodeTo(w: Writer): void;
  /**
   * Reads fields from `r` until `end`, merging into this message as protobuf requires
   * (scalars overwrite, repeated fields append, embedded messages merge).
   * Malformed input sets `r.error`; the message is then partly filled and must be dropped.
   */
  abstract mergeFrom(r: Reader, end: i32): void;
}

// Reused by encode(): a guest encodes one message at a time, and finish() copies out.
const sharedWriter = new Writer();

/** Encodes a message to a fresh byte array. */
export function encode(m: Message): Uint8Array {
  sharedWriter.reset();
  m.encodeTo(sharedWriter);
  return sharedWriter.finish();
}

/** Decodes `bytes` into `m`; false when the input is malformed. */
export function mergeInto(m: Message, bytes: Uint8Array): bool {
  const r = new Reader(bytes);
  m.mergeFrom(r, r.end);
  return !r.error && r.pos == r.end;
}

/** Decodes a whole message; null when the input is malformed. Never traps. */
export function decode<T extends Message>(bytes: Uint8Array): T | null {
  const m = instantiate<T>();
  return mergeInto(m, bytes) ? m : null;
}

/**
 * Reads a length-delimited embedded message, merging it into `m` (used by generated
 * code, which passes the field's current value or a new instance).
 */
export function readMessage(r: Reader, m: Message): void {
  const outer = r.beginMessage();
  if (!r.error) m.mergeFrom(r, r.end);
  r.endMessage(outer);
}

/** Writes `m` as a length-delimited embedded message field (used by generated code). */
export function writeMessage(w: Writer, key: u32, m: Message): void {
  w.uint32(key);
  const mark = w.fork();
  m.encodeTo(w);
  w.ldelim(mark);
}
