// Reads back every entity a chaos workload touched and checks it against what the workload
// recorded: a counter is at least what was acknowledged and at most that plus the attempts in
// doubt; a cart holds every acknowledged product once, nothing never sent, nothing refused,
// and in-doubt products at most once; optionally a cart's journal has seqs 1..n, one per event.
import { CART_PERSISTENCE_ID, ClientPool, availability, recoveryTimes, unary, type NodeAddress, type RecoveryTimes, type WorkloadRecord } from "./chaos-workload.js";

export interface EntityReaders {
  counterValue(counterId: string): Promise<number>;
  cartItems(userId: string): Promise<Array<{ productId: string; quantity: number }>>;
  /** The entity's journal entries (e.g. XRANGE of its Redis stream); when given, seqs are checked. */
  readJournal?(persistenceId: string, key: string): Promise<Array<{ seq: number }>>;
}

export interface CheckOptions {
  readonly kills?: ReadonlyArray<{ at: number }>;
  /** Entities read at once. */
  readonly concurrency?: number;
}

export interface ChaosReport {
  /** `acked`/`inDoubt`: increments (counters) and product ids (carts) as the workload recorded them. */
  counters: { checked: number; acked: number; inDoubt: number; violations: string[] };
  carts: { checked: number; acked: number; inDoubt: number; violations: string[]; duplicatesAfterInDoubtRetry: number };
  seqGaps: string[];
  journalsChecked: number;
  availability: { ok: number; total: number; ratio: number | null };
  recovery: RecoveryTimes & { kills: number };
  attempts: WorkloadRecord["attempts"];
  durationMs: number;
}

export function violationCount(report: ChaosReport): number {
  return report.counters.violations.length + report.carts.violations.length + report.seqGaps.length;
}

async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

function problem(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function checkEntities(record: WorkloadRecord, readers: EntityReaders, options: CheckOptions = {}): Promise<ChaosReport> {
  const concurrency = options.concurrency ?? 32;
  const kills = options.kills ?? [];
  const report: ChaosReport = {
    counters: { checked: 0, acked: 0, inDoubt: 0, violations: [] },
    carts: { checked: 0, acked: 0, inDoubt: 0, violations: [], duplicatesAfterInDoubtRetry: 0 },
    seqGaps: [],
    journalsChecked: 0,
    availability: availability(record),
    recovery: { ...recoveryTimes(record.ops, kills), kills: kills.length },
    attempts: record.attempts,
    durationMs: record.endedAt - record.startedAt,
  };

  await inParallel(Object.entries(record.counters), concurrency, async ([id, expected]) => {
    let value: number;
    try {
      value = await readers.counterValue(id);
    } catch (err) {
      report.counters.violations.push(`counter ${id}: could not be read: ${problem(err)}`);
      return;
    }
    report.counters.checked++;
    report.counters.acked += expected.acked;
    report.counters.inDoubt += expected.inDoubt;
    const max = expected.acked + expected.inDoubt;
    if (!Number.isInteger(value) || value < expected.acked || value > max) {
      report.counters.violations.push(`counter ${id}: value ${value} outside [acked ${expected.acked}, acked + in doubt ${max}]`);
    }
  });

  await inParallel(Object.entries(record.carts), concurrency, async ([userId, expected]) => {
    let items: Array<{ productId: string; quantity: number }>;
    try {
      items = await readers.cartItems(userId);
    } catch (err) {
      report.carts.violations.push(`cart ${userId}: could not be read: ${problem(err)}`);
      return;
    }
    report.carts.checked++;
    report.carts.acked += expected.acked.length;
    report.carts.inDoubt += expected.inDoubt.length;
    const violations = report.carts.violations;
    const quantity = new Map<string, number>();
    for (const item of items) {
      if (quantity.has(item.productId)) violations.push(`cart ${userId}: product ${item.productId} has two lines`);
      quantity.set(item.productId, (quantity.get(item.productId) ?? 0) + item.quantity);
    }
    const acked = new Set(expected.acked);
    const inDoubt = new Set(expected.inDoubt);
    const failed = new Set(expected.failed);
    const afterDoubt = new Set(expected.retriedAfterDoubt);
    for (const productId of acked) {
      const q = quantity.get(productId);
      if (q === undefined) violations.push(`cart ${userId}: acknowledged product ${productId} is missing`);
      else if (q !== 1) {
        // The client's one retry of an in-doubt AddItem may land a second time: AddItem is not
        // idempotent and nothing deduplicates requests yet. The node applied each attempt at most
        // once, which is what this bounds: 1 acked + 1 in-doubt attempt.
        const retried = afterDoubt.has(productId);
        if (retried && q === 2) report.carts.duplicatesAfterInDoubtRetry++;
        else violations.push(`cart ${userId}: acknowledged product ${productId} has quantity ${q}, not 1${retried ? " (nor 2 after its in-doubt first attempt)" : ""}`);
      }
    }
    for (const productId of inDoubt) {
      // Never acknowledged: each of its (at most two) in-doubt attempts may have landed once.
      const q = quantity.get(productId);
      if (q !== undefined && q > 2) violations.push(`cart ${userId}: in-doubt product ${productId} has quantity ${q}, more than its attempts`);
    }
    for (const [productId, q] of quantity) {
      if (failed.has(productId)) violations.push(`cart ${userId}: product ${productId} is present (quantity ${q}) though every attempt to add it was refused`);
      else if (!acked.has(productId) && !inDoubt.has(productId)) violations.push(`cart ${userId}: product ${productId} was never sent`);
    }
    if (!readers.readJournal) return;
    let entries: Array<{ seq: number }>;
    try {
      entries = await readers.readJournal(CART_PERSISTENCE_ID, userId);
    } catch (err) {
      report.seqGaps.push(`cart ${userId}: journal could not be read: ${problem(err)}`);
      return;
    }
    report.journalsChecked++;
    const seqs = entries.map((e) => e.seq);
    const gap = seqs.findIndex((seq, i) => seq !== i + 1);
    if (gap >= 0) report.seqGaps.push(`cart ${userId}: journal seqs ${seqs.join(",")} are not 1..${seqs.length} (entry ${gap + 1} has seq ${seqs[gap]})`);
    const events = [...quantity.values()].reduce((a, b) => a + b, 0);
    if (seqs.length !== events) report.seqGaps.push(`cart ${userId}: journal has ${seqs.length} events, the cart shows ${events} items added`);
  });
  return report;
}

const ms = (value: number | null) => (value === null ? "n/a" : `${value} ms`);

export function formatReport(report: ChaosReport, maxLines = 20): string {
  const lines: string[] = [];
  const list = (title: string, items: readonly string[]) => {
    lines.push(`${title}: ${items.length === 0 ? "none" : items.length}`);
    for (const item of items.slice(0, maxLines)) lines.push(`  - ${item}`);
    if (items.length > maxLines) lines.push(`  … and ${items.length - maxLines} more`);
  };
  const a = report.availability;
  lines.push(`chaos run: ${(report.durationMs / 1000).toFixed(1)} s, ${a.total} operations, ${report.attempts.total} attempts`);
  lines.push(`availability: ${a.ratio === null ? "n/a" : `${(a.ratio * 100).toFixed(3)} %`} (${a.ok}/${a.total} operations ok after one retry)`);
  lines.push(`attempts by status: ${Object.entries(report.attempts.byStatus).map(([s, n]) => `${s}=${n}`).join(" ")}`);
  const r = report.recovery;
  lines.push(`recovery after ${r.kills} kills: p50 ${ms(r.p50)}, p99 ${ms(r.p99)} over ${r.samples.length} keys; ${r.unrecovered} never recovered`);
  lines.push(`counters checked: ${report.counters.checked} (${report.counters.acked} increments acked, ${report.counters.inDoubt} in doubt)`);
  list("counter violations", report.counters.violations);
  const c = report.carts;
  lines.push(`carts checked: ${c.checked} (${c.acked} adds acked, ${c.inDoubt} in doubt; duplicates after an in-doubt retry: ${c.duplicatesAfterInDoubtRetry})`);
  list("cart violations", report.carts.violations);
  lines.push(`journals checked: ${report.journalsChecked}`);
  list("journal sequence problems", report.seqGaps);
  lines.push(violationCount(report) === 0 ? "RESULT: no violations" : `RESULT: ${violationCount(report)} violations`);
  return lines.join("\n");
}

/** Readers over gRPC: each read tries the nodes in turn (skipping down ones) until one answers, up to `attempts` times. */
export function grpcReaders(nodes: () => ReadonlyArray<NodeAddress | undefined>, attempts = 6, deadlineMs = 5000): EntityReaders & { close(): void } {
  const pool = new ClientPool(nodes);
  let turn = 0;
  async function read(service: "counter" | "cart", method: string, request: object): Promise<any> {
    let last: unknown = new Error("no node is up");
    for (let i = 0; i < attempts; i++) {
      const slot = turn++ % Math.max(pool.size(), 1);
      const clients = pool.get(slot);
      if (clients) {
        try {
          return await unary(clients[service], method, request, deadlineMs);
        } catch (err) {
          last = err;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * (i + 1)));
    }
    throw last;
  }
  return {
    async counterValue(counterId) {
      return Number(((await read("counter", "Get", { counterId })) as { value: string }).value);
    },
    async cartItems(userId) {
      return ((await read("cart", "GetCart", { userId })) as { items: Array<{ productId: string; quantity: number }> }).items;
    },
    close: () => pool.close(),
  };
}
