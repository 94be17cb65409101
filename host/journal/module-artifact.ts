// One stored row per module artifact, the same in both backends: a format byte, then
//   format 2: u32 length + JSON header (key, upload hash and size), u32 length + detail as
//             UTF-8, then the artifact's bytes;
//   format 1: u32 length + JSON header that also holds the detail, then the bytes.
// The bytes stay as they are, so a 16 MiB module is never turned into JSON or base64. The
// detail is kept out of the header since it carries the module's decoded description
// (runtime/module-description.ts, ~35 KB for the shopping cart): as a JSON string in the
// header it was unescaped on every read (~170 us of a ~2.5 ms cold start); as UTF-8 it is
// one decode, and its reader parses only what it needs of it.
import type { ModuleArtifact } from "./types.js";

const FORMAT_DETAIL_APART = 2;
const FORMAT_DETAIL_IN_HEADER = 1;
const FORMAT_BYTES = 1;
const LENGTH_BYTES = 4;

interface Header {
  key: string;
  uploadHash: string;
  uploadSize: number;
}

export function encodeArtifact(artifact: ModuleArtifact): Buffer {
  const header: Header = { key: artifact.key, uploadHash: artifact.uploadHash, uploadSize: artifact.uploadSize };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const detail = Buffer.from(artifact.detail, "utf8");
  const out = Buffer.allocUnsafe(FORMAT_BYTES + LENGTH_BYTES + json.length + LENGTH_BYTES + detail.length + artifact.bytes.length);
  let at = out.writeUInt8(FORMAT_DETAIL_APART, 0);
  at = out.writeUInt32BE(json.length, at);
  at += json.copy(out, at);
  at = out.writeUInt32BE(detail.length, at);
  at += detail.copy(out, at);
  out.set(artifact.bytes, at);
  return out;
}

/** The artifact in `row`, or undefined when the row is not one this code wrote (then the caller rebuilds it). */
export function decodeArtifact(row: Buffer): ModuleArtifact | undefined {
  const format = row.length > FORMAT_BYTES + LENGTH_BYTES ? row.readUInt8(0) : undefined;
  if (format === FORMAT_DETAIL_IN_HEADER) {
    const header = readPart(row, FORMAT_BYTES);
    if (!header) return undefined;
    return { ...(JSON.parse(header.text) as Header & { detail: string }), bytes: row.subarray(header.end) };
  }
  if (format !== FORMAT_DETAIL_APART) return undefined;
  const header = readPart(row, FORMAT_BYTES);
  const detail = header && readPart(row, header.end);
  if (!detail) return undefined;
  return { ...(JSON.parse(header.text) as Header), detail: detail.text, bytes: row.subarray(detail.end) };
}

/** The length-prefixed UTF-8 text at `start`, and where it ends; undefined when the row is too short for it. */
function readPart(row: Buffer, start: number): { text: string; end: number } | undefined {
  if (start + LENGTH_BYTES > row.length) return undefined;
  const end = start + LENGTH_BYTES + row.readUInt32BE(start);
  if (end > row.length) return undefined;
  return { text: row.toString("utf8", start + LENGTH_BYTES, end), end };
}
