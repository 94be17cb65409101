// Placeholder: replaced by the component builder (issue 15).
import type { BuildResult } from "./build-module.js";
import type { ModuleConfig } from "./module-config.js";

export async function buildComponentModule(_dir: string, _config: ModuleConfig, _options: { outFile?: string }): Promise<BuildResult> {
  throw new Error("not built yet");
}
