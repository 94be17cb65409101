// The CloudEvents attributes of a delivery (a topic message or an event-log event), as the
// call metadata its handler reads (guest: ctx.metadata("ce-id") ...). Binary content mode in
// spirit: the payload is the message itself, the attributes travel beside it as "ce-" entries.
import type { CallMetadata } from "../abi/abi-codec.js";
import type { TopicMessage } from "../journal/types.js";

export const CLOUD_EVENTS_SPEC_VERSION = "1.0";

/** The attributes one delivery carries (`time`, `subject`, `sequence` are optional in CloudEvents). */
export interface CloudEventAttributes {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** ms since the epoch; undefined when not known. */
  readonly time?: number;
  readonly subject?: string;
  /** Event logs: the event's sequence number in its entity's journal. */
  readonly sequence?: number;
}

/** The attributes as "ce-" metadata entries, the one form both subscription kinds deliver. */
export function cloudEventMetadata(attributes: CloudEventAttributes): CallMetadata {
  const { id, source, type, time, subject, sequence } = attributes;
  const metadata: Array<readonly [string, string]> = [
    ["ce-specversion", CLOUD_EVENTS_SPEC_VERSION],
    ["ce-id", id],
    ["ce-source", source],
    ["ce-type", type],
  ];
  // RFC 3339 in UTC, as CloudEvents asks for "time".
  if (time !== undefined) metadata.push(["ce-time", new Date(time).toISOString()]);
  if (subject !== undefined && subject !== "") metadata.push(["ce-subject", subject]);
  if (sequence !== undefined) metadata.push(["ce-sequence", String(sequence)]);
  return metadata;
}

/** A topic message's attributes: a message published without a partition key has no subject. */
export function topicMessageMetadata(message: TopicMessage): CallMetadata {
  return cloudEventMetadata({ id: message.id, source: message.source, type: message.type, time: message.time, subject: message.partitionKey });
}
