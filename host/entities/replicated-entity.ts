// An active replicated (CRDT) entity on this node: its CRDT (host/crdt), the join of every
// node's stored copy, and the streamed calls it holds. Each mailbox batch runs its
// commands through the guest one after another, each on the CRDT the previous one left:
// the guest reads the value and returns ops, which are applied to a working copy (a
// refused op drops the copy: state unchanged, INVALID_ARGUMENT). The batch's final state
// is saved once as this node's copy, and only then are replies sent, deltas shipped to
// the other nodes (ReplicaSync, in a cluster) and open streams told about the change.
// Changes from other nodes arrive as "merge" commands in the same mailbox; they are joined
// in and shown to streams, never written back (their writer's copy already holds them).
// Streams never hold the mailbox: a stream's callbacks are mailbox commands like any
// other, and its writes do not wait.
import type { CommandEffects } from "./effects.js";
import { StreamEvent, WriteConsistency, type ReplicatedResult, type WireCrdtValue } from "../abi/replicated-abi.js";
import { ENTITY_OVERHEAD_BYTES } from "./memory-budget.js";
import { createCrdt, decodeCrdtState, encodeCrdtState, isCrdtType, replicaOfLineage, type AnyCrdt, type CrdtDelta, type Vote } from "../crdt/index.js";
import { KeystateError } from "../errors.js";
import type { EntityId, ReplicaStore } from "../journal/types.js";
import { log } from "../log.js";
import { guestCommand } from "./guest-command.js";
import type { CallMetadata } from "../abi/abi-codec.js";
import { failureToError, trapToError } from "./guest-errors.js";
import type { Envelope } from "./mailbox.js";
import { applyCrdtOps } from "./replicated-ops.js";
import type { StreamSink } from "./replicated-stream.js";
import { crdtValueToWire } from "./replicated-value.js";
import type { ServiceRuntime } from "./service-runtime.js";
import type { CrdtDeltaObserver } from "./replicated-observer.js";
import type { ReplicaAcks, ReplicaSync } from "./replica-sync.js";

/** One streamed call held by the entity. */
export interface Subscriber {
  /** The service (module version) the stream was opened on: its handlers answer it. */
  readonly service: ServiceRuntime;
  readonly method: string;
  readonly payload: Uint8Array;
  readonly sink: StreamSink;
  /** queued: its start has not run; started: the guest accepted it (or is deciding); closed: ended, failed or cancelled. */
  state: "queued" | "started" | "closed";
  /** The state it last saw (canonical bytes, and as the guest reads it). */
  seen?: { readonly bytes: Uint8Array; readonly wire: WireCrdtValue };
}

export type ReplicatedCommand =
  | {
      readonly kind: "command";
      readonly service: ServiceRuntime;
      readonly method: string;
      readonly payload: Uint8Array;
      readonly effects?: CommandEffects;
      /** The caller's deadline (ms since the epoch): how long a majority / all write may wait for other nodes. */
      readonly deadline?: number;
    }
  | { readonly kind: "stream-start" | "stream-cancel"; readonly stream: Subscriber }
  /** Another node's deltas, or copies another node stored (anti-entropy): joined in, never written back. */
  | { readonly kind: "merge"; readonly deltas?: readonly CrdtDelta[]; readonly copies?: readonly Uint8Array[] }
  /** Retire the votes of replicas whose nodes are gone for good. */
  | { readonly kind: "retire" };

type ReplicatedEnvelope = Envelope<ReplicatedCommand, Uint8Array | undefined>;

/** One local change of a batch: its delta and the write consistency its command asked for. */
interface Change {
  readonly delta: CrdtDelta;
  readonly writeConsistency: WriteConsistency;
}

interface Outcome {
  readonly envelope: ReplicatedEnvelope;
  readonly result?: ReplicatedResult & { reply: Uint8Array };
  readonly error?: unknown;
}

export interface ReplicatedEntityOptions {
  readonly replicaId: string;
  /** True the first time this process loads the entity (single node, see #load: a Vote's own vote is reset). */
  readonly firstLoad: boolean;
  readonly observer?: CrdtDeltaObserver;
  /** The cluster: this node is one replica of many. */
  readonly sync?: ReplicaSync;
}

/**
 * What one resident replicated entity costs besides its CRDT: its ReplicatedEntity, mailbox
 * and map entry (~1.4 KB of heap per GCounter entity, 20,000 of them in one process).
 */
export const REPLICATED_OVERHEAD_BYTES = 1400;
/**
 * Heap per byte of the CRDT's stored form: an ORSet of 200 short tags held ~125 KB of heap
 * for a 4.4 KB stored state (dots, maps, strings), so a CRDT is charged 30x its stored size.
 */
export const CRDT_HEAP_PER_STORED_BYTE = 30;

export class ReplicatedEntity {
  readonly id: EntityId;
  readonly service: ServiceRuntime;
  readonly streams = new Set<Subscriber>();
  /** Bytes of the CRDT state as last read from or written to the store (0 before the first load). */
  storedBytes = 0;

  /** What the memory budget charges for this entity besides its fixed ENTITY_OVERHEAD_BYTES and its id. */
  get residentBytes(): number {
    return CRDT_HEAP_PER_STORED_BYTE * this.storedBytes + REPLICATED_OVERHEAD_BYTES - ENTITY_OVERHEAD_BYTES;
  }
  readonly #replicas: ReplicaStore;
  readonly #options: ReplicatedEntityOptions;
  #firstLoad: boolean;
  #crdt: AnyCrdt | undefined;
  /** The entity's shard, as the store placed it (what its save counters count in). */
  #shard = 0;

  constructor(id: EntityId, service: ServiceRuntime, replicas: ReplicaStore, options: ReplicatedEntityOptions) {
    this.id = id;
    this.service = service;
    this.#replicas = replicas;
    this.#options = options;
    this.#firstLoad = options.firstLoad;
  }

  async process(batch: ReplicatedEnvelope[]): Promise<void> {
    let crdt: AnyCrdt;
    const changes: Change[] = [];
    try {
      crdt = this.#crdt ?? (await this.#load(changes));
    } catch (err) {
      const error = KeystateError.fromStorage(err, "loading a replicated entity");
      for (const envelope of batch) this.#settle({ envelope, error }, undefined);
      return;
    }

    const outcomes: Outcome[] = [];
    for (const envelope of batch) {
      const command = envelope.command;
      if (command.kind === "merge") {
        this.#merge(crdt, command);
        outcomes.push({ envelope });
        continue;
      }
      if (command.kind === "retire") {
        const retired = this.#retireGone(crdt);
        if (retired !== undefined) {
          crdt = retired.crdt;
          changes.push(retired.change);
        }
        outcomes.push({ envelope });
        continue;
      }
      if (command.kind === "stream-start" && command.stream.state === "closed") {
        envelope.resolve(undefined); // cancelled before it started: nothing ran, nothing to undo
        continue;
      }
      const stream = command.kind === "command" ? undefined : command.stream;
      const event = command.kind === "command" ? StreamEvent.NONE : command.kind === "stream-start" ? StreamEvent.STARTED : StreamEvent.CANCELLED;
      try {
        const result = this.#call(crdt, command.kind === "command" ? command : stream!, event, undefined);
        if (result.failure) throw failureToError(result.failure);
        // A forward or side effect that cannot be made fails the command before its ops apply.
        if (command.kind === "command") command.effects?.accept(result);
        // The entity's declared consistency is a floor: a command may only ask for more.
        const writeConsistency = Math.max(result.replicated.writeConsistency, command.kind === "command" ? command.service.writeConsistency : 0);
        if (result.replicated.ops.length > 0) {
          const working = crdt.clone();
          applyCrdtOps(working, result.replicated.ops); // throws on a refused op: `crdt` is untouched
          const delta = working.takeDelta();
          if (delta !== undefined) {
            crdt = working;
            changes.push({ delta, writeConsistency });
          }
        }
        if (stream && event === StreamEvent.STARTED) {
          stream.state = "started";
          if (!result.replicated.endStream) this.streams.add(stream);
          stream.seen = this.#snapshot(crdt);
        }
        outcomes.push({ envelope, result: { ...result.replicated, writeConsistency, reply: result.reply } });
      } catch (err) {
        // trapToError logs traps and limit hits (already KeystateErrors) and passes the rest through.
        outcomes.push({ envelope, error: trapToError(err, this.#context(stream?.method ?? (command as { method: string }).method)) });
      }
    }

    let counter = 0;
    if (changes.length > 0) {
      try {
        const encoded = encodeCrdtState(crdt);
        counter = await this.#replicas.save(this.id, this.#options.sync?.writer ?? this.#options.replicaId, encoded);
        this.storedBytes = encoded.length;
      } catch (err) {
        // The write may or may not have landed: reload on the next command rather than guess.
        this.#crdt = undefined;
        const error = KeystateError.fromStorage(err, "writing a replicated entity");
        for (const outcome of outcomes) this.#settle({ envelope: outcome.envelope, error }, undefined);
        return;
      }
    }
    this.#crdt = crdt;
    // Only now: had the write of a reset vote failed, the next load must reset it again.
    this.#firstLoad = false;
    // Durable here, so it may travel; a command that asked for majority / all waits for the other nodes.
    const acks =
      changes.length > 0
        ? this.#options.sync?.publish({
            id: this.id,
            shard: this.#shard,
            counter,
            deltas: changes.map((change) => change.delta),
            consistency: Math.max(...changes.map((change) => change.writeConsistency)),
          })
        : undefined;
    for (const outcome of outcomes) this.#settle(outcome, acks);
    for (const { delta, writeConsistency } of changes) this.#options.observer?.({ id: this.id, service: this.service.name, delta, writeConsistency });
    this.#notifyStreams(crdt);
  }

  async #load(changes: Change[]): Promise<AnyCrdt> {
    const replicaId = this.#options.sync?.replicaId ?? this.#options.replicaId;
    const stored = await this.#replicas.load(this.id);
    this.#shard = stored.shard;
    const crdt = joinStoredCopies(this.service, this.id.key, replicaId, stored.copies);
    this.storedBytes = Math.max(0, ...stored.copies.map((bytes) => bytes.length));
    const sync = this.#options.sync;
    if (sync !== undefined) {
      sync.loaded(stored.shard, stored.counters);
      // Votes of processes that are gone (this node's own earlier incarnations included) stop counting.
      const retired = this.#retireGone(crdt);
      if (retired !== undefined) {
        changes.push(retired.change);
        return retired.crdt;
      }
    } else if (this.#firstLoad && crdt.type === "Vote" && crdt.value().selfVote) {
      // This node's vote says something about the node now (presence: "I hold a connection").
      // A node that restarted holds nothing: its old vote must not keep the user online forever.
      crdt.vote(false);
      changes.push({ delta: crdt.takeDelta()!, writeConsistency: WriteConsistency.LOCAL });
    }
    return crdt;
  }

  /** Joins what other nodes sent or stored. A part that does not fit (another type after a redeploy) is logged and skipped. */
  #merge(crdt: AnyCrdt, command: { readonly deltas?: readonly CrdtDelta[]; readonly copies?: readonly Uint8Array[] }): void {
    try {
      for (const delta of command.deltas ?? []) crdt.applyDelta(delta);
      for (const bytes of command.copies ?? []) crdt.merge(decodeCrdtState(bytes, crdt.replicaId));
    } catch (err) {
      log().warn({ ...this.#context("(replication)"), err }, "a replicated change from another node did not fit this entity; skipped");
    }
  }

  /**
   * The CRDT without the votes of gone replicas (on a copy), or undefined when none is gone:
   * a Vote's voters, and the voters of the Votes an ORMap holds (their ids are lineage ids,
   * "<replica>#<n>"). Other types keep what dead nodes wrote: their counts and elements are
   * data, not a statement about the node now.
   */
  #retireGone(crdt: AnyCrdt): { crdt: AnyCrdt; change: Change } | undefined {
    const sync = this.#options.sync;
    if (sync === undefined) return undefined;
    const gone = (voters: string[]) => voters.filter((voter) => replicaOfLineage(voter) !== crdt.replicaId && sync.isGone(replicaOfLineage(voter)));
    let working: AnyCrdt | undefined;
    const retired: string[] = [];
    if (crdt.type === "Vote") {
      const voters = gone(crdt.voters());
      if (voters.length > 0) (working = crdt.clone()).retire(voters);
      retired.push(...voters);
    } else if (crdt.type === "ORMap") {
      for (const key of crdt.keys()) {
        const value = crdt.get(key);
        if (value?.type !== "Vote") continue;
        const voters = gone(value.voters());
        if (voters.length === 0) continue;
        working ??= crdt.clone();
        (working as typeof crdt).update(key, "Vote", (vote: Vote) => void vote.retire(voters));
        retired.push(...voters);
      }
    }
    if (working === undefined) return undefined;
    log().info({ ...this.#context("(replication)"), retired }, "votes of nodes that are gone retired");
    return { crdt: working, change: { delta: working.takeDelta()!, writeConsistency: WriteConsistency.LOCAL } };
  }

  #call(crdt: AnyCrdt, target: { service: ServiceRuntime; method: string; payload: Uint8Array; metadata?: CallMetadata }, streamEvent: StreamEvent, previous: WireCrdtValue | undefined) {
    // Services that share a persistence id share the entity; each must declare its CRDT type.
    if (target.service.crdtType !== crdt.type) {
      throw new KeystateError("GUEST_FAILURE", `entity ${this.id.key} holds a ${crdt.type}, but ${target.service.name} declares a ${target.service.crdtType}`);
    }
    const otherStreams = [...this.streams].filter((s) => s.method === target.method && s !== target).length;
    return guestCommand(target.service, {
      method: target.method,
      entityKey: this.id.key,
      sequence: 0,
      state: undefined,
      payload: target.payload,
      metadata: target.metadata,
      replicated: { crdt: crdtValueToWire(crdt), streamEvent, previousCrdt: previous, otherStreams },
    });
  }

  #settle(outcome: Outcome, acks: ReplicaAcks | undefined): void {
    const { envelope, result, error } = outcome;
    const command = envelope.command;
    if (command.kind === "merge" || command.kind === "retire") {
      if (error !== undefined) envelope.reject(error);
      else envelope.resolve(undefined);
      return;
    }
    if (command.kind === "command") {
      if (error !== undefined) return envelope.reject(error);
      const level = result!.writeConsistency;
      // The local write is kept either way: a majority / all command that times out says so in its error.
      if (acks !== undefined && level !== WriteConsistency.LOCAL) {
        acks.wait(level, command.deadline).then(() => envelope.resolve(result!.reply), (err: unknown) => envelope.reject(err));
        return;
      }
      envelope.resolve(result!.reply);
      return;
    }
    const stream = command.stream;
    if (command.kind === "stream-cancel") {
      // Storage trouble: the caller retries, or a vote would say "connected" with nobody there.
      if (error instanceof KeystateError && error.retryable) return envelope.reject(error);
      envelope.resolve(undefined);
      if (error !== undefined) log().warn({ ...this.#context(stream.method), err: error }, "a stream's cancellation callback failed; its changes were dropped");
      return;
    }
    envelope.resolve(undefined);
    if (error !== undefined || stream.state === "closed") {
      // Refused at start, or cancelled while its start was being written (the cancellation callback is queued).
      this.streams.delete(stream);
      if (stream.state !== "closed") {
        stream.state = "closed";
        stream.sink.fail(error);
      }
      return;
    }
    stream.sink.opened();
    this.#deliver(stream, result!);
  }

  /** Sends what a callback decided; ends the stream if it said so. */
  #deliver(stream: Subscriber, result: ReplicatedResult & { reply: Uint8Array }): void {
    if (result.streamSend) stream.sink.send(result.reply);
    if (result.endStream) {
      stream.state = "closed";
      this.streams.delete(stream);
      stream.sink.end();
    }
  }

  /** Calls back every open stream whose last seen state differs from `crdt`. */
  #notifyStreams(crdt: AnyCrdt): void {
    if (this.streams.size === 0) return;
    const now = this.#snapshot(crdt);
    for (const stream of [...this.streams]) {
      if (stream.state !== "started" || (stream.seen && equalBytes(stream.seen.bytes, now.bytes))) continue;
      try {
        const result = this.#call(crdt, stream, StreamEvent.CHANGED, stream.seen?.wire);
        stream.seen = now;
        if (result.failure) throw failureToError(result.failure);
        if (result.replicated.ops.length > 0) {
          log().warn(this.#context(stream.method), "a stream's state-change callback returned CRDT ops; only commands and cancellations change state, so they were ignored");
        }
        this.#deliver(stream, { ...result.replicated, reply: result.reply });
      } catch (err) {
        stream.state = "closed";
        this.streams.delete(stream);
        stream.sink.fail(trapToError(err, this.#context(stream.method)));
      }
    }
  }

  #snapshot(crdt: AnyCrdt): { bytes: Uint8Array; wire: WireCrdtValue } {
    return { bytes: encodeCrdtState(crdt), wire: crdtValueToWire(crdt) };
  }

  #context(method: string) {
    return { module: this.service.moduleName, service: this.service.name, method, entityKey: this.id.key };
  }
}

/** A replicated entity's state: the join of every node's stored copy of `key`, owned by `replicaId`. */
export function joinStoredCopies(service: ServiceRuntime, key: string, replicaId: string, copies: readonly Uint8Array[]): AnyCrdt {
  const type = service.crdtType;
  if (!isCrdtType(type)) throw new KeystateError("INVALID_MODULE", `service ${service.name} declares no valid CRDT type`);
  const crdt = createCrdt(type, replicaId);
  for (const bytes of copies) {
    const copy = decodeCrdtState(bytes, replicaId);
    if (copy.type !== type) throw new KeystateError("GUEST_FAILURE", `the stored state of ${key} is a ${copy.type}, but ${service.name} declares a ${type}`);
    crdt.merge(copy);
  }
  return crdt;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
