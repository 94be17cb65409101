// ComponentInstance in process, on the JavaScript counter (modules/counter-js, built by
// `keystate build`, cached): the calls the entity layer makes, fuel accounting, and the
// pool replacing an instance whose memory grew (the engine does not give memory back).
import test from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { StateAction } from "../../host/abi/abi-codec.js";
import { ComponentInstance } from "../../host/component/component-instance.js";
import { InstancePool } from "../../host/runtime/instance-pool.js";
import { buildArtifact, compileArtifact, describeArtifact, type LoadedModule } from "../../host/runtime/loaded-module.js";
import { builtComponent } from "../helpers/component-fixtures.js";
import { REPO_ROOT } from "../helpers/node-process.js";

let loaded: LoadedModule;
let lazy: LoadedModule;

test.before(async () => {
  const bytes = await readFile(await builtComponent(join(REPO_ROOT, "modules", "counter-js")));
  const artifact = await buildArtifact(bytes);
  loaded = await compileArtifact(artifact, 1);
  lazy = describeArtifact(artifact, 1);
});

/** ChangeValue { counter_id: "a", value } (value < 128). */
const change = (value: number) => Uint8Array.of(0x0a, 1, 0x61, 0x10, value);

test("a component instance serves commands and replays like a guest instance", (t) => {
  t.truthy(loaded.component, "a component has compiled component code");
  t.is(loaded.manifest.name, "counter-js");
  t.true(loaded.api.services.has("keystate.examples.jscounter.JsCounter"));
  const instance = new ComponentInstance(loaded.component!(), () => undefined, loaded.limits);
  const base = { service: "keystate.examples.jscounter.JsCounter", entityKey: "a", sequence: 0 };
  const first = instance.command({ ...base, method: "Increase", state: undefined, payload: change(5) });
  t.deepEqual([...first.reply], [0x08, 5]);
  t.is(first.stateAction, StateAction.UPDATE);
  t.deepEqual([...first.state], [0x08, 5]);
  t.true((instance.fuelUsed ?? 0) > 0, "the call burnt fuel");
  const refused = instance.command({ ...base, method: "Decrease", state: first.state, payload: Uint8Array.of(0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01) });
  t.is(refused.failure?.code, 3);
  t.is(refused.stateAction, StateAction.KEEP);
  // Longer than one replay chunk: the state threads through every chunk.
  const events = Array.from({ length: 600 }, () => ({ type: "keystate.examples.jscounter.domain.CounterState", payload: new Uint8Array(0) }));
  const replayed = instance.replay({ service: base.service, state: first.state, events });
  t.deepEqual([...replayed.state], [0x08, 5]);
  t.is(replayed.failure, undefined);
});

test("a lazily described component compiles on first use and serves", (t) => {
  const instance = new ComponentInstance(lazy.component!(), () => undefined, lazy.limits);
  const result = instance.command({ service: "keystate.examples.jscounter.JsCounter", method: "Get", entityKey: "a", sequence: 0, state: Uint8Array.of(0x08, 9), payload: Uint8Array.of(0x0a, 1, 0x61) });
  t.deepEqual([...result.reply], [0x08, 9]);
});

test("the pool replaces an instance whose memory grew past half its headroom, and calls keep working", (t) => {
  const pool = new InstancePool(() => new ComponentInstance(loaded.component!(), () => undefined, loaded.limits));
  const state = Uint8Array.of(0x08, 1);
  const payload = new Uint8Array(16 * 1024); // a big argument makes the engine's memory grow fast
  payload.set(change(1));
  for (let i = 0; i < 1500; i++) {
    const result = pool.run((instance) => instance.command({ service: "s", method: "Get", entityKey: "a", sequence: 0, state, payload }));
    if (result.reply[1] !== 1) return t.fail(`call ${i} answered ${result.reply}`);
  }
  t.true(pool.created > 1, `instances created: ${pool.created}`);
});
