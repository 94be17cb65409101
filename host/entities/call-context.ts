// What travels with one call from the ingress edge to the entity: a request id for the
// logs, and whether the caller is still there. A caller leaves when its deadline passes
// or it cancels (gRPC cancel, HTTP client disconnect); a command whose caller left
// before it reached the guest is answered with why and never runs, so a burst of
// abandoned calls does not hold an entity's mailbox.
import { randomUUID } from "node:crypto";
import { GrpcStatus } from "../grpc-http2/status.js";
import { deadlineTimer } from "../grpc-http2/timeout.js";
import { KeystateError } from "../errors.js";

export interface CallContext {
  /** Correlates every log line of the call; from `x-request-id` when the client sent one. */
  readonly requestId: string;
  /** Milliseconds since the epoch after which nobody waits for the reply. */
  readonly deadline?: number;
  /** Aborted (with a KeystateError reason) when the caller is gone. */
  readonly signal?: CallerSignal;
}

/** What runs when the caller leaves: a function, or an object's handleEvent (as EventTarget allows). */
export type LeaveListener = (() => void) | { handleEvent(): void };

/**
 * The part of AbortSignal the entity layer uses (an AbortSignal satisfies it). Calls get
 * a CallerLeft instead: an AbortController and its EventTarget cost a few percent of a
 * node's CPU per call, for an event that almost never happens.
 */
export interface CallerSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: LeaveListener, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: LeaveListener): void;
}

/** A one-shot "the caller is gone" signal: each listener runs once, on the first abort. */
export class CallerLeft implements CallerSignal {
  #reason: unknown;
  #aborted = false;
  /** Nearly always zero or one listener (the command waiting in a mailbox): one field, an array only for more. */
  #listener: LeaveListener | undefined;
  #more: LeaveListener[] | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const listeners = this.#listener === undefined ? (this.#more ?? []) : [this.#listener, ...(this.#more ?? [])];
    this.#listener = this.#more = undefined;
    for (const listener of listeners) {
      if (typeof listener === "function") listener();
      else listener.handleEvent();
    }
  }

  addEventListener(_type: "abort", listener: LeaveListener): void {
    if (this.#aborted) return; // like AbortSignal: an aborted signal does not fire again
    if (this.#listener === undefined && this.#more === undefined) this.#listener = listener;
    else (this.#more ??= []).push(listener);
  }

  removeEventListener(_type: "abort", listener: LeaveListener): void {
    if (this.#listener === listener) {
      this.#listener = undefined;
      return;
    }
    const at = this.#more?.indexOf(listener) ?? -1;
    if (at >= 0) this.#more!.splice(at, 1);
  }
}

/** Why the caller of `context` is gone, or undefined while it still waits. */
export function callerGone(context: CallContext | undefined): KeystateError | undefined {
  if (!context) return undefined;
  if (context.signal?.aborted) return asError(context.signal.reason);
  // Checked against the clock too: guest calls are synchronous, so a deadline timer cannot
  // fire between two commands of one batch.
  if (context.deadline !== undefined && Date.now() >= context.deadline) return deadlineError();
  return undefined;
}

export function deadlineError(): KeystateError {
  return new KeystateError("DEADLINE", "the deadline passed before the command ran; it did not run");
}

export function cancelledError(): KeystateError {
  return new KeystateError("DEADLINE", "the caller cancelled the call before the command ran; it did not run", { status: GrpcStatus.CANCELLED });
}

function asError(reason: unknown): KeystateError {
  return reason instanceof KeystateError ? reason : cancelledError();
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The client's request id when it is sane (printable ASCII, at most 128 chars), else a fresh one. */
export function requestIdFrom(value: unknown): string {
  const given = Array.isArray(value) ? value[0] : value;
  return typeof given === "string" && REQUEST_ID.test(given) ? given : freshRequestId();
}

// Fresh ids are UUID-shaped (what operators and log tools expect): a random prefix drawn
// once per process, then a counter in the last 12 hex digits. Unique within the process
// by the counter and across processes by the prefix's random bits, at a third of the cost
// of a randomUUID per call.
const ID_PREFIX = randomUUID().slice(0, 24);
let idCounter = 0;

function freshRequestId(): string {
  idCounter = (idCounter + 1) % 0x1000000000000; // 12 hex digits; wraps after 2^48 calls
  return ID_PREFIX + idCounter.toString(16).padStart(12, "0");
}

/** A call's context and how its ingress ends it early. */
export interface CallScope {
  readonly context: CallContext;
  /** The caller left (client cancel, dropped connection). */
  cancel(): void;
  /** The deadline passed (the transport noticed first). */
  expire(): void;
  /** The call settled: clears the timer, if this scope armed one. */
  dispose(): void;
}

/**
 * A context whose signal aborts on `cancel()` and `expire()`, and at `deadline` by a timer of
 * its own unless `transportTimer` says the transport already runs one for this call (the gRPC
 * server does, and calls `expire()`): one timer per call, and the reason the entity layer sees
 * is the transport's (DEADLINE, not CANCELLED).
 */
export function startCallContext(requestId: string, deadline: number | undefined, transportTimer = false): CallScope {
  return new ScopeOfCall(requestId, deadline, transportTimer);
}

/** One object per call (its methods on the prototype): no closure per call for a cancel that almost never comes. */
class ScopeOfCall implements CallScope {
  readonly context: CallContext;
  readonly #signal = new CallerLeft();
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(requestId: string, deadline: number | undefined, transportTimer: boolean) {
    const finite = deadline !== undefined && Number.isFinite(deadline);
    const signal = this.#signal;
    this.#timer = finite && !transportTimer ? deadlineTimer(deadline - Date.now(), () => signal.abort(deadlineError())) : undefined;
    this.context = { requestId, deadline: finite ? deadline : undefined, signal };
  }

  // The error is built only if the caller really left; abort() ignores a second reason.
  cancel(): void {
    if (!this.#signal.aborted) this.#signal.abort(cancelledError());
  }

  expire(): void {
    if (!this.#signal.aborted) this.#signal.abort(deadlineError());
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}
