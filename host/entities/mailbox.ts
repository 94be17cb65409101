// One mailbox per active entity: commands for that entity run one batch at a time,
// in arrival order. A batch is everything that queued while the previous batch ran,
// which lets the entity commit all of its events in one journal append (group commit).
// An envelope whose caller left (deadline, cancel) while it queued is answered at once
// and taken out, so abandoned calls never hold the mailbox.
import { callerGone, type CallContext } from "./call-context.js";

export interface Envelope<C, R> {
  readonly command: C;
  /** The caller's request id and liveness; the processor skips the command once the caller is gone. */
  readonly context?: CallContext;
  resolve(reply: R): void;
  reject(err: unknown): void;
}

export class Mailbox<C, R> {
  readonly #queue: Envelope<C, R>[] = [];
  readonly #process: (batch: Envelope<C, R>[]) => Promise<void>;
  readonly #maxBatch: number;
  #running = false;

  constructor(process: (batch: Envelope<C, R>[]) => Promise<void>, maxBatch = 256) {
    this.#process = process;
    this.#maxBatch = maxBatch;
  }

  get idle(): boolean {
    return !this.#running && this.#queue.length === 0;
  }

  get depth(): number {
    return this.#queue.length;
  }

  post(command: C, context?: CallContext): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const gone = callerGone(context);
      if (gone) return reject(gone);
      const envelope: Envelope<C, R> = { command, context, resolve, reject };
      const signal = context?.signal;
      if (signal) {
        const leave = () => {
          const at = this.#queue.indexOf(envelope);
          // Still queued: it never reaches the entity. Already taken into a batch: the
          // processor checks callerGone before the guest runs it.
          if (at >= 0) {
            this.#queue.splice(at, 1);
            reject(callerGone(context));
          }
        };
        signal.addEventListener("abort", leave, { once: true });
        const settled = () => signal.removeEventListener("abort", leave);
        envelope.resolve = (reply) => (settled(), resolve(reply));
        envelope.reject = (err) => (settled(), reject(err));
      }
      this.#queue.push(envelope);
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch).filter((envelope) => {
          const gone = callerGone(envelope.context);
          if (gone) envelope.reject(gone);
          return !gone;
        });
        if (batch.length === 0) continue;
        try {
          await this.#process(batch);
        } catch (err) {
          // The processor settles each envelope itself; this is the safety net for a bug.
          for (const envelope of batch) envelope.reject(err);
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
