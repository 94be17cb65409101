// How the inspector shows a CRDT's value: counters as decimal strings (beyond 2^53 too),
// bytes as UTF-8 text or base64 with the field name saying which, a Vote as its tally,
// an ORMap's entries recursively.
import test from "ava";
import { createCrdt } from "../../host/crdt/index.js";
import { bytesJson, crdtJson } from "../../host/inspect/crdt-json.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

test("bytes: valid UTF-8 as text (a BOM kept), anything else as base64", (t) => {
  t.deepEqual(bytesJson(utf8("héllo <b>")), { utf8: "héllo <b>" });
  t.deepEqual(bytesJson(new Uint8Array(0)), { utf8: "" });
  t.deepEqual(bytesJson(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41)), { utf8: "\ufeffA" });
  t.deepEqual(bytesJson(Uint8Array.of(0xff, 0x00, 0x80)), { base64: "/wCA" });
  t.deepEqual(bytesJson(Uint8Array.of(0xe2, 0x82)), { base64: "4oI=" }, "a truncated sequence is not text");
});

test("counters as decimal strings, exact past 2^53", (t) => {
  const counter = createCrdt("PNCounter", "r1");
  counter.increment(2n ** 60n);
  counter.decrement(1);
  t.is(crdtJson("PNCounter", counter.value()), "1152921504606846975");
  t.is(crdtJson("GCounter", createCrdt("GCounter", "r1").value()), "0");
});

test("sets, register and flag", (t) => {
  const set = createCrdt("ORSet", "r1");
  set.add(utf8("red"));
  set.add(Uint8Array.of(0xff));
  t.deepEqual(crdtJson("ORSet", set.value()), [{ utf8: "red" }, { base64: "/w==" }]);
  t.is(crdtJson("LWWRegister", createCrdt("LWWRegister", "r1").value()), null);
  t.false(crdtJson("Flag", createCrdt("Flag", "r1").value()) as boolean);
});

test("a Vote as its tally (no 'self': the inspector is no replica)", (t) => {
  const vote = createCrdt("Vote", "r1");
  vote.vote(true);
  const other = createCrdt("Vote", "r2");
  other.vote(false);
  vote.merge(other);
  t.deepEqual(crdtJson("Vote", vote.value()), { votesFor: 1, total: 2, atLeastOne: true, majority: false, all: false });
});

test("an ORMap's entries, each value by its own type", (t) => {
  t.deepEqual(
    crdtJson("ORMap", [
      { key: utf8("visits"), type: "PNCounter", value: 3n },
      { key: Uint8Array.of(0xfe), type: "ORSet", value: [utf8("a")] },
    ]),
    [
      { key: { utf8: "visits" }, crdt: "PNCounter", value: "3" },
      { key: { base64: "/g==" }, crdt: "ORSet", value: [{ utf8: "a" }] },
    ],
  );
});
