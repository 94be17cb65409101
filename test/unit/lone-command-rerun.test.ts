// A command the Router handed to its caller without waiting (effects.ts handOff: the guest
// ran it alone and it asked for nothing but its reply) may still run again: its lone write
// was refused as stale and lone-command.ts retryAsBatch runs it once more on the reloaded
// state. If that run asks for effects, they must run before the answer, through the
// hand-off, because nobody else waits on the command any more.
import test from "ava";
import type { ServiceCall } from "../../host/abi/abi-codec.js";
import type { EffectOrigin } from "../../host/entities/effect-runner.js";
import { CommandEffects } from "../../host/entities/effects.js";
import type { EntityEnvelope, EntityRecord } from "../../host/entities/entity-record.js";
import { retryAsBatch } from "../../host/entities/lone-command.js";

const FORWARD: ServiceCall = { service: "test.Other", method: "Take", payload: Uint8Array.of(1) };
const OWN_REPLY = Uint8Array.of(7);
const FORWARDED_REPLY = Uint8Array.of(9);

function fixture(rerunForwards: boolean) {
  let ended = 0;
  const record = { key: "k1", service: { moduleName: "m", name: "test.Svc" }, aloneEnded: () => void ended++ } as unknown as EntityRecord;
  const effects = new CommandEffects(() => {}, 1, "test.Reply");
  const command = { method: "Do", payload: Uint8Array.of(), effects };
  // The batch path as the processors run it: the guest's result accepted, then the envelope answered.
  const processBatch = async (batch: EntityEnvelope[]) => {
    for (const envelope of batch) {
      envelope.command.effects!.accept({ forward: rerunForwards ? FORWARD : undefined, sideEffects: [] });
      envelope.resolve(OWN_REPLY);
    }
  };
  return { record, effects, command, processBatch, ended: () => ended };
}

test("a handed-off command whose run again asks for a forward answers with what the hand-off makes of it", async (t) => {
  const { record, effects, command, processBatch, ended } = fixture(true);
  effects.accept({ forward: undefined, sideEffects: [] });
  t.true(effects.ranWithNone, "its first run asked for nothing: the Router may hand it off");
  const late: Array<{ reply: Uint8Array; origin: EffectOrigin; forward: ServiceCall | undefined }> = [];
  effects.handOff(async (reply, seen, origin) => {
    late.push({ reply, origin, forward: seen.forward });
    return FORWARDED_REPLY;
  });
  t.deepEqual(await retryAsBatch(record, command, undefined, processBatch), FORWARDED_REPLY);
  t.deepEqual(late, [{ reply: OWN_REPLY, origin: { module: "m", service: "test.Svc", method: "Do", entityKey: "k1" }, forward: FORWARD }]);
  t.false(effects.ranWithNone);
  t.is(ended(), 1, "the mailbox is free again");
});

test("a handed-off command whose run again asks for nothing answers with its reply; the hand-off is not called", async (t) => {
  const { record, effects, command, processBatch } = fixture(false);
  effects.accept({ forward: undefined, sideEffects: [] });
  let called = 0;
  effects.handOff(async (reply) => (called++, reply));
  t.deepEqual(await retryAsBatch(record, command, undefined, processBatch), OWN_REPLY);
  t.is(called, 0);
});

test("a command the Router waits on answers a run again with the guest's reply: the Router runs the effects itself", async (t) => {
  const { record, effects, command, processBatch } = fixture(true);
  t.false(effects.ranWithNone, "not run yet");
  t.deepEqual(await retryAsBatch(record, command, undefined, processBatch), OWN_REPLY);
  t.deepEqual(effects.forward, FORWARD, "left for the Router, which checks them once the command is answered");
});
