// A deploy-time artifact carries its module's manifest and API descriptors decoded, so a
// node loading it does not run protobufjs over the sections again; an artifact written
// before that, or one JSON cannot carry exactly, is decoded from its sections as before.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import { isKeystateError } from "../../host/errors.js";
import { deepFreeze } from "../../host/proto/descriptors.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import type { ModuleArtifact, Store } from "../../host/journal/types.js";
import { setLogLevel } from "../../host/log.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import type { InstrumentReport } from "../../host/runtime/instrument.js";
import { artifactKey, describeArtifact, type LoadedModule } from "../../host/runtime/loaded-module.js";
import { decodeArtifactDetail, decodeDescription, encodeArtifactDetail, type ModuleDescription } from "../../host/runtime/module-description.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import type { ApiModel } from "../../host/runtime/service-model.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

setLogLevel("error");
// The shopping cart: entity keys, HTTP rules and several message types in its descriptors.
const cartWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "shopping-cart"));
const KEY = artifactKey(DEFAULT_GUEST_LIMITS);

async function deployed(t: ExecutionContext): Promise<{ store: Store; name: string; version: number; artifact: ModuleArtifact }> {
  const store = await EmbeddedStore.open(await tempDirFor(t, "description"));
  t.teardown(() => store.close());
  const { name, version } = await new ModuleRegistry(store).deploy(await readFile(cartWasm()));
  const artifact = await store.modules.getArtifact(name, version, KEY);
  if (!artifact) throw new Error("the deploy stored no artifact");
  return { store, name, version, artifact };
}

async function loadFromStore(store: Store, name: string): Promise<LoadedModule> {
  const registry = new ModuleRegistry(store);
  await registry.loadFromStore();
  const loaded = registry.modules.find((m) => m.name === name);
  if (!loaded) throw new Error(`${name} did not load`);
  return loaded;
}

/** Everything routing and ingress read of an API model, as plain JSON. */
function apiShape(api: ApiModel): unknown {
  return JSON.parse(JSON.stringify(api.services, (_key, value: unknown) => (value instanceof Map ? Object.fromEntries(value) : value)));
}

function withDetail(artifact: ModuleArtifact, detail: string): ModuleArtifact {
  return { ...artifact, detail };
}

test("a deploy stores the description decoded, equal to decoding the artifact's sections", async (t) => {
  const { artifact } = await deployed(t);
  const carried = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  t.truthy(carried.description, "the artifact carries its description");
  t.true(carried.report.memories.length > 0, "and the instrumentation report beside it");
  const decoded = decodeDescription(artifact.bytes);
  t.deepEqual(carried.description!.manifest, decoded.manifest);
  t.deepEqual(carried.description!.descriptorSet, JSON.parse(JSON.stringify(decoded.descriptorSet)) as IFileDescriptorSet);
});

test("a node loading the artifact builds the same API model from the carried description as from the sections", async (t) => {
  const { store, name, artifact } = await deployed(t);
  const loaded = await loadFromStore(store, name);
  t.is(loaded.loadedFrom, "artifact");
  t.true(loaded.descriptionCarried);
  const fromSections = describeArtifact(withDetail(artifact, JSON.stringify(decodeArtifactDetail(artifact.detail).report)), loaded.version);
  t.deepEqual(apiShape(loaded.api), apiShape(fromSections.api));
  t.deepEqual(loaded.manifest, fromSections.manifest);
  t.deepEqual([...loaded.descriptorBytes], [...fromSections.descriptorBytes], "reflection still serves the module's own bytes");
});

test("the carried description is what a node uses: the sections are not decoded again", async (t) => {
  const { store, name, version, artifact } = await deployed(t);
  const { report, description } = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  // A manifest that differs from the one in the sections only in its fuel budget.
  const fuelPerCall = Math.floor(DEFAULT_GUEST_LIMITS.fuelPerCall / 7);
  t.not(description!.manifest.fuelPerCall, fuelPerCall);
  const changed: ModuleDescription = { ...description!, manifest: { ...description!.manifest, fuelPerCall } };
  await store.modules.putArtifact(name, version, withDetail(artifact, encodeArtifactDetail(report, changed)));
  t.is((await loadFromStore(store, name)).limits.fuelPerCall, fuelPerCall);
});

test("an artifact written before descriptions (its report alone) still loads, decoded from its sections, and is upgraded", async (t) => {
  const { store, name, version, artifact } = await deployed(t);
  const { report, description } = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  await store.modules.putArtifact(name, version, withDetail(artifact, JSON.stringify(report)));
  const loaded = await loadFromStore(store, name);
  t.is(loaded.loadedFrom, "artifact");
  t.deepEqual(loaded.manifest, description!.manifest);
  t.deepEqual(loaded.instrumentation, report);
  t.false(loaded.descriptionCarried);
  // ...and is rewritten once to carry it, so the next start skips the decode.
  const rewritten = await store.modules.getArtifact(name, version, KEY);
  t.deepEqual(decodeArtifactDetail(rewritten!.detail), { report, description });
  t.deepEqual([...rewritten!.bytes], [...artifact.bytes]);
  t.true((await loadFromStore(store, name)).descriptionCarried);
});

test("a carried manifest is held to this host's checks: an ABI version it does not speak is refused", async (t) => {
  const { artifact } = await deployed(t);
  const { report, description } = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  const future: ModuleDescription = { ...description!, manifest: { ...description!.manifest, abiVersion: 99 } };
  const err = t.throws(() => describeArtifact(withDetail(artifact, encodeArtifactDetail(report, future)), 1));
  t.true(isKeystateError(err, "INVALID_MODULE"));
  t.regex(err!.message, /ABI version 99/);
});

test("a description JSON cannot carry exactly (a bytes option value, a non-finite number) is left out", async (t) => {
  const { artifact } = await deployed(t);
  const { report, description } = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  const file = description!.descriptorSet.file![0]!;
  const withBytes: ModuleDescription = {
    ...description!,
    descriptorSet: { file: [{ ...file, options: { ...file.options, ".example.blob": Buffer.from([1, 2, 3]) } as never }] },
  };
  const withInfinity: ModuleDescription = {
    ...description!,
    descriptorSet: { file: [{ ...file, options: { ...file.options, ".example.ratio": Number.POSITIVE_INFINITY } as never }] },
  };
  for (const unrepresentable of [withBytes, withInfinity]) {
    const detail = decodeArtifactDetail<InstrumentReport>(encodeArtifactDetail(report, unrepresentable));
    t.is(detail.description, undefined);
    t.deepEqual(detail.report, report);
  }
  t.truthy(decodeArtifactDetail(encodeArtifactDetail(report, description!)).description, "while the module's own description is carried");
});

test("carried descriptor files are shared by content between artifacts; a file not seen before is read from the artifact", async (t) => {
  const { artifact } = await deployed(t);
  const { report, description } = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  const files = description!.descriptorSet.file!;
  // Another artifact with the same files (another report): the same frozen objects, not copies.
  const again = decodeArtifactDetail<InstrumentReport>(encodeArtifactDetail({ ...report, totalMs: report.totalMs + 1 }, description!));
  t.is(again.report.totalMs, report.totalMs + 1);
  again.description!.descriptorSet.file!.forEach((file, i) => t.is(file, files[i]));
  t.true(Object.isFrozen(files[0]) && Object.isFrozen(files[0]!.messageType ?? []));
  // A file with other content (here another name) is a new key: parsed from this artifact's own line.
  const renamed = { ...files[0]!, name: `renamed-${process.pid}-${Date.now()}.proto` };
  const changed: ModuleDescription = { ...description!, descriptorSet: { file: [renamed, ...files.slice(1)] } };
  const read = decodeArtifactDetail<InstrumentReport>(encodeArtifactDetail(report, changed)).description!.descriptorSet.file!;
  t.deepEqual(read[0], JSON.parse(JSON.stringify(renamed)) as typeof renamed);
  t.is(read[1], files[1]);
});

test("a frozen descriptor file is turned into JSON once and carried the same every time; an unfrozen one is read again", async (t) => {
  const { artifact } = await deployed(t);
  const { report, description } = decodeArtifactDetail<InstrumentReport>(artifact.detail);
  const files = description!.descriptorSet.file!;
  t.is(encodeArtifactDetail(report, description!), encodeArtifactDetail(report, description!));
  // A frozen file JSON cannot carry stays left out on every encode (its verdict is remembered too).
  const withBytes = deepFreeze({ ...files[0]!, options: { ...files[0]!.options, ".example.blob": Buffer.from([1]) } as never });
  const unrepresentable: ModuleDescription = { ...description!, descriptorSet: { file: [withBytes, ...files.slice(1)] } };
  for (let i = 0; i < 2; i++) t.is(decodeArtifactDetail(encodeArtifactDetail(report, unrepresentable)).description, undefined);
  // A file object that can still change is not remembered: the detail follows what it holds now.
  const mutable = { ...files[0]!, name: `mutable-${process.pid}-${Date.now()}.proto` };
  const withMutable: ModuleDescription = { ...description!, descriptorSet: { file: [mutable, ...files.slice(1)] } };
  t.is(decodeArtifactDetail(encodeArtifactDetail(report, withMutable)).description!.descriptorSet.file![0]!.name, mutable.name);
  mutable.name = `${mutable.name}.renamed`;
  t.is(decodeArtifactDetail(encodeArtifactDetail(report, withMutable)).description!.descriptorSet.file![0]!.name, mutable.name);
});
