// `keystate inspect` output: the route it asks for (any key, encoded), the summary lines,
// and user text that cannot act on a terminal (controls escaped).
import test from "ava";
import { formatEvents, formatState, inspectPath, type StateView } from "../../host/cli/inspect.js";

test("the route: service and key encoded as one segment each; paging only with --events", (t) => {
  t.is(inspectPath("pkg.S", "a/b c", {}), "/entities/pkg.S/a%2Fb%20c");
  t.is(inspectPath("pkg.S", "k", { from: "3" }), "/entities/pkg.S/k");
  t.is(inspectPath("pkg.S", "k", { events: true }), "/entities/pkg.S/k/events");
  t.is(inspectPath("pkg.S", "k", { events: true, from: "3", limit: "10" }), "/entities/pkg.S/k/events?from=3&limit=10");
});

const cart: StateView = {
  service: "pkg.Cart",
  kind: "event-sourced",
  module: { name: "cart", version: 2 },
  key: "ann",
  exists: true,
  sequence: 4,
  resident: false,
  snapshotSeq: null,
  stateType: "pkg.State",
  state: { items: [{ id: "pen" }] },
};

test("a state summary: identity, sequence, snapshot, residency, pretty state", (t) => {
  t.is(
    formatState(cart),
    [
      'pkg.Cart "ann" (event-sourced, module cart v2)',
      "exists: yes",
      "sequence: 4",
      "snapshot: none",
      "resident on this node: no",
      "state (pkg.State):",
      JSON.stringify(cart.state, null, 2),
      "",
    ].join("\n"),
  );
  const value = formatState({ ...cart, kind: "value", exists: false, snapshotSeq: undefined, state: {} });
  t.regex(value, /exists: no, never written/);
  t.regex(value, /version: 4/);
  t.notRegex(value, /snapshot/);
});

test("terminal controls in keys and payloads are escaped", (t) => {
  const text = formatState({ ...cart, key: "x\u001b[2J\u009b31m", state: { note: "\u0007bell\u2028" } });
  t.false(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028]/.test(text), JSON.stringify(text));
  t.regex(text, /"x\\u001b\[2J\\u009b31m"/);
});

test("events: one block per event, base64 with its note, and how to get more", (t) => {
  const text = formatEvents({
    service: "pkg.Cart",
    key: "ann",
    from: 1,
    limit: 2,
    events: [
      { seq: 1, type: "pkg.Added", payload: { id: "pen" } },
      { seq: 2, type: "pkg.Gone", payloadBase64: "AAE=", note: "the module's API defines no message pkg.Gone; shown as base64" },
    ],
    lastSeq: 9,
    more: true,
    nextFrom: 3,
  });
  t.regex(text, /events from seq 1 \(limit 2; the journal's last seq is 9\)/);
  t.regex(text, /#1 "pkg\.Added"\n {2}\{\n {4}"id": "pen"\n {2}\}/);
  t.regex(text, /#2 "pkg\.Gone"\n {2}base64 \(the module's API defines no message pkg\.Gone; shown as base64\): AAE=/);
  t.regex(text, /more events follow: add --from 3/);
});
