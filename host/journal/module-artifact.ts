// One stored row per module artifact, the same in both backends: a format byte, a u32
// length and a JSON header (key, upload hash and size, detail), then the artifact's bytes
// as they are, so a 16 MiB module is never turned into JSON or base64.
import type { ModuleArtifact } from "./types.js";

const FORMAT = 1;
const HEAD_BYTES = 5;

interface Header {
  key: string;
  uploadHash: string;
  uploadSize: number;
  detail: string;
}

export function encodeArtifact(artifact: ModuleArtifact): Buffer {
  const header: Header = { key: artifact.key, uploadHash: artifact.uploadHash, uploadSize: artifact.uploadSize, detail: artifact.detail };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = Buffer.allocUnsafe(HEAD_BYTES + json.length + artifact.bytes.length);
  out.writeUInt8(FORMAT, 0);
  out.writeUInt32BE(json.length, 1);
  json.copy(out, HEAD_BYTES);
  out.set(artifact.bytes, HEAD_BYTES + json.length);
  return out;
}

/** The artifact in `row`, or undefined when the row is not one this code wrote (then the caller rebuilds it). */
export function decodeArtifact(row: Buffer): ModuleArtifact | undefined {
  if (row.length < HEAD_BYTES || row.readUInt8(0) !== FORMAT) return undefined;
  const end = HEAD_BYTES + row.readUInt32BE(1);
  if (end > row.length) return undefined;
  const header = JSON.parse(row.toString("utf8", HEAD_BYTES, end)) as Header;
  return { ...header, bytes: row.subarray(end) };
}
