// GET /topics/<topic>/dead-letters/<subscription>[?limit=n] on the admin port: the messages a
// subscription gave up on, with why, as JSON (payload bytes in base64: the host never
// decodes user messages). Read from the store, so any node answers for any subscription.
import { KeystateError } from "../errors.js";
import type { DeadLetter, Topics } from "../journal/types.js";
import { TOPIC_NAME } from "../runtime/subscriptions.js";
import { bufferOf } from "../buffer-of.js";

const PATH = /^\/topics\/([^/]+)\/dead-letters\/(.+)$/;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** True for the paths this API answers (the admin server routes them here). */
export function isDeadLettersPath(path: string): boolean {
  return PATH.test(path);
}

/** The JSON answer for `url` (path and query as received); rejects with INVALID_REQUEST for a malformed one. */
export async function deadLettersAnswer(topics: Topics, url: string): Promise<unknown> {
  const parsed = new URL(url, "http://admin");
  const match = PATH.exec(parsed.pathname);
  if (!match) throw new KeystateError("INVALID_REQUEST", "expected /topics/<topic>/dead-letters/<subscription>");
  const topic = decoded(match[1]!);
  // A subscription id is "<module>/<service>/<method>": its slashes may come encoded or not.
  const subscription = decoded(match[2]!);
  if (!TOPIC_NAME.test(topic)) throw new KeystateError("INVALID_REQUEST", `${JSON.stringify(topic)} is not a topic name (1-100 letters, digits, '.', '_' or '-')`);
  const limitText = parsed.searchParams.get("limit");
  const limit = limitText === null ? DEFAULT_LIMIT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new KeystateError("INVALID_REQUEST", `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  const letters = await topics.deadLetters(topic, subscription, limit);
  return { topic, subscription, deadLetters: letters.map(describe) };
}

function describe(letter: DeadLetter): Record<string, unknown> {
  const { message } = letter;
  return {
    offset: letter.offset,
    reason: letter.reason,
    attempts: letter.attempts,
    deadLetteredAt: new Date(letter.at).toISOString(),
    message: {
      offset: message.offset,
      id: message.id,
      source: message.source,
      type: message.type,
      time: new Date(message.time).toISOString(),
      partitionKey: message.partitionKey,
      payload: bufferOf(message.payload).toString("base64"),
    },
  };
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new KeystateError("INVALID_REQUEST", `the path part ${JSON.stringify(part)} is not valid URL encoding`);
  }
}
