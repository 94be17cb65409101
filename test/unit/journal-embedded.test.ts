// The embedded (LMDB) store: the shared contract, plus durability across reopen and kill -9.
import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test from "ava";
import { isKeystateError } from "../../host/errors.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import { openStore } from "../../host/journal/open-store.js";
import { registerStoreContract, newEntity, eventsNumbered } from "../helpers/store-contract.js";
import { tempDirFor } from "../helpers/temp-dir.js";

registerStoreContract("embedded", async (t) => EmbeddedStore.open(await tempDirFor(t, "lmdb")));

test("embedded: openStore without a Redis URL opens the embedded store in dataDir", async (t) => {
  const store = await openStore({ dataDir: await tempDirFor(t, "lmdb") });
  t.teardown(() => store.close());
  t.is(store.kind, "embedded");
});

test("embedded: everything written is there after close and reopen", async (t) => {
  const dir = await tempDirFor(t, "lmdb");
  const id = newEntity();
  const first = await EmbeddedStore.open(dir);
  await first.journal.append(id, 0, eventsNumbered(1, 3));
  await first.journal.saveSnapshot(id, { seq: 2, state: Buffer.from("s2") });
  await first.values.put(id, Buffer.from("value"));
  await first.modules.addVersion("kept", Buffer.from("wasm"), "h");
  await first.modules.setActive("kept", 1);
  await first.close();

  const second = await EmbeddedStore.open(dir);
  t.teardown(() => second.close());
  const recovered = await second.journal.recover(id);
  t.is(recovered.snapshot?.seq, 2);
  t.deepEqual(recovered.events.map((e) => e.seq), [3]);
  t.is(Buffer.from((await second.values.get(id))!).toString(), "value");
  t.like((await second.modules.list())[0], { name: "kept", activeVersion: 1 });
});

test("embedded: a data directory with a dot in its name is a directory, not a database file", async (t) => {
  // lmdb-js takes a path with an extension for a single-file database unless told otherwise.
  const dir = join(await tempDirFor(t, "lmdb"), "my.data");
  const id = newEntity();
  const first = await EmbeddedStore.open(dir);
  await first.journal.append(id, 0, eventsNumbered(1, 2));
  await first.close();
  t.true((await stat(join(dir, "data.mdb"))).isFile());
  const second = await EmbeddedStore.open(dir);
  t.teardown(() => second.close());
  t.deepEqual((await second.journal.readEvents(id, 1)).map((e) => e.seq), [1, 2]);
});

test("embedded: a closed store fails with STORAGE_UNAVAILABLE", async (t) => {
  const store = await EmbeddedStore.open(await tempDirFor(t, "lmdb"));
  await store.close();
  t.true(isKeystateError(await t.throwsAsync(store.ping()), "STORAGE_UNAVAILABLE"));
  const err = await t.throwsAsync(store.journal.append(newEntity(), 0, eventsNumbered(1, 1)));
  t.true(isKeystateError(err, "STORAGE_UNAVAILABLE"), String(err));
});

test("embedded: an entity key too long for LMDB is refused clearly", async (t) => {
  const store = await EmbeddedStore.open(await tempDirFor(t, "lmdb"));
  t.teardown(() => store.close());
  const err = await t.throwsAsync(store.journal.append({ persistenceId: "p", key: "k".repeat(5000) }, 0, eventsNumbered(1, 1)));
  t.true(isKeystateError(err, "INVALID_REQUEST"), String(err));
});

const APPENDER = fileURLToPath(new URL("../fixtures/journal-appender.ts", import.meta.url));

test("embedded: every acknowledged append survives SIGKILL of the writing process", async (t) => {
  const dir = await tempDirFor(t, "lmdb-crash");
  const entities = 4;
  const child = spawn(process.execPath, ["--import", "tsx", APPENDER, dir, String(entities)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));

  // Highest acknowledged seq per entity; kill once enough acks arrived to be mid-stream.
  const acked = new Array<number>(entities).fill(0);
  let total = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    const [word, entity, seq] = line.split(" ");
    if (word !== "ack") continue;
    acked[Number(entity)] = Number(seq);
    if (++total === 400) child.kill("SIGKILL");
  }
  t.is(await exited, "SIGKILL", stderr);
  t.true(total >= 400, `only ${total} acks before exit: ${stderr}`);

  const store = await EmbeddedStore.open(dir);
  t.teardown(() => store.close());
  for (let entity = 0; entity < entities; entity++) {
    const { events, lastSeq } = await store.journal.recover({ persistenceId: "crash.Test", key: `entity-${entity}` });
    t.true(lastSeq >= acked[entity]!, `entity ${entity}: acknowledged ${acked[entity]}, found ${lastSeq}`);
    // Gap-free and each payload the one written for its seq (no torn or shuffled rows).
    t.deepEqual(
      events.map((e) => Buffer.from(e.payload).toString()),
      events.map((_, i) => `${entity}:${i + 1}`),
    );
  }
});
