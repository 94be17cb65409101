// The edge-independent shape of a server-streaming call: the ingress (gRPC or HTTP)
// hands the entity a StreamSink to write to, and gets back a StreamHandle to cancel with.
// Writes never wait: the transport buffers, so a slow client never holds an entity's
// mailbox (a stuck client is ended by its transport's own flow control and deadlines).

export interface StreamSink {
  /** The stream is open: the entity accepted it (its first callback succeeded). Called once, before any send. */
  opened(): void;
  /** One message, as the guest encoded it. */
  send(message: Uint8Array): void;
  /** The entity ended the stream: the call completes with OK. */
  end(): void;
  /** The stream failed (refused at start, or the entity failed later): the call completes with this error's status. */
  fail(err: unknown): void;
}

export interface StreamHandle {
  /** The client went away (cancel, deadline, disconnect): release the stream and run the entity's cancellation callback. */
  cancel(): void;
}

/** A server-streaming call for one entity: the method and the request as received. */
export interface StreamCommand {
  readonly method: string;
  readonly payload: Uint8Array;
}
