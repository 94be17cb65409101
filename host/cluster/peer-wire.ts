// The peer link's frames: how a forwarded unary call and its answer cross one TCP connection
// between two nodes of a cluster. Length-prefixed binary frames, each naming the call it
// belongs to, so many calls share a connection in any order. It carries exactly what the
// gRPC hop carried (method path, request bytes, deadline, metadata; status, details,
// trailers, reply bytes), so the receiving node runs the same unary handler either way.
//
//   frame    u32 length of what follows | u8 type | u32 call id | body
//   CALL     f64 ms left until the deadline (NaN: none) | str path | kv metadata | payload (the rest)
//   CANCEL   (empty)
//   REPLY    kv trailers | payload (the rest)
//   FAIL     u16 gRPC status | str details | kv trailers
//   PING     (empty): answered by PONG with the same id
//   str      u32 byte length | UTF-8;   kv   u16 count | count × (str key, str value)
// All integers little-endian.

import { NO_VALUES, metadataValues, type MetadataReader, type MetadataValue } from "../grpc-http2/metadata.js";

export const enum FrameType {
  Call = 1,
  Cancel = 2,
  Reply = 3,
  Fail = 4,
  Ping = 5,
  Pong = 6,
}

/** Bytes of a frame's length prefix, type and call id. */
const HEADER_BYTES = 9;

export type Pairs = ReadonlyArray<readonly [string, string]>;

export interface CallFrame {
  readonly type: FrameType.Call;
  readonly id: number;
  /** Milliseconds left when it was sent; undefined without a deadline. */
  readonly timeoutMs: number | undefined;
  readonly path: string;
  readonly metadata: Pairs;
  readonly payload: Buffer;
}

export interface ReplyFrame {
  readonly type: FrameType.Reply;
  readonly id: number;
  readonly trailers: Pairs;
  readonly payload: Buffer;
}

export interface FailFrame {
  readonly type: FrameType.Fail;
  readonly id: number;
  readonly code: number;
  readonly details: string;
  readonly trailers: Pairs;
}

export interface BareFrame {
  readonly type: FrameType.Cancel | FrameType.Ping | FrameType.Pong;
  readonly id: number;
}

export type Frame = CallFrame | ReplyFrame | FailFrame | BareFrame;

/** Metadata (a CALL's) or trailers (a REPLY's or FAIL's) read from their pairs; `-bin` values travel base64, as in HTTP/2. */
export class PairsReader implements MetadataReader {
  constructor(readonly pairs: Pairs) {}

  get(key: string): MetadataValue[] {
    const name = key.toLowerCase();
    const pairs = this.pairs;
    let raw: string[] | undefined;
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i]!;
      if (pair[0] === name) (raw ??= []).push(pair[1]);
    }
    return raw === undefined ? NO_VALUES : metadataValues(name, raw);
  }
}

/** A frame that breaks the format: the connection it came on is closed (the other side is not a Keystate node, or a broken one). */
export class FrameError extends Error {}

function pairsBytes(pairs: Pairs): number {
  let size = 2;
  for (const [key, value] of pairs) size += 8 + Buffer.byteLength(key) + Buffer.byteLength(value);
  return size;
}

class Writer {
  pos = HEADER_BYTES;
  constructor(readonly buf: Buffer, type: FrameType, id: number) {
    buf.writeUInt32LE(buf.length - 4, 0);
    buf[4] = type;
    buf.writeUInt32LE(id, 5);
  }

  str(value: string): void {
    const length = this.buf.write(value, this.pos + 4, "utf8");
    this.buf.writeUInt32LE(length, this.pos);
    this.pos += 4 + length;
  }

  pairs(pairs: Pairs): void {
    this.buf.writeUInt16LE(pairs.length, this.pos);
    this.pos += 2;
    for (const [key, value] of pairs) {
      this.str(key);
      this.str(value);
    }
  }

  rest(payload: Uint8Array): Buffer {
    this.buf.set(payload, this.pos);
    return this.buf;
  }
}

export function encodeCall(id: number, path: string, timeoutMs: number | undefined, metadata: Pairs, payload: Uint8Array): Buffer {
  const w = new Writer(Buffer.allocUnsafe(HEADER_BYTES + 8 + 4 + Buffer.byteLength(path) + pairsBytes(metadata) + payload.length), FrameType.Call, id);
  w.buf.writeDoubleLE(timeoutMs ?? Number.NaN, w.pos);
  w.pos += 8;
  w.str(path);
  w.pairs(metadata);
  return w.rest(payload);
}

export function encodeReply(id: number, trailers: Pairs, payload: Uint8Array): Buffer {
  const w = new Writer(Buffer.allocUnsafe(HEADER_BYTES + pairsBytes(trailers) + payload.length), FrameType.Reply, id);
  w.pairs(trailers);
  return w.rest(payload);
}

export function encodeFail(id: number, code: number, details: string, trailers: Pairs): Buffer {
  const w = new Writer(Buffer.allocUnsafe(HEADER_BYTES + 2 + 4 + Buffer.byteLength(details) + pairsBytes(trailers)), FrameType.Fail, id);
  w.buf.writeUInt16LE(code, w.pos);
  w.pos += 2;
  w.str(details);
  w.pairs(trailers);
  return w.buf;
}

export function encodeBare(type: FrameType.Cancel | FrameType.Ping | FrameType.Pong, id: number): Buffer {
  return new Writer(Buffer.allocUnsafe(HEADER_BYTES), type, id).buf;
}

class Reader {
  pos = HEADER_BYTES;
  constructor(readonly buf: Buffer) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new FrameError(`a frame ends early (needs ${n} bytes at ${this.pos} of ${this.buf.length})`);
  }

  str(): string {
    this.need(4);
    const length = this.buf.readUInt32LE(this.pos);
    this.need(4 + length);
    const value = this.buf.toString("utf8", this.pos + 4, this.pos + 4 + length);
    this.pos += 4 + length;
    return value;
  }

  pairs(): Array<[string, string]> {
    this.need(2);
    const count = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < count; i++) pairs.push([this.str(), this.str()]);
    return pairs;
  }

  rest(): Buffer {
    return this.buf.subarray(this.pos);
  }
}

function decodeFrame(buf: Buffer): Frame {
  const type = buf[4]!;
  const id = buf.readUInt32LE(5);
  const r = new Reader(buf);
  switch (type) {
    case FrameType.Call: {
      r.need(8);
      const timeout = buf.readDoubleLE(r.pos);
      r.pos += 8;
      const path = r.str();
      const metadata = r.pairs();
      return { type, id, timeoutMs: Number.isNaN(timeout) ? undefined : timeout, path, metadata, payload: r.rest() };
    }
    case FrameType.Reply: {
      const trailers = r.pairs();
      return { type, id, trailers, payload: r.rest() };
    }
    case FrameType.Fail: {
      r.need(2);
      const code = buf.readUInt16LE(r.pos);
      r.pos += 2;
      const details = r.str();
      return { type, id, code, details, trailers: r.pairs() };
    }
    case FrameType.Cancel:
    case FrameType.Ping:
    case FrameType.Pong:
      return { type, id };
    default:
      throw new FrameError(`unknown frame type ${type}`);
  }
}

/** Cuts a byte stream into frames; a frame larger than `maxFrameBytes` is a FrameError. */
export class FrameReader {
  readonly #maxFrameBytes: number;
  #pending: Buffer | undefined;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** The whole frames `chunk` completes, in order. */
  push(chunk: Buffer): Frame[] {
    let buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Frame[] = [];
    while (buf.length >= 4) {
      const length = buf.readUInt32LE(0);
      if (length < HEADER_BYTES - 4 || length > this.#maxFrameBytes) throw new FrameError(`a frame of ${length} bytes (at most ${this.#maxFrameBytes})`);
      if (buf.length < 4 + length) break;
      frames.push(decodeFrame(buf.subarray(0, 4 + length)));
      buf = buf.subarray(4 + length);
    }
    this.#pending = buf.length === 0 ? undefined : Buffer.from(buf);
    return frames;
  }
}
