// The behaviour every Store backend must have, registered once per backend so the
// embedded and Redis tests run the same cases against real storage.
import { randomUUID } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { isKeystateError } from "../../host/errors.js";
import type { EntityId, JournalEvent, ModuleArtifact, Store, StoredEvent } from "../../host/journal/types.js";

/** Opens a store for one test; the contract closes it when the test ends. */
export type StoreFactory = (t: ExecutionContext) => Promise<Store>;

export function newEntity(persistenceId = "contract.Entity"): EntityId {
  return { persistenceId, key: randomUUID() };
}

export function eventsNumbered(from: number, count: number, tag = ""): JournalEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    type: "contract.Happened",
    payload: Buffer.from(`event ${from + i}${tag}`),
  }));
}

/** Events as comparable plain values (Buffers and Uint8Arrays compare by content). */
export function plain(events: readonly StoredEvent[]): { seq: number; type: string; payload: number[] }[] {
  return events.map((e) => ({ seq: e.seq, type: e.type, payload: [...e.payload] }));
}

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

export function registerStoreContract(backend: string, open: StoreFactory): void {
  const openFor = async (t: ExecutionContext): Promise<Store> => {
    const store = await open(t);
    t.teardown(() => store.close());
    return store;
  };
  const title = (what: string) => `${backend}: ${what}`;

  test(title("a new entity recovers empty at seq 0"), async (t) => {
    const store = await openFor(t);
    t.deepEqual(await store.journal.recover(newEntity()), { snapshot: undefined, events: [], lastSeq: 0 });
  });

  test(title("appended events recover in order with gap-free seqs"), async (t) => {
    const store = await openFor(t);
    const id = newEntity();
    await store.journal.append(id, 0, eventsNumbered(1, 3));
    await store.journal.append(id, 3, eventsNumbered(4, 1));
    await store.journal.append(id, 4, eventsNumbered(5, 7));
    const recovered = await store.journal.recover(id);
    t.is(recovered.lastSeq, 11);
    t.is(recovered.snapshot, undefined);
    t.deepEqual(
      plain(recovered.events),
      plain(eventsNumbered(1, 11).map((e, i) => ({ ...e, seq: i + 1 }))),
    );
  });

  test(title("readEvents reads from a seq, at most `limit` events; lastSeq reads the last seq alone"), async (t) => {
    const store = await openFor(t);
    const id = newEntity();
    t.is(await store.journal.lastSeq(id), 0);
    t.deepEqual(await store.journal.readEvents(id, 1, 10), []);
    await store.journal.append(id, 0, eventsNumbered(1, 7));
    t.is(await store.journal.lastSeq(id), 7);
    t.deepEqual((await store.journal.readEvents(id, 3, 2)).map((e) => e.seq), [3, 4]);
    t.deepEqual((await store.journal.readEvents(id, 6, 100)).map((e) => e.seq), [6, 7]);
    t.deepEqual((await store.journal.readEvents(id, 2)).map((e) => e.seq), [2, 3, 4, 5, 6, 7]);
    t.deepEqual(await store.journal.readEvents(id, 8, 5), []);
    // Another entity's journal is not this one's.
    t.is(await store.journal.lastSeq(newEntity()), 0);
  });

  test(title("an append with a stale or future expected seq is refused and writes nothing"), async (t) => {
    const store = await openFor(t);
    const id = newEntity();
    await store.journal.append(id, 0, eventsNumbered(1, 2));
    for (const expected of [0, 1, 3, 10]) {
      const err = await t.throwsAsync(store.journal.append(id, expected, eventsNumbered(100, 2, " stale")));
      t.true(isKeystateError(err, "SEQUENCE_CONFLICT"), `expected ${expected}: ${String(err)}`);
    }
    const recovered = await store.journal.recover(id);
    t.is(recovered.lastSeq, 2);
    t.deepEqual(recovered.events.map((e) => Buffer.from(e.payload).toString()), ["event 1", "event 2"]);
  });

  test(title("of appends racing with the same expected seq exactly one wins"), async (t) => {
    const store = await openFor(t);
    const id = newEntity();
    await store.journal.append(id, 0, eventsNumbered(1, 1));
    const contenders = Array.from({ length: 8 }, (_, i) => store.journal.append(id, 1, eventsNumbered(2, 2, ` by ${i}`)));
    const outcomes = await Promise.allSettled(contenders);
    const winners = outcomes.flatMap((o, i) => (o.status === "fulfilled" ? [i] : []));
    t.is(winners.length, 1);
    for (const o of outcomes) {
      if (o.status === "rejected") t.true(isKeystateError(o.reason, "SEQUENCE_CONFLICT"), String(o.reason));
    }
    const recovered = await store.journal.recover(id);
    t.is(recovered.lastSeq, 3);
    t.deepEqual(
      recovered.events.map((e) => Buffer.from(e.payload).toString()),
      ["event 1", `event 2 by ${winners[0]}`, `event 3 by ${winners[0]}`],
    );
  });

  test(title("entities are independent, even when ids contain / { } %"), async (t) => {
    const store = await openFor(t);
    const base = randomUUID();
    const left: EntityId = { persistenceId: `p/${base}`, key: "k}{%2F" };
    const right: EntityId = { persistenceId: "p", key: `${base}/k}{%2F` };
    await store.journal.append(left, 0, eventsNumbered(1, 2, " left"));
    await store.journal.append(right, 0, eventsNumbered(1, 1, " right"));
    await store.values.put(left, Buffer.from("left value"));
    t.is((await store.journal.recover(left)).lastSeq, 2);
    t.deepEqual(plain((await store.journal.recover(right)).events), [
      { seq: 1, type: "contract.Happened", payload: [...Buffer.from("event 1 right")] },
    ]);
    t.is(await store.values.get(right), undefined);
  });

  test(title("recover gives the latest snapshot plus the events after it"), async (t) => {
    const store = await openFor(t);
    const id = newEntity();
    await store.journal.append(id, 0, eventsNumbered(1, 5));
    await store.journal.saveSnapshot(id, { seq: 3, state: Buffer.from("state@3") });
    let recovered = await store.journal.recover(id);
    t.is(recovered.snapshot?.seq, 3);
    t.deepEqual([...recovered.snapshot!.state], [...Buffer.from("state@3")]);
    t.deepEqual(recovered.events.map((e) => e.seq), [4, 5]);
    t.is(recovered.lastSeq, 5);

    await store.journal.saveSnapshot(id, { seq: 5, state: Buffer.from("state@5") });
    recovered = await store.journal.recover(id);
    t.is(recovered.snapshot?.seq, 5);
    t.deepEqual(recovered.events, []);
    t.is(recovered.lastSeq, 5);
    await store.journal.append(id, 5, eventsNumbered(6, 1));
    t.deepEqual((await store.journal.recover(id)).events.map((e) => e.seq), [6]);
  });

  test(title("an older snapshot does not replace a newer one; one beyond the journal is refused"), async (t) => {
    const store = await openFor(t);
    const id = newEntity();
    await store.journal.append(id, 0, eventsNumbered(1, 4));
    await store.journal.saveSnapshot(id, { seq: 4, state: Buffer.from("new") });
    await store.journal.saveSnapshot(id, { seq: 2, state: Buffer.from("old") });
    const err = await t.throwsAsync(store.journal.saveSnapshot(id, { seq: 9, state: Buffer.from("ahead") }));
    t.true(isKeystateError(err, "INVALID_REQUEST"), String(err));
    const recovered = await store.journal.recover(id);
    t.is(recovered.snapshot?.seq, 4);
    t.is(Buffer.from(recovered.snapshot!.state).toString(), "new");
  });

  test(title("values: get, put, overwrite, delete"), async (t) => {
    const store = await openFor(t);
    const id = newEntity("contract.Value");
    const other = newEntity("contract.Value");
    t.is(await store.values.get(id), undefined);
    await store.values.put(id, Buffer.from("first"));
    await store.values.put(other, Buffer.from("other"));
    t.is(Buffer.from((await store.values.get(id))!).toString(), "first");
    await store.values.put(id, new Uint8Array([9, 8, 7]));
    t.deepEqual([...(await store.values.get(id))!], [9, 8, 7]);
    await store.values.delete(id);
    t.is(await store.values.get(id), undefined);
    await store.values.delete(id); // deleting what is gone is not an error
    t.is(Buffer.from((await store.values.get(other))!).toString(), "other");
  });

  test(title("modules: versions, activate, undeploy, list, bytes"), async (t) => {
    const store = await openFor(t);
    const name = `module-${randomUUID()}`;
    const before = Date.now();
    const v1 = await store.modules.addVersion(name, Buffer.from("wasm one"), "hash-1");
    const v2 = await store.modules.addVersion(name, ALL_BYTES, "hash-2");
    t.like(v1, { name, version: 1, hash: "hash-1", size: 8 });
    t.like(v2, { name, version: 2, hash: "hash-2", size: 256 });
    t.true(v1.deployedAt >= before && v2.deployedAt <= Date.now());

    const mine = async () => (await store.modules.list()).find((m) => m.name === name);
    t.deepEqual(await mine(), { name, activeVersion: undefined, versions: [v1, v2] });
    await store.modules.setActive(name, 2);
    t.is((await mine())?.activeVersion, 2);
    await store.modules.setActive(name, 1);
    t.is((await mine())?.activeVersion, 1);
    await store.modules.setActive(name, undefined);
    t.deepEqual(await mine(), { name, activeVersion: undefined, versions: [v1, v2] });

    t.deepEqual([...(await store.modules.getBytes(name, 2))!], [...ALL_BYTES]);
    t.is(Buffer.from((await store.modules.getBytes(name, 1))!).toString(), "wasm one");
    t.is(await store.modules.getBytes(name, 3), undefined);
    t.true(isKeystateError(await t.throwsAsync(store.modules.setActive(name, 3)), "MODULE_NOT_FOUND"));
    t.true(isKeystateError(await t.throwsAsync(store.modules.setActive(`${name}-missing`, 1)), "MODULE_NOT_FOUND"));
  });

  test(title("modules: addVersion with activate stores and activates in one write"), async (t) => {
    const store = await openFor(t);
    const name = `module-${randomUUID()}`;
    const mine = async () => (await store.modules.list()).find((m) => m.name === name);
    const v1 = await store.modules.addVersion(name, Buffer.from("wasm one"), "hash-1", { activate: true });
    t.like(v1, { name, version: 1, hash: "hash-1", size: 8 });
    t.deepEqual(await mine(), { name, activeVersion: 1, versions: [v1] });
    // Without the option the active version stays where it was.
    const v2 = await store.modules.addVersion(name, ALL_BYTES, "hash-2", { activate: false });
    t.deepEqual(await mine(), { name, activeVersion: 1, versions: [v1, v2] });
    const v3 = await store.modules.addVersion(name, Buffer.from("wasm three"), "hash-3", { activate: true });
    t.like(v3, { version: 3 });
    t.deepEqual(await mine(), { name, activeVersion: 3, versions: [v1, v2, v3] });
    t.is(Buffer.from((await store.modules.getBytes(name, 3))!).toString(), "wasm three");
    // Undeployed, then a new activated version is live again.
    await store.modules.setActive(name, undefined);
    const v4 = await store.modules.addVersion(name, Buffer.from("wasm four"), "hash-4", { activate: true });
    t.is((await mine())?.activeVersion, v4.version);
  });

  const artifact = (key: string, bytes: Uint8Array): ModuleArtifact => ({ key, uploadHash: "hash-1", uploadSize: 8, bytes, detail: `{"for":"${key}"}` });
  const comparable = (a: ModuleArtifact | undefined) => a && { ...a, bytes: [...a.bytes] };

  test(title("modules: artifacts are stored with a version, per key, and read back exactly"), async (t) => {
    const store = await openFor(t);
    const name = `module-${randomUUID()}`;
    const deployed = artifact("instrument-v1/pages-512", ALL_BYTES);
    const v1 = await store.modules.addVersion(name, Buffer.from("wasm one"), "hash-1", { activate: true, artifact: deployed });
    t.like(v1, { version: 1, hash: "hash-1", size: 8 });
    t.deepEqual(comparable(await store.modules.getArtifact(name, 1, deployed.key)), comparable(deployed));
    // The upload is stored as it came, not replaced by the artifact.
    t.is(Buffer.from((await store.modules.getBytes(name, 1))!).toString(), "wasm one");
    // Another key, another version, another module: nothing.
    t.is(await store.modules.getArtifact(name, 1, "instrument-v1/pages-64"), undefined);
    t.is(await store.modules.getArtifact(name, 2, deployed.key), undefined);
    t.is(await store.modules.getArtifact(`${name}-other`, 1, deployed.key), undefined);

    // A version stored without an artifact (an older deploy) gets one later, next to any other key's.
    await store.modules.addVersion(name, Buffer.from("wasm two"), "hash-2");
    t.is(await store.modules.getArtifact(name, 2, deployed.key), undefined);
    const small = artifact("instrument-v1/pages-64", Buffer.from("small"));
    await store.modules.putArtifact(name, 2, small);
    await store.modules.putArtifact(name, 1, small);
    t.deepEqual(comparable(await store.modules.getArtifact(name, 2, small.key)), comparable(small));
    t.deepEqual(comparable(await store.modules.getArtifact(name, 1, small.key)), comparable(small));
    t.deepEqual(comparable(await store.modules.getArtifact(name, 1, deployed.key)), comparable(deployed));
    // Replacing one under the same key.
    const remade = { ...small, bytes: Buffer.from("remade"), detail: "{}" };
    await store.modules.putArtifact(name, 2, remade);
    t.deepEqual(comparable(await store.modules.getArtifact(name, 2, small.key)), comparable(remade));
    t.deepEqual((await store.modules.list()).find((m) => m.name === name)?.versions.map((v) => v.version), [1, 2]);
  });

  test(title("modules: an artifact read stays intact after later reads"), async (t) => {
    const store = await openFor(t);
    const name = `artifact-reads-${randomUUID()}`;
    // Larger than a store's small-value read buffer, and different at every byte, so an
    // artifact that shared memory with a later read would show it.
    const first = artifact("key-a", Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251)));
    const second = artifact("key-b", Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i + 100) % 241)));
    await store.modules.addVersion(name, Buffer.from("wasm"), "hash", { activate: true, artifact: first });
    await store.modules.putArtifact(name, 1, second);
    const readFirst = await store.modules.getArtifact(name, 1, first.key);
    const readSecond = await store.modules.getArtifact(name, 1, second.key);
    await store.modules.getBytes(name, 1);
    t.deepEqual(comparable(readFirst), comparable(first));
    t.deepEqual(comparable(readSecond), comparable(second));
  });

  test(title("modules: a version added with keepVersions removes older ones, uploads and artifacts, never the active one"), async (t) => {
    const store = await openFor(t);
    const name = `keep-${randomUUID()}`;
    const versionsOf = async (module: string) => (await store.modules.list()).find((m) => m.name === module)?.versions.map((v) => v.version);
    // A module whose name starts with this one's keeps everything: its rows sit next to these.
    await store.modules.addVersion(`${name}-other`, Buffer.from("other"), "h-o", { activate: true, artifact: artifact("key-a", Buffer.from("other artifact")) });
    const add = (n: number, options: { activate?: boolean; keepVersions?: number } = {}) =>
      store.modules.addVersion(name, Buffer.from(`wasm ${n}`), `h-${n}`, { ...options, artifact: artifact("key-a", Buffer.from(`artifact ${n}`)) });
    await add(1, { activate: true });
    await store.modules.putArtifact(name, 1, artifact("key-b", Buffer.from("artifact 1 for other limits")));
    await add(2, { activate: true });
    await add(3);
    t.deepEqual(await versionsOf(name), [1, 2, 3], "without keepVersions every version stays");
    // Keep 2: versions 3 and 4 stay, and 2 because it is active; 1 goes with both its artifacts.
    await add(4, { keepVersions: 2 });
    t.deepEqual(await versionsOf(name), [2, 3, 4]);
    t.is(await store.modules.getBytes(name, 1), undefined);
    t.is(await store.modules.getArtifact(name, 1, "key-a"), undefined);
    t.is(await store.modules.getArtifact(name, 1, "key-b"), undefined);
    t.is(Buffer.from((await store.modules.getBytes(name, 2))!).toString(), "wasm 2");
    t.is(Buffer.from((await store.modules.getArtifact(name, 2, "key-a"))!.bytes).toString(), "artifact 2");
    // A removed version cannot be made active again.
    t.true(isKeystateError(await t.throwsAsync(store.modules.setActive(name, 1)), "MODULE_NOT_FOUND"));
    // The new version active: 2 is no longer kept for being active.
    await add(5, { activate: true, keepVersions: 2 });
    t.deepEqual(await versionsOf(name), [4, 5]);
    t.is((await store.modules.list()).find((m) => m.name === name)?.activeVersion, 5);
    for (const gone of [2, 3]) {
      t.is(await store.modules.getBytes(name, gone), undefined);
      t.is(await store.modules.getArtifact(name, gone, "key-a"), undefined);
    }
    t.is(Buffer.from((await store.modules.getArtifact(name, 4, "key-a"))!.bytes).toString(), "artifact 4");
    // Version numbers go on from the highest ever stored.
    t.like(await add(6, { keepVersions: 2 }), { version: 6 });
    t.deepEqual(await versionsOf(name), [5, 6]);
    t.deepEqual(await versionsOf(`${name}-other`), [1]);
    t.is(Buffer.from((await store.modules.getArtifact(`${name}-other`, 1, "key-a"))!.bytes).toString(), "other artifact");
  });

  test(title("modules are listed by name, each with its own version numbers"), async (t) => {
    const store = await openFor(t);
    const prefix = `list-${randomUUID()}`;
    await store.modules.addVersion(`${prefix}-b`, Buffer.from("b"), "hb");
    await store.modules.addVersion(`${prefix}-a`, Buffer.from("a"), "ha");
    await store.modules.addVersion(`${prefix}-b`, Buffer.from("b2"), "hb2");
    const listed = (await store.modules.list()).filter((m) => m.name.startsWith(prefix));
    t.deepEqual(
      listed.map((m) => [m.name, m.versions.map((v) => v.version)]),
      [[`${prefix}-a`, [1]], [`${prefix}-b`, [1, 2]]],
    );
  });

  test(title("binary payloads with every byte value survive"), async (t) => {
    const store = await openFor(t);
    const id = newEntity("contract.Binary");
    const events: JournalEvent[] = [
      { type: "contract.Bytes", payload: ALL_BYTES },
      { type: "contract.Empty", payload: new Uint8Array(0) },
      { type: "contract.Ünïcödé✓", payload: ALL_BYTES.slice().reverse() },
      { type: "contract.Big", payload: Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff) },
    ];
    await store.journal.append(id, 0, events);
    t.deepEqual(plain((await store.journal.recover(id)).events), plain(events.map((e, i) => ({ ...e, seq: i + 1 }))));
    await store.journal.saveSnapshot(id, { seq: 4, state: ALL_BYTES });
    t.deepEqual([...(await store.journal.recover(id)).snapshot!.state], [...ALL_BYTES]);
    await store.values.put(id, ALL_BYTES.subarray(100, 200));
    t.deepEqual([...(await store.values.get(id))!], [...ALL_BYTES.subarray(100, 200)]);
  });

  test(title("ping answers while the store is open"), async (t) => {
    const store = await openFor(t);
    await t.notThrowsAsync(store.ping());
  });
}
