// What a component must import and export to be an entity (proto/keystate.wit, world
// `entity`): it may import `keystate:entity/host` only, and exports handle-command and replay.
import { KeystateError } from "../errors.js";

export const HOST_INTERFACE = "keystate:entity/host";
export const ALLOWED_COMPONENT_IMPORTS: ReadonlySet<string> = new Set([HOST_INTERFACE]);
/** The world's exports as jco names them. */
export const REQUIRED_COMPONENT_EXPORTS = ["handleCommand", "replay"] as const;

export function checkComponentInterface(imports: readonly string[], exports: readonly string[]): void {
  const unknown = imports.filter((name) => !ALLOWED_COMPONENT_IMPORTS.has(name.replace(/@[^/]*$/, "")));
  if (unknown.length > 0) {
    throw new KeystateError(
      "INVALID_MODULE",
      `the component imports ${unknown.join(", ")}, which Keystate does not provide: an entity component may import only ${HOST_INTERFACE} ` +
        "(no WASI: no filesystem, network, environment or clocks). Build it with `keystate build`, which disables the JavaScript engine's WASI features",
    );
  }
  const exported = new Set(exports);
  const missing = REQUIRED_COMPONENT_EXPORTS.filter((name) => !exported.has(name));
  if (missing.length > 0) {
    throw new KeystateError(
      "INVALID_MODULE",
      `the component does not export ${missing.join(", ")} (world "entity" of proto/keystate.wit: handle-command and replay)`,
    );
  }
}
