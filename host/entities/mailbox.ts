// One mailbox per active entity: commands for that entity run one batch at a time,
// in arrival order. A batch is everything that queued while the previous batch ran,
// which lets the entity commit all of its events in one journal append (group commit).
// An envelope whose caller left (deadline, cancel) while it queued is answered at once
// and taken out, so abandoned calls never hold the mailbox.
//
// MailboxCore's one field, `queued`, says whether a batch runs and holds the commands waiting
// for the next. The entity manager's resident records extend it directly (no mailbox object
// or bound closure per entity); Mailbox is the stand-alone form. It was a side table (a Map
// of the busy mailboxes) to save idle records the field's 8 B, but a Map set and deleted on
// every command rebuilt its hash table every few hundred commands, and since the Map lives
// for good those tables were allocated in V8's old generation, on pages the process touched
// for the first time: the in-process command path ran x1.2 faster with the field. Idle
// entities are parked in compact rows anyway (parked-entities.ts), without a record.
//
// A command for an idle entity that had commands wait together lately (commands keep coming
// to it) does not start a batch on its own: the batch starts at the end of the
// event loop's current turn (setImmediate), so the commands that arrive together (a node
// reads many calls from its connections in one turn) share one guest pass and ONE storage
// write. Measured end to end (8 keys, 64 calls in flight, Redis with fsync on every write):
// a batch grew from 2.9 to 8.0 commands, Node CPU per call fell from ~95 to ~70 us and
// throughput rose ~35-40%. Any other entity starts at once: waiting would cost it a turn
// for no company (a caller sending one command after another's reply never has any), and on
// a loop that never yields (the in-process and density benches) its command's garbage would
// live across the turn (~10% of the command rate, ~40 MiB more RSS for a million counters
// touched once each).
//
// Such a command — for an idle entity with no queue lately — is a batch of one, and on a node
// with many entities nearly every command is one. A processor may run it alone (runAlone):
// the same steps without an envelope, an outcome list or the batch's async frames, and the
// mailbox is busy until it calls aloneEnded(), so commands arriving meanwhile queue behind it
// and run as the next batch, in order.
import { callerGone, type CallContext } from "./call-context.js";

export interface Envelope<C, R> {
  readonly command: C;
  /** The caller's request id and liveness; the processor skips the command once the caller is gone. */
  readonly context?: CallContext;
  resolve(reply: R): void;
  reject(err: unknown): void;
}

const ONCE = { once: true } as const;

/** Commands per batch unless the mailbox says otherwise. */
export const DEFAULT_MAX_BATCH = 256;

export abstract class MailboxCore<C, R> {
  /** Its waiting envelopes (null: a batch runs and nothing waits; undefined: idle). */
  private queued: Envelope<C, R>[] | null | undefined = undefined;

  /** Runs one batch, settling every envelope in it. */
  protected abstract runBatch(batch: Envelope<C, R>[]): Promise<void>;

  /**
   * Runs `command` as a batch of one without an envelope, when the processor can; undefined
   * (having run nothing) when it needs the batch path. Called on an idle mailbox already
   * marked busy; whoever settles the returned promise calls aloneEnded() first.
   */
  protected runAlone(_command: C, _context: CallContext | undefined): Promise<R> | undefined {
    return undefined;
  }

  /** The command runAlone took is done with the entity (its write settled, or none was needed): what queued meanwhile runs next. */
  aloneEnded(): void {
    this.afterBatch();
    if (this.queued) void this.drain();
    else this.queued = undefined;
  }

  /** Runs after each batch has settled, before the next one starts. */
  protected afterBatch(): void {}

  protected get maxBatch(): number {
    return DEFAULT_MAX_BATCH;
  }

  get idle(): boolean {
    return this.queued === undefined;
  }

  get depth(): number {
    return this.queued?.length ?? 0;
  }

  post(command: C, context?: CallContext): Promise<R> {
    if (this.queued === undefined && !recentlyBusy.has(this)) {
      const gone = callerGone(context);
      if (gone) return Promise.reject(gone);
      this.queued = null;
      const alone = this.runAlone(command, context);
      if (alone !== undefined) return alone;
      this.queued = undefined;
    }
    return new Promise<R>((resolve, reject) => {
      const gone = callerGone(context);
      if (gone) return reject(gone);
      const envelope = new Posted<C, R>(this, command, context, resolve, reject);
      // The envelope itself listens: no closures per command for a leave that almost never comes.
      context?.signal?.addEventListener("abort", envelope, ONCE);
      const queue = this.queued;
      if (queue === undefined) {
        if (recentlyBusy.has(this)) {
          this.queued = [envelope];
          startSoon(this);
        } else {
          this.queued = null;
          void this.drain([envelope]);
        }
      } else if (queue === null) this.queued = [envelope];
      else {
        // A second command waits with another: commands keep coming to this entity. (One
        // waiting alone is no sign: a caller that sends its next command on the reply to the
        // last may find the batch that answered it still finishing.)
        markRecentlyBusy(this);
        queue.push(envelope);
      }
    });
  }

  /**
   * Takes `envelope` out when it still waits in the queue (its caller left) and answers it
   * with why. Once taken into a batch it is not here: the processor checks callerGone
   * before the guest runs it.
   */
  withdraw(envelope: Envelope<C, R>): void {
    const queue = this.queued;
    const at = queue ? queue.indexOf(envelope) : -1;
    if (at < 0) return;
    queue!.splice(at, 1);
    if (queue!.length === 0) this.queued = null;
    envelope.reject(callerGone(envelope.context));
  }

  /**
   * Runs `first` (a batch taken by post), else what queued, and batches until nothing waits;
   * startAll calls it for each mailbox whose batch waited for the end of the turn.
   * Not #private: a class with #methods gives every instance a brand slot (8 B per resident entity).
   */
  async drain(first?: Envelope<C, R>[]): Promise<void> {
    try {
      for (let batch = first ?? this.nextBatch(); batch !== undefined; batch = this.nextBatch()) {
        batch = withoutGone(batch);
        if (batch.length === 0) continue;
        try {
          await this.runBatch(batch);
        } catch (err) {
          // The processor settles each envelope itself; this is the safety net for a bug.
          for (const envelope of batch) envelope.reject(err);
        }
        this.afterBatch();
      }
    } finally {
      this.queued = undefined;
    }
  }

  /** The next batch out of the queue (undefined when none waits). */
  private nextBatch(): Envelope<C, R>[] | undefined {
    const queue = this.queued;
    if (!queue) return undefined;
    if (queue.length <= this.maxBatch) {
      this.queued = null;
      return queue;
    }
    return queue.splice(0, this.maxBatch);
  }
}

/**
 * The mailboxes that had two commands waiting together lately (about the last RECENT_LIMIT
 * such mailboxes of the node): the entities commands keep coming to. Only these wait for the
 * end of the turn; an entity that gets one command now and then (a million counters touched
 * once each), or one command after another's reply, starts at once, so its command's garbage
 * dies young instead of living across a turn. Marked when commands queue together, not after
 * every batch: the set then changes only under contention, not on every command of a busy node.
 */
const RECENT_LIMIT = 4096;
const recentlyBusy = new Set<MailboxCore<unknown, unknown>>();

function markRecentlyBusy(mailbox: MailboxCore<unknown, unknown>): void {
  // Cleared whole rather than kept in order: cheap, and a hot entity is back at its next queued command.
  if (recentlyBusy.size >= RECENT_LIMIT) recentlyBusy.clear();
  recentlyBusy.add(mailbox);
}

/** Mailboxes that became busy this turn; their first batch starts when the turn ends. */
let starting: MailboxCore<unknown, unknown>[] = [];

/** One setImmediate per turn for every mailbox, not one each. */
function startSoon(mailbox: MailboxCore<unknown, unknown>): void {
  if (starting.length === 0) setImmediate(startAll);
  starting.push(mailbox);
}

function startAll(): void {
  const now = starting;
  starting = [];
  for (const mailbox of now) void mailbox.drain();
}

/** `batch` without the envelopes whose callers are gone (answered here); the same array when all still wait. */
function withoutGone<C, R>(batch: Envelope<C, R>[]): Envelope<C, R>[] {
  let kept: Envelope<C, R>[] | undefined;
  for (let i = 0; i < batch.length; i++) {
    const envelope = batch[i]!;
    const gone = callerGone(envelope.context);
    if (gone) {
      envelope.reject(gone);
      kept ??= batch.slice(0, i);
    } else if (kept) kept.push(envelope);
  }
  return kept ?? batch;
}

/**
 * A posted command and its caller's promise, one object: it is also the listener for its
 * caller leaving (an AbortSignal takes an object with handleEvent too), so a command costs
 * no closures beyond its promise's. Settling it stops listening.
 */
class Posted<C, R> implements Envelope<C, R> {
  readonly #mailbox: MailboxCore<C, R>;
  readonly #resolve: (reply: R) => void;
  readonly #reject: (err: unknown) => void;

  constructor(
    mailbox: MailboxCore<C, R>,
    readonly command: C,
    readonly context: CallContext | undefined,
    resolve: (reply: R) => void,
    reject: (err: unknown) => void,
  ) {
    this.#mailbox = mailbox;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  resolve(reply: R): void {
    this.context?.signal?.removeEventListener("abort", this);
    this.#resolve(reply);
  }

  reject(err: unknown): void {
    this.context?.signal?.removeEventListener("abort", this);
    this.#reject(err);
  }

  /** The caller left. */
  handleEvent(): void {
    this.#mailbox.withdraw(this);
  }
}

/** A stand-alone mailbox around a batch processor. */
export class Mailbox<C, R> extends MailboxCore<C, R> {
  readonly #process: (batch: Envelope<C, R>[]) => Promise<void>;
  readonly #maxBatch: number;

  constructor(process: (batch: Envelope<C, R>[]) => Promise<void>, maxBatch = DEFAULT_MAX_BATCH) {
    super();
    this.#process = process;
    this.#maxBatch = maxBatch;
  }

  protected override get maxBatch(): number {
    return this.#maxBatch;
  }

  protected runBatch(batch: Envelope<C, R>[]): Promise<void> {
    return this.#process(batch);
  }
}
