// Regenerates guest-sdk/assembly/abi/messages.ts (the guest's ABI message classes) from
// proto/keystate/abi.proto with the same generator entity modules use.
// Run: node --import tsx scripts/generate-sdk-abi.ts
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compileProtos } from "../host/build/buf.js";
import { generateMessages } from "../host/build/codegen-messages.js";
import { decodeDescriptorSet } from "../host/proto/descriptors.js";
import { PROTO_DIR } from "../host/proto/proto-root.js";

const files = ["keystate/abi.proto"];
const set = decodeDescriptorSet(await compileProtos({ roots: [PROTO_DIR], files }));
const { source } = generateMessages(set, { files, sdkImport: "../proto/index" });
const target = join(PROTO_DIR, "..", "guest-sdk", "assembly", "abi", "messages.ts");
await writeFile(target, source);
console.log(`wrote ${target}`);
