// The CloudEvents attributes of a topic message, as the call metadata its handler reads
// (guest: ctx.metadata("ce-id") ...). Binary content mode in spirit: the payload is the
// message itself, the attributes travel beside it as "ce-" entries.
import type { CallMetadata } from "../abi/abi-codec.js";
import type { TopicMessage } from "../journal/types.js";

export const CLOUD_EVENTS_SPEC_VERSION = "1.0";

export function cloudEventMetadata(message: TopicMessage): CallMetadata {
  const metadata: Array<readonly [string, string]> = [
    ["ce-specversion", CLOUD_EVENTS_SPEC_VERSION],
    ["ce-id", message.id],
    ["ce-source", message.source],
    ["ce-type", message.type],
    // RFC 3339 in UTC, as CloudEvents asks for "time".
    ["ce-time", new Date(message.time).toISOString()],
  ];
  // "subject" is optional in CloudEvents: a message published without a partition key has none.
  if (message.partitionKey !== "") metadata.push(["ce-subject", message.partitionKey]);
  return metadata;
}
