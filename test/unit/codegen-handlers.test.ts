// The generated handler base classes for value entities and actions: their typed
// abstract methods, their dispatch, their SDK imports, and what the generator refuses.
// (That the output compiles and runs is proved by the integration tests that build
// modules/counter and test/fixtures/echo-action.)
import test from "ava";
import { join } from "node:path";
import { compileProtos } from "../../host/build/buf.js";
import { generateHandlers } from "../../host/build/codegen-handlers.js";
import { generateMessages } from "../../host/build/codegen-messages.js";
import type { EntityConfig } from "../../host/build/module-config.js";
import { decodeDescriptorSet, indexDescriptorSet, type DescriptorIndex } from "../../host/proto/descriptors.js";
import { REPO_ROOT } from "../helpers/node-process.js";

interface Api {
  index: DescriptorIndex;
  classNames: ReadonlyMap<string, string>;
}

const COUNTER: EntityConfig = {
  service: "keystate.examples.counter.Counter",
  kind: "value",
  state: "keystate.examples.counter.domain.CounterState",
};
const ECHO: EntityConfig = { service: "keystate.test.echo.Echo", kind: "action" };
const TALLY: EntityConfig = { service: "keystate.test.tally.Tally", kind: "value", state: "keystate.test.tally.TallyValue" };

async function api(dir: string, files: string[]): Promise<Api> {
  const set = decodeDescriptorSet(await compileProtos({ roots: [dir, join(REPO_ROOT, "proto")], files }));
  return { index: indexDescriptorSet(set), classNames: generateMessages(set, { files, sdkImport: "sdk/proto" }).classNames };
}

let counterApi: Api;
let fixtureApi: Api;

test.before(async () => {
  counterApi = await api(join(REPO_ROOT, "modules/counter/proto"), ["counter.proto", "counter_domain.proto"]);
  fixtureApi = await api(join(REPO_ROOT, "test/fixtures/echo-action/proto"), ["echo.proto", "tally.proto"]);
});

const generate = (from: Api, entities: EntityConfig[]) =>
  generateHandlers({ ...from, entities, sdkImport: "sdk", messagesImport: "./messages" });

test("a value entity gets one typed handler per rpc, with the state and a ValueContext", (t) => {
  const source = generate(counterApi, [COUNTER]);
  t.true(source.includes(`import { Message, Status, ValueContext, ValueEntity, decode } from "sdk";`));
  t.true(source.includes(`import { ChangeValue, CounterId, CounterState, CurrentValue } from "./messages";`));
  t.true(source.includes("export abstract class CounterEntity extends ValueEntity<CounterState> {"));
  for (const [handler, input] of [["increase", "ChangeValue"], ["decrease", "ChangeValue"], ["reset", "CounterId"], ["get", "CounterId"]]) {
    t.true(
      source.includes(`  abstract ${handler}(command: ${input}, state: CounterState, ctx: ValueContext<CounterState>): CurrentValue | null;`),
      handler,
    );
    t.true(source.includes(`      return this.${handler}(command, state, ctx);`), handler);
  }
  t.true(source.includes(`  dispatch(method: string, payload: Uint8Array, state: CounterState, ctx: ValueContext<CounterState>): Message | null {`));
  // A request that does not decode is refused before the handler runs; an unknown method is UNIMPLEMENTED.
  t.true(source.includes(`ctx.fail(Status.INVALID_ARGUMENT, "the request is not a valid keystate.examples.counter.ChangeValue");`));
  t.true(source.includes(`ctx.fail(Status.UNIMPLEMENTED, "keystate.examples.counter.Counter has no method " + method);`));
  t.false(source.includes("EventSourcedEntity"));
});

test("an action gets handlers with no state; streaming rpcs get no handler and no dispatch branch", (t) => {
  const source = generate(fixtureApi, [ECHO]);
  t.true(source.includes(`import { Action, ActionContext, Message, Status, decode } from "sdk";`));
  t.true(source.includes("export abstract class EchoAction extends Action {"));
  t.true(source.includes("  abstract say(request: EchoRequest, ctx: ActionContext): EchoReply | null;"));
  t.true(source.includes("      return this.say(command, ctx);"));
  t.true(source.includes("  dispatch(method: string, payload: Uint8Array, ctx: ActionContext): Message | null {"));
  t.regex(source, /rpc Chatter is streaming; actions serve unary calls only/);
  t.false(source.includes("chatter("));
  t.false(source.includes(`method == "Chatter"`));
});

test("one module may mix kinds: one class each, one import of everything they use", (t) => {
  const source = generate(fixtureApi, [ECHO, TALLY]);
  t.true(source.includes(`import { Action, ActionContext, Message, Status, ValueContext, ValueEntity, decode } from "sdk";`));
  t.true(source.includes("export abstract class EchoAction extends Action {"));
  t.true(source.includes("export abstract class TallyEntity extends ValueEntity<TallyValue> {"));
  t.regex(source, /rpc Watch is streaming; value entities serve unary calls only/);
  t.is(source.match(/^import /gm)?.length, 2);
});

test("the generator refuses a value entity without a state type, and kinds it cannot generate", (t) => {
  t.throws(() => generate(counterApi, [{ service: COUNTER.service, kind: "value" }]), { message: /needs "state"/ });
  t.throws(() => generate(counterApi, [{ ...COUNTER, kind: "replicated" }]), { message: /needs "crdt" in module.json/ });
  t.throws(() => generate(counterApi, [{ ...COUNTER, service: "keystate.examples.counter.Nope" }]), { message: /which the .proto files do not define/ });
  // Event-sourced entities still refuse streaming methods at build time, as before.
  t.throws(() => generate(fixtureApi, [{ service: ECHO.service, kind: "event-sourced", state: "keystate.test.echo.EchoReply", events: [] }]), {
    message: /streaming method Chatter is not supported for event-sourced entities/,
  });
});
