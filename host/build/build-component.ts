// `keystate build` for module.json `"language": "javascript"`: src/index.js -> a WebAssembly
// component (componentize-js, against the `entity` world of proto/keystate.wit) carrying the
// same custom sections as a core module (API descriptor, manifest) at its top level.
//
// Every WASI feature of the JavaScript engine (StarlingMonkey) is disabled, so the component
// imports nothing but `keystate:entity/host` (see host/component/README.md): console.*,
// fetch(), timers of the clock and crypto randomness are simply not there for the entity.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PROTO_DIR } from "../proto/proto-root.js";
import { compileProtos } from "./buf.js";
import { phaseTimer, writeModule, type BuildResult } from "./build-module.js";
import type { ModuleConfig } from "./module-config.js";

/** The WIT world a JavaScript entity is componentized against. */
export const ENTITY_WORLD = "entity";
/** The engine features componentize-js would otherwise wire to WASI imports. */
const DISABLED_FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"] as const;

export async function buildComponentModule(dir: string, config: ModuleConfig, options: { outFile?: string }): Promise<BuildResult> {
  const { timingsMs, time } = phaseTimer();
  const descriptorBytes = await time("protos", () => compileProtos({ roots: [join(dir, "proto"), PROTO_DIR], files: config.protos }));
  const component = await time("componentize", () => componentizeEntity(join(dir, "src", "index.js")));
  return writeModule(dir, config, component, descriptorBytes, options, timingsMs);
}

/**
 * Componentizes one JavaScript module against the entity world. The WIT goes in as source
 * (`witWorld`): componentize-js reads a `witPath` through a WASI shim without preopens, which
 * fails (os error 44).
 */
export async function componentizeEntity(sourcePath: string): Promise<Uint8Array> {
  const witWorld = await readFile(join(PROTO_DIR, "keystate.wit"), "utf8");
  const { componentize } = await import("@bytecodealliance/componentize-js");
  try {
    // `witWorld` is accepted by componentize() but missing from its option types.
    const options = { sourcePath, witWorld, worldName: ENTITY_WORLD, disableFeatures: [...DISABLED_FEATURES] };
    const { component } = await componentize(options);
    return component;
  } catch (err) {
    throw new Error(`componentize-js could not build ${sourcePath}: ${(err as Error).message}`, { cause: err });
  }
}
