// What travels with one call from the ingress edge to the entity: a request id for the
// logs, and whether the caller is still there. A caller leaves when its deadline passes
// or it cancels (gRPC cancel, HTTP client disconnect); a command whose caller left
// before it reached the guest is answered with why and never runs, so a burst of
// abandoned calls does not hold an entity's mailbox.
import { randomUUID } from "node:crypto";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { KeystateError } from "../errors.js";

export interface CallContext {
  /** Correlates every log line of the call; from `x-request-id` when the client sent one. */
  readonly requestId: string;
  /** Milliseconds since the epoch after which nobody waits for the reply. */
  readonly deadline?: number;
  /** Aborted (with a KeystateError reason) when the caller is gone. */
  readonly signal?: AbortSignal;
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
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

/** A context whose signal aborts at `deadline` (if any) and on `cancel()`; `dispose()` clears the timer. */
export function startCallContext(requestId: string, deadline: number | undefined): { context: CallContext; cancel(): void; dispose(): void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  if (deadline !== undefined && Number.isFinite(deadline)) {
    timer = setTimeout(() => controller.abort(deadlineError()), Math.max(0, deadline - Date.now()));
  }
  return {
    context: { requestId, deadline: deadline !== undefined && Number.isFinite(deadline) ? deadline : undefined, signal: controller.signal },
    cancel: () => controller.abort(cancelledError()),
    dispose: () => clearTimeout(timer),
  };
}
