// Deploy-time artifacts: a deploy stores the instrumented module next to the upload, and a
// node that loads the version later (start-up, rollback) compiles that artifact instead of
// validating and instrumenting the upload again, unless its limits call for another one.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { isKeystateError, KeystateError } from "../../host/errors.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import type { Store } from "../../host/journal/types.js";
import { setLogLevel } from "../../host/log.js";
import { DEFAULT_GUEST_LIMITS, type GuestLimits } from "../../host/runtime/guest-limits.js";
import { artifactKey, compileModule, hashModule } from "../../host/runtime/loaded-module.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

// The failure tests log a warning each on purpose.
setLogLevel("error");
const counterWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "counter"));
const SMALL_MEMORY: GuestLimits = { ...DEFAULT_GUEST_LIMITS, maxMemoryPages: 64 };

async function openStore(t: ExecutionContext): Promise<Store> {
  const store = await EmbeddedStore.open(await tempDirFor(t, "artifacts"));
  t.teardown(() => store.close());
  return store;
}

/** A fresh node's registry on `store` after start-up: what it loaded, by module name. */
async function startUp(store: Store, guestLimits?: GuestLimits) {
  const registry = new ModuleRegistry(store, { guestLimits });
  await registry.loadFromStore();
  return new Map(registry.modules.map((m) => [m.name, m]));
}

test("a deploy stores the artifact; a node starting later compiles it without instrumenting", async (t) => {
  const store = await openStore(t);
  const bytes = await readFile(counterWasm());
  const deployed = await new ModuleRegistry(store).deploy(bytes);
  const artifact = await store.modules.getArtifact(deployed.name, deployed.version, artifactKey(DEFAULT_GUEST_LIMITS));
  t.truthy(artifact);
  t.is(artifact!.uploadHash, hashModule(bytes));
  t.is(artifact!.uploadSize, bytes.length);
  // The upload stays what users roll back to and download.
  t.deepEqual([...(await store.modules.getBytes(deployed.name, deployed.version))!], [...bytes]);

  const loaded = (await startUp(store)).get(deployed.name);
  t.is(loaded?.loadedFrom, "artifact");
  t.is(loaded?.hash, deployed.hash);
  t.is(loaded?.size, bytes.length);
  t.is(loaded?.limits.maxMemoryPages, DEFAULT_GUEST_LIMITS.maxMemoryPages);
  t.true(WebAssembly.Module.exports(loaded!.compiled).some((e) => e.name === "keystate_fuel"), "the artifact is the instrumented module");
});

test("an artifact made for other limits is ignored, and one for this node's limits is made and reused", async (t) => {
  const store = await openStore(t);
  const deployed = await new ModuleRegistry(store).deploy(await readFile(counterWasm()));
  const small = artifactKey(SMALL_MEMORY);
  t.not(small, artifactKey(DEFAULT_GUEST_LIMITS));

  const first = (await startUp(store, SMALL_MEMORY)).get(deployed.name);
  t.is(first?.loadedFrom, "upload");
  t.is(first?.limits.maxMemoryPages, 64, "instrumented for this node's memory cap, not the deployer's");
  t.truthy(await store.modules.getArtifact(deployed.name, deployed.version, small), "stored for next time");

  t.is((await startUp(store, SMALL_MEMORY)).get(deployed.name)?.loadedFrom, "artifact");
  // The deployer's artifact is still there for nodes with its limits.
  t.is((await startUp(store)).get(deployed.name)?.loadedFrom, "artifact");
});

test("a store written before artifacts existed still loads, and gets the artifact", async (t) => {
  const store = await openStore(t);
  const bytes = await readFile(counterWasm());
  const { name } = await compileModule(bytes);
  // What an older node's deploy wrote: the upload and its hash, no artifact.
  const info = await store.modules.addVersion(name, bytes, hashModule(bytes), { activate: true });
  const first = (await startUp(store)).get(name);
  t.is(first?.loadedFrom, "upload");
  t.is(first?.hash, hashModule(bytes));
  t.truthy(await store.modules.getArtifact(name, info.version, artifactKey(DEFAULT_GUEST_LIMITS)));
  t.is((await startUp(store)).get(name)?.loadedFrom, "artifact");
});

test("a rollback compiles the stored artifact of the older version", async (t) => {
  const store = await openStore(t);
  const registry = new ModuleRegistry(store);
  const bytes = await readFile(counterWasm());
  const v1 = await registry.deploy(bytes);
  await registry.deploy(bytes);
  const rolledBack = await registry.activateVersion(v1.name, v1.version);
  t.is(rolledBack.version, v1.version);
  const loaded = registry.modules.find((m) => m.name === v1.name);
  t.is(loaded?.loadedFrom, "artifact");
  t.is(loaded?.version, v1.version);
});

test("a registry keeping 2 versions removes older ones as it deploys; a rollback reaches only what is kept", async (t) => {
  const store = await openStore(t);
  const registry = new ModuleRegistry(store, { keepVersions: 2 });
  const bytes = await readFile(counterWasm());
  const { name } = await registry.deploy(bytes);
  const stored = async () => (await store.modules.list()).find((m) => m.name === name)?.versions.map((v) => v.version);
  await registry.deploy(bytes);
  t.deepEqual(await stored(), [1, 2]);
  await registry.deploy(bytes);
  t.deepEqual(await stored(), [2, 3]);
  // Rolled back to 2, then 4 deployed: 4 is active, so 2 is no longer kept for being active.
  t.is((await registry.activateVersion(name, 2)).version, 2);
  await registry.deploy(bytes);
  t.deepEqual(await stored(), [3, 4]);
  const err = await t.throwsAsync(registry.activateVersion(name, 2));
  t.true(isKeystateError(err, "MODULE_NOT_FOUND"), String(err));
  t.is(registry.modules.find((m) => m.name === name)?.version, 4, "a failed rollback changes nothing");
  t.is((await registry.activateVersion(name, 3)).version, 3);
  // A registry keeping every version (the default) removes none.
  await new ModuleRegistry(store).deploy(bytes);
  t.deepEqual(await stored(), [3, 4, 5]);
});

/** `store` with some module-store calls replaced. */
function withModules(store: Store, overrides: Partial<Store["modules"]>): Store {
  const modules: Store["modules"] = Object.assign(Object.create(store.modules) as Store["modules"], overrides);
  return Object.assign(Object.create(store) as Store, { modules });
}

test("an artifact that cannot be stored costs only time: the version still loads from its upload", async (t) => {
  const store = await openStore(t);
  const deployed = await new ModuleRegistry(store).deploy(await readFile(counterWasm()));
  const failing = withModules(store, {
    putArtifact: () => Promise.reject(new KeystateError("STORAGE_UNAVAILABLE", "storage unavailable: module artifact write")),
  });
  const loaded = (await startUp(failing, SMALL_MEMORY)).get(deployed.name);
  t.is(loaded?.loadedFrom, "upload");
  t.is(await store.modules.getArtifact(deployed.name, deployed.version, artifactKey(SMALL_MEMORY)), undefined);
});

test("a store that cannot be read fails start-up instead of starting without the module", async (t) => {
  const store = await openStore(t);
  await new ModuleRegistry(store).deploy(await readFile(counterWasm()));
  const failing = withModules(store, {
    getArtifact: () => Promise.reject(new KeystateError("STORAGE_UNAVAILABLE", "storage unavailable: module artifact read")),
  });
  const err = await t.throwsAsync(new ModuleRegistry(failing).loadFromStore());
  t.true(isKeystateError(err, "STORAGE_UNAVAILABLE"));
});
