// The chaos workload: `concurrency` callers send counter increments and cart adds (each add a
// product id never used before) to random nodes while nodes die, and record for every entity
// what was acknowledged and what is in doubt, so a checker can read the entities back and tell
// a lost or duplicated write from an unlucky client. Clients are plain @grpc/grpc-js clients
// built from the contract .protos, as in grpc-client.ts.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { randomBytes, randomInt } from "node:crypto";
import { join } from "node:path";
import { REPO_ROOT } from "./node-process.js";

export const COUNTER_SERVICE = "keystate.examples.counter.Counter";
export const CART_SERVICE = "keystate.examples.shoppingcart.ShoppingCart";
export const CART_PERSISTENCE_ID = "shopping-cart";

/** Failed calls that may still have been applied. Any other status (and "no node") means not applied. */
export const IN_DOUBT_CODES: ReadonlySet<number> = new Set([
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNAVAILABLE,
  grpc.status.INTERNAL,
  grpc.status.CANCELLED,
  grpc.status.UNKNOWN,
]);

export type NodeAddress = { readonly grpcPort: number };

export interface WorkloadOptions {
  readonly durationMs: number;
  /** The nodes right now; a slot is undefined while its node is down. Read before every call. */
  nodes(): ReadonlyArray<NodeAddress | undefined>;
  readonly concurrency?: number;
  /** Entities: half counters `<prefix>-c-<n>`, half carts `<prefix>-u-<n>`. */
  readonly keys?: number;
  readonly keyPrefix?: string;
  readonly deadlineMs?: number;
  /** A caller's pause after an operation failed even after its retry. */
  readonly failurePauseMs?: number;
  /** Callers take keys whose operation failed this long ago before random ones (a client trying again), so recovery is measured rather than waited for. 0 = off. */
  readonly revisitFailedAfterMs?: number;
  onProgress?(stats: { ops: number; ok: number; elapsedMs: number }): void;
}

export interface CounterRecord {
  acked: number;
  /** Attempts that failed with an in-doubt status: each may have added 1. */
  inDoubt: number;
  /** Attempts that definitely did not apply. */
  failed: number;
}

export interface CartRecord {
  acked: string[];
  /** Product ids whose every attempt failed, at least one in doubt. */
  inDoubt: string[];
  /** Product ids whose every attempt definitely did not apply. */
  failed: string[];
  /** Acked product ids whose first attempt was in doubt: a second line quantity would come from the client's retry. */
  retriedAfterDoubt: string[];
}

/** One logical operation (after its retry), for availability and time to recovery. */
export interface OpEvent {
  start: number;
  end: number;
  key: string;
  ok: boolean;
}

export interface WorkloadRecord {
  startedAt: number;
  endedAt: number;
  counters: Record<string, CounterRecord>;
  carts: Record<string, CartRecord>;
  ops: OpEvent[];
  attempts: { total: number; ok: number; byStatus: Record<string, number> };
}

type Outcome = { ok: true } | { ok: false; status: string; inDoubt: boolean };

const protoOptions = { keepCase: false, longs: String, defaults: true } as const;
let constructors: { counter: grpc.ServiceClientConstructor; cart: grpc.ServiceClientConstructor } | undefined;

function serviceConstructor(module: string, file: string, service: string): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(file, { ...protoOptions, includeDirs: [join(REPO_ROOT, "modules", module, "proto"), join(REPO_ROOT, "proto")] });
  return service.split(".").reduce((at: any, part) => at[part], grpc.loadPackageDefinition(definition)) as grpc.ServiceClientConstructor;
}

export interface NodeClients {
  readonly port: number;
  readonly counter: grpc.Client;
  readonly cart: grpc.Client;
  close(): void;
}

export function nodeClients(port: number): NodeClients {
  constructors ??= {
    counter: serviceConstructor("counter", "counter.proto", COUNTER_SERVICE),
    cart: serviceConstructor("shopping-cart", "shoppingcart.proto", CART_SERVICE),
  };
  const address = `127.0.0.1:${port}`;
  const counter = new constructors.counter(address, grpc.credentials.createInsecure());
  const cart = new constructors.cart(address, grpc.credentials.createInsecure());
  return { port, counter, cart, close: () => (counter.close(), cart.close()) };
}

/** A unary call with a deadline and an x-request-id; rejects with the grpc ServiceError. */
export function unary(client: grpc.Client, method: string, request: object, deadlineMs: number, requestId?: string): Promise<any> {
  const metadata = new grpc.Metadata();
  if (requestId) metadata.set("x-request-id", requestId);
  return new Promise((resolve, reject) => {
    (client as any)[method](request, metadata, { deadline: new Date(Date.now() + deadlineMs) }, (err: grpc.ServiceError | null, reply: unknown) =>
      err ? reject(err) : resolve(reply),
    );
  });
}

/** One client pair per node slot, replaced when the slot's port changes (a restarted node). */
export class ClientPool {
  readonly #slots: (NodeClients | undefined)[] = [];
  constructor(private readonly nodes: () => ReadonlyArray<NodeAddress | undefined>) {}

  size(): number {
    return this.nodes().length;
  }

  get(slot: number): NodeClients | undefined {
    const node = this.nodes()[slot];
    const held = this.#slots[slot];
    if (held && held.port !== node?.grpcPort) {
      held.close();
      this.#slots[slot] = undefined;
    }
    if (node && !this.#slots[slot]) this.#slots[slot] = nodeClients(node.grpcPort);
    return this.#slots[slot];
  }

  close(): void {
    for (const held of this.#slots) held?.close();
    this.#slots.length = 0;
  }
}

/** A random slot, another than `not` when there is a choice. */
function pickSlot(count: number, not?: number): number {
  if (count <= 1 || not === undefined) return randomInt(Math.max(count, 1));
  const other = randomInt(count - 1);
  return other >= not ? other + 1 : other;
}

export function entityKeys(keys: number, prefix = "chaos"): string[] {
  const counters = Math.ceil(keys / 2);
  return Array.from({ length: keys }, (_, i) => (i < counters ? `${prefix}-c-${i}` : `${prefix}-u-${i - counters}`));
}

export async function runWorkload(options: WorkloadOptions): Promise<WorkloadRecord> {
  const deadlineMs = options.deadlineMs ?? 3000;
  const failurePauseMs = options.failurePauseMs ?? 50;
  const revisitMs = options.revisitFailedAfterMs ?? 200;
  const prefix = options.keyPrefix ?? "chaos";
  const keys = entityKeys(options.keys ?? 10_000, prefix);
  const run = randomBytes(4).toString("hex");
  const pool = new ClientPool(options.nodes);
  const record: WorkloadRecord = { startedAt: Date.now(), endedAt: 0, counters: {}, carts: {}, ops: [], attempts: { total: 0, ok: 0, byStatus: {} } };
  const revisit: { key: string; at: number }[] = [];
  let sequence = 0;
  let okOps = 0;
  const until = record.startedAt + options.durationMs;

  const count = (status: string) => (record.attempts.byStatus[status] = (record.attempts.byStatus[status] ?? 0) + 1);

  async function attempt(slot: number, isCounter: boolean, request: object, requestId: string): Promise<Outcome> {
    record.attempts.total++;
    const clients = pool.get(slot);
    if (!clients) {
      count("NO_NODE");
      return { ok: false, status: "NO_NODE", inDoubt: false };
    }
    try {
      await unary(isCounter ? clients.counter : clients.cart, isCounter ? "Increase" : "AddItem", request, deadlineMs, requestId);
      record.attempts.ok++;
      count("OK");
      return { ok: true };
    } catch (err) {
      const code = typeof (err as grpc.ServiceError).code === "number" ? (err as grpc.ServiceError).code : grpc.status.UNKNOWN;
      const status = grpc.status[code] ?? String(code);
      count(status);
      return { ok: false, status, inDoubt: IN_DOUBT_CODES.has(code) };
    }
  }

  /** One logical operation: a try and, on failure, one retry of the same request on another node. */
  async function operate(key: string): Promise<boolean> {
    const isCounter = key.startsWith(`${prefix}-c-`);
    const productId = `p-${run}-${++sequence}`;
    const requestId = `chaos-${run}-${sequence}`;
    const request = isCounter ? { counterId: key, value: 1 } : { userId: key, productId, name: productId, quantity: 1 };
    const first = pickSlot(pool.size());
    const outcomes = [await attempt(first, isCounter, request, requestId)];
    if (!outcomes[0]!.ok) outcomes.push(await attempt(pickSlot(pool.size(), first), isCounter, request, requestId));
    const ok = outcomes.some((o) => o.ok);
    const doubtful = outcomes.filter((o) => !o.ok && o.inDoubt).length;
    if (isCounter) {
      const entry = (record.counters[key] ??= { acked: 0, inDoubt: 0, failed: 0 });
      if (ok) entry.acked++;
      entry.inDoubt += doubtful;
      entry.failed += outcomes.filter((o) => !o.ok && !o.inDoubt).length;
    } else {
      const entry = (record.carts[key] ??= { acked: [], inDoubt: [], failed: [], retriedAfterDoubt: [] });
      if (ok) entry.acked.push(productId);
      else (doubtful > 0 ? entry.inDoubt : entry.failed).push(productId);
      if (ok && doubtful > 0) entry.retriedAfterDoubt.push(productId);
    }
    return ok;
  }

  function nextKey(): string {
    const due = revisit[0];
    if (due && due.at <= Date.now()) return revisit.shift()!.key;
    return keys[randomInt(keys.length)]!;
  }

  async function caller(): Promise<void> {
    while (Date.now() < until) {
      const key = nextKey();
      const start = Date.now();
      const ok = await operate(key);
      const end = Date.now();
      record.ops.push({ start, end, key, ok });
      if (ok) okOps++;
      else {
        if (revisitMs > 0) revisit.push({ key, at: end + revisitMs });
        await new Promise((resolve) => setTimeout(resolve, failurePauseMs));
      }
    }
  }

  const report = () => options.onProgress?.({ ops: record.ops.length, ok: okOps, elapsedMs: Date.now() - record.startedAt });
  const progress = setInterval(report, 10_000);
  try {
    await Promise.all(Array.from({ length: options.concurrency ?? 16 }, caller));
  } finally {
    clearInterval(progress);
    pool.close();
  }
  record.endedAt = Date.now();
  return record;
}

export function availability(record: Pick<WorkloadRecord, "ops">): { ok: number; total: number; ratio: number | null } {
  const ok = record.ops.filter((op) => op.ok).length;
  return { ok, total: record.ops.length, ratio: record.ops.length === 0 ? null : ok / record.ops.length };
}

/** Nearest-rank percentile of ascending `sorted`: the smallest sample with at least p% of samples <= it. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

export interface RecoveryTimes {
  /** One per (kill, key that failed after it), ascending, in ms: kill to that key's first success started after the failure. */
  samples: number[];
  p50: number | null;
  p99: number | null;
  /** (kill, key) pairs with a failure and no later success before the run ended. */
  unrecovered: number;
}

/**
 * For each kill, the keys with a failed operation ending between this kill and the next one;
 * for each, the time from the kill to the end of the key's first successful operation that
 * started after that failure ended.
 */
export function recoveryTimes(ops: readonly OpEvent[], kills: ReadonlyArray<{ at: number }>): RecoveryTimes {
  const byKey = new Map<string, OpEvent[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  for (const list of byKey.values()) list.sort((a, b) => a.start - b.start);
  const times = kills.map((k) => k.at).sort((a, b) => a - b);
  const samples: number[] = [];
  let unrecovered = 0;
  times.forEach((at, i) => {
    const windowEnd = times[i + 1] ?? Infinity;
    for (const list of byKey.values()) {
      const failure = list.filter((op) => !op.ok && op.end >= at && op.end < windowEnd).reduce<OpEvent | undefined>((a, b) => (a && a.end <= b.end ? a : b), undefined);
      if (!failure) continue;
      const success = list.filter((op) => op.ok && op.start >= failure.end).reduce<OpEvent | undefined>((a, b) => (a && a.end <= b.end ? a : b), undefined);
      if (success) samples.push(success.end - at);
      else unrecovered++;
    }
  });
  samples.sort((a, b) => a - b);
  return { samples, p50: percentile(samples, 50), p99: percentile(samples, 99), unrecovered };
}
