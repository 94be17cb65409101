// One mailbox per active entity: commands for that entity run one batch at a time,
// in arrival order. A batch is everything that queued while the previous batch ran,
// which lets the entity commit all of its events in one journal append (group commit).
export interface Envelope<C, R> {
  readonly command: C;
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

  post(command: C): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ command, resolve, reject });
      if (!this.#running) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
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
