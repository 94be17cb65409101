// The stored row of a module artifact (host/journal/module-artifact.ts): what a node writes
// reads back exactly, a row written by an earlier release (detail inside the JSON header)
// still reads, and a damaged or unknown row reads as absent, so the caller rebuilds it.
import test from "ava";
import { decodeArtifact, encodeArtifact } from "../../host/journal/module-artifact.js";
import type { ModuleArtifact } from "../../host/journal/types.js";

const artifact: ModuleArtifact = {
  key: "instrument-v9/pages-512/fuel-start-1",
  uploadHash: "ab".repeat(32),
  uploadSize: 46799,
  bytes: Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff]),
  // Several lines, quotes, backslashes and characters beyond ASCII, as a carried description can hold.
  detail: '{"totalMs":1.5}\n{"manifest":{"name":"café \\"cart\\""}}\n[{"name":"a.proto"}]',
};

function plain(a: ModuleArtifact | undefined) {
  return a && { ...a, bytes: [...a.bytes] };
}

/** A row as the release before this one wrote it: format 1, the detail inside the JSON header. */
function formatOneRow(a: ModuleArtifact): Buffer {
  const json = Buffer.from(JSON.stringify({ key: a.key, uploadHash: a.uploadHash, uploadSize: a.uploadSize, detail: a.detail }));
  const head = Buffer.alloc(5);
  head.writeUInt8(1, 0);
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json, a.bytes]);
}

test("a row reads back as the artifact it was made from, bytes untouched", (t) => {
  const row = encodeArtifact(artifact);
  t.deepEqual(plain(decodeArtifact(row)), plain(artifact));
  t.deepEqual([...row.subarray(row.length - artifact.bytes.length)], [...artifact.bytes], "the module's bytes end the row as they are");
});

test("a row written by the earlier format (detail in the header) still reads", (t) => {
  t.deepEqual(plain(decodeArtifact(formatOneRow(artifact))), plain(artifact));
});

test("a truncated row, an empty one or one of an unknown format reads as absent", (t) => {
  const row = encodeArtifact(artifact);
  const headerLength = row.readUInt32BE(1);
  for (const damaged of [row.subarray(0, 3), row.subarray(0, 5 + headerLength + 2), Buffer.alloc(0), Buffer.concat([Buffer.from([9]), row.subarray(1)])]) {
    t.is(decodeArtifact(damaged), undefined);
  }
  t.is(decodeArtifact(formatOneRow(artifact).subarray(0, 20)), undefined);
});
