// Lazily loaded modules (`keystate serve --lazy-modules`): at start-up a node serves every
// stored module's services from its artifact without compiling it; the first call compiles
// and instantiates it. A module that no longer compiles fails that call, not the node.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { isKeystateError } from "../../host/errors.js";
import { EntityManager } from "../../host/entities/entity-manager.js";
import { Router } from "../../host/entities/router.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import type { Store } from "../../host/journal/types.js";
import { setLogLevel } from "../../host/log.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { artifactKey } from "../../host/runtime/loaded-module.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { exampleMessage } from "../helpers/example-messages.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";
import { parseSections } from "../helpers/wasm-sections.js";

// The broken-artifact test logs an error on purpose.
setLogLevel("fatal");
const counterWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "counter"));
const COUNTER = "keystate.examples.counter.Counter";
const ChangeValue = exampleMessage("keystate.examples.counter.ChangeValue");
const CurrentValue = exampleMessage("keystate.examples.counter.CurrentValue");

async function deployedStore(t: ExecutionContext): Promise<{ store: Store; version: number }> {
  const store = await EmbeddedStore.open(await tempDirFor(t, "lazy"));
  t.teardown(() => store.close());
  const deployed = await new ModuleRegistry(store).deploy(await readFile(counterWasm()));
  return { store, version: deployed.version };
}

/** A node's registry and router on `store` after a lazy start-up. */
async function lazyNode(t: ExecutionContext, store: Store) {
  const registry = new ModuleRegistry(store);
  await registry.loadFromStore({ lazy: true });
  const entities = new EntityManager(store, 60_000);
  t.teardown(() => entities.close());
  const router = new Router(registry, entities);
  const increase = async (counterId: string, value: number) =>
    Number((CurrentValue.toObject(CurrentValue.decode(await router.call(COUNTER, "Increase", ChangeValue.encode({ counterId, value }).finish())), { longs: String }) as { value: string }).value);
  return { registry, increase };
}

test("a lazy start-up serves the stored module's services without compiling it; the first call does", async (t) => {
  const { store } = await deployedStore(t);
  const { registry, increase } = await lazyNode(t, store);
  const service = registry.service(COUNTER);
  t.truthy(service, "the service is routed at once");
  t.is(service!.pool.created, 0, "no instance, so nothing compiled, before the first call");
  const [module] = registry.modules;
  t.is(module!.name, "counter");
  t.true(module!.descriptorBytes.length > 0, "reflection and HTTP routes have the API without a compile");
  t.is(await increase("a", 2), 2);
  t.is(service!.pool.created, 1, "the first call compiled the module and made one instance");
  t.is(await increase("a", 3), 5);
  t.is(service!.pool.created, 1, "later calls reuse it");
});

test("the state written through an eagerly loaded node reads back through a lazy one", async (t) => {
  const { store } = await deployedStore(t);
  const eager = new ModuleRegistry(store);
  await eager.loadFromStore();
  const eagerEntities = new EntityManager(store, 60_000);
  t.teardown(() => eagerEntities.close());
  const eagerRouter = new Router(eager, eagerEntities);
  await eagerRouter.call(COUNTER, "Increase", ChangeValue.encode({ counterId: "shared", value: 7 }).finish());
  const { increase } = await lazyNode(t, store);
  t.is(await increase("shared", 1), 8);
});

test("an artifact that no longer compiles fails its calls with INTERNAL and a message; a new deploy serves again", async (t) => {
  const { store, version } = await deployedStore(t);
  const key = artifactKey(DEFAULT_GUEST_LIMITS);
  const artifact = (await store.modules.getArtifact("counter", version, key))!;
  // Break the code, keep the sections: overwrite the first function body's bytes with an opcode that does not exist.
  const broken = Uint8Array.from(artifact.bytes);
  parseSections(broken).find((section) => section.id === 10)!.payload.fill(0xff, 8, 24); // a view into `broken`
  await store.modules.putArtifact("counter", version, { ...artifact, bytes: broken });

  const { registry, increase } = await lazyNode(t, store);
  t.truthy(registry.service(COUNTER), "registered from the sections, which still parse");
  const err = await t.throwsAsync(increase("a", 1));
  t.true(isKeystateError(err) && err.code === "GUEST_TRAP", String(err));
  t.regex(err!.message, /module counter v1 could not be compiled/);
  // Each later call says the same; deploying the module again replaces the broken version.
  await t.throwsAsync(increase("a", 1), { message: /could not be compiled/ });
  await registry.deploy(await readFile(counterWasm()));
  t.is(await increase("a", 1), 1, "the failed calls wrote nothing");
});
