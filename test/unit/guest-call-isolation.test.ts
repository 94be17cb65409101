// The AssemblyScript SDK reuses its call object between calls and starts each context's
// effect arrays as shared empties, made only on the first add. Nothing of one call may show
// in the next: timers scheduled by one command, or metadata one call carried, must not
// appear in a later call that has none. test/fixtures/timers schedules timers from a value
// entity and an action, and stores the idempotency key a call carried.
import test from "ava";
import protobuf from "protobufjs";
import type { CallMetadata, CommandResult } from "../../host/abi/abi-codec.js";
import type { GuestInstance } from "../../host/abi/guest-instance.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { guestFromFile } from "../helpers/guest-instance.js";

const ALARMS = "keystate.test.timers.Alarms";
const DESK = "keystate.test.timers.AlarmDesk";
const wasmPath = useBuiltFixture(test, "timers");

const root = protobuf.Root.fromJSON({
  nested: {
    AlarmId: { fields: { id: { type: "string", id: 1 } } },
    ScheduleRequest: { fields: { id: { type: "string", id: 1 }, delayMs: { type: "uint64", id: 2 }, name: { type: "string", id: 3 }, secondDelayMs: { type: "uint64", id: 4 } } },
    Alarm: { fields: { id: { type: "string", id: 1 }, scheduled: { type: "uint32", id: 2 }, fired: { type: "uint32", id: 3 }, lastIdempotencyKey: { type: "string", id: 4 }, cancelled: { type: "uint32", id: 5 } } },
  },
});
const AlarmId = root.lookupType("AlarmId");
const ScheduleRequest = root.lookupType("ScheduleRequest");
const Alarm = root.lookupType("Alarm");

function guest(): Promise<GuestInstance> {
  return guestFromFile(wasmPath());
}

function run(g: GuestInstance, service: string, method: string, payload: Uint8Array, state?: Uint8Array, metadata?: CallMetadata): CommandResult {
  const result = g.command({ service, method, entityKey: service === DESK ? "" : "a-1", sequence: 0, state, payload, metadata });
  if (result.failure) throw new Error(`${service}/${method} failed: ${result.failure.message}`);
  return result;
}

function alarm(bytes: Uint8Array): { fired: number; lastIdempotencyKey: string } {
  return Alarm.toObject(Alarm.decode(bytes), { defaults: true }) as { fired: number; lastIdempotencyKey: string };
}

test("timers scheduled by one command do not show in later commands that schedule none", async (t) => {
  const g = await guest();
  const schedule = ScheduleRequest.encode({ id: "a-1", delayMs: 1000, name: "n", secondDelayMs: 2000 }).finish();
  const get = AlarmId.encode({ id: "a-1" }).finish();
  for (let round = 0; round < 3; round++) {
    const scheduled = run(g, ALARMS, "Schedule", schedule);
    t.deepEqual(scheduled.timers.map((timer) => timer.delayMs), [1000, 2000]);
    t.deepEqual(run(g, ALARMS, "Get", get, scheduled.state).timers, []);
    // From an action too, and then from nothing again.
    t.deepEqual(run(g, DESK, "Schedule", ScheduleRequest.encode({ id: "a-1", delayMs: 5, name: "d" }).finish()).timers.map((timer) => timer.delayMs), [5]);
    t.deepEqual(run(g, ALARMS, "Fire", get, scheduled.state).timers, []);
  }
});

test("metadata one call carried is gone in the next call that carries none", async (t) => {
  const g = await guest();
  const fire = AlarmId.encode({ id: "a-1" }).finish();
  let state: Uint8Array | undefined;
  const keys: string[] = [];
  for (const metadata of [[["idempotency-key", "k1"]], undefined, [["idempotency-key", "k2"], ["other", "x"]], [], [["idempotency-key", "k3"]]] as Array<CallMetadata | undefined>) {
    const result = run(g, ALARMS, "Fire", fire, state, metadata);
    state = result.state;
    keys.push(alarm(result.state).lastIdempotencyKey);
  }
  t.deepEqual(keys, ["k1", "", "k2", "", "k3"]);
  t.is(alarm(state!).fired, 5);
});
