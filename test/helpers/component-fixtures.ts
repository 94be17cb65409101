// Builds JavaScript component modules for tests, cached: componentize-js takes 5-20 s per
// build (it snapshots a whole JavaScript engine), so a build is kept in the OS temp dir under
// a hash of everything that goes into it (the module's files, proto/keystate.wit, the
// builder's source, the componentize-js version) and reused while none of that changed
// (build-cache.ts keeps the files; its key for other modules covers the whole bundled CLI, which
// would rebuild these 5-20 s components after any change to the host).
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { cachedArtifact, filesUnder, hashFiles } from "./build-cache.js";
import { KEYSTATE_BIN, REPO_ROOT } from "./node-process.js";
import { assembleModule, parseSections } from "./wasm-sections.js";

const run = promisify(execFile);
export const COMPONENT_FIXTURES = join(REPO_ROOT, "test", "fixtures", "components");

async function cacheKey(moduleDir: string, mode: string): Promise<string> {
  const hash = createHash("sha256").update(mode);
  const inputs = [
    ...(await filesUnder(moduleDir)),
    join(REPO_ROOT, "proto", "keystate.wit"),
    join(REPO_ROOT, "host", "build", "build-component.ts"),
    join(REPO_ROOT, "node_modules", "@bytecodealliance", "componentize-js", "package.json"),
  ];
  await hashFiles(hash, inputs, REPO_ROOT);
  return hash.digest("hex").slice(0, 24);
}

async function cached(moduleDir: string, mode: string, build: (out: string) => Promise<void>): Promise<string> {
  return cachedArtifact(`${relative(REPO_ROOT, moduleDir)}-${mode}`, await cacheKey(moduleDir, mode), build);
}

/** `keystate build` of a JavaScript module (the real CLI), cached; the .wasm path. */
export function builtComponent(moduleDir: string): Promise<string> {
  return cached(moduleDir, "keystate-build", async (out) => {
    await run(process.execPath, [KEYSTATE_BIN, "build", moduleDir, "-o", out], { cwd: REPO_ROOT, timeout: 120_000 });
  });
}

/**
 * The module's src/index.js componentized the way componentize-js does by default, WASI
 * features on (stdio, clocks, random, http), with the module's Keystate sections appended:
 * what a user gets building a component outside `keystate build`. Cached like builtComponent.
 */
export function wasiComponent(moduleDir: string): Promise<string> {
  return cached(moduleDir, "wasi", async (out) => {
    const { componentize } = await import("@bytecodealliance/componentize-js");
    const { compileProtos } = await import("../../host/build/buf.js");
    const { encodeManifest } = await import("../../host/build/build-module.js");
    const { appendCustomSections } = await import("../../host/build/custom-sections.js");
    const { readModuleConfig } = await import("../../host/build/module-config.js");
    const { PROTO_DIR } = await import("../../host/proto/proto-root.js");
    const config = await readModuleConfig(moduleDir);
    const witWorld = await readFile(join(REPO_ROOT, "proto", "keystate.wit"), "utf8");
    const options = { sourcePath: join(moduleDir, "src", "index.js"), witWorld, worldName: "entity" };
    const { component } = await componentize(options);
    const descriptor = await compileProtos({ roots: [join(moduleDir, "proto"), PROTO_DIR], files: config.protos });
    await writeFile(out, appendCustomSections(component, [
      { name: "keystate.descriptor", payload: descriptor },
      { name: "keystate.manifest", payload: encodeManifest(config) },
    ]));
  });
}

/** The component with its custom section `name` removed. */
export function withoutComponentSection(component: Uint8Array, name: string): Uint8Array {
  const bytes = assembleModule(parseSections(component).filter((s) => s.name !== name));
  bytes.set(component.subarray(4, 8), 4); // the component's layer/version, not a core module's
  return bytes;
}
