// Chat presence (contract: shared/contracts/presence.proto), a replicated entity on a
// Vote CRDT: each node votes whether it holds a Connect stream for the user, and the user
// is online while at least one node votes yes.
import { StreamContext, Vote, register } from "keystate-guest-sdk/assembly/index";
import { Empty, OnlineStatus, User } from "./generated/messages";
import { PresenceEntity } from "./generated/handlers";

class Presence extends PresenceEntity {
  // This node votes yes while it holds at least one Connect stream for the user.
  connect(user: User, vote: Vote, ctx: StreamContext<Vote>): Empty | null {
    if (ctx.started) vote.vote(true);
    else if (ctx.cancelled && ctx.otherStreams == 0) vote.vote(false);
    // Connect never sends anything: the open stream is the connection.
    return null;
  }

  // The current status at once, then one message each time it flips.
  monitor(user: User, vote: Vote, ctx: StreamContext<Vote>): OnlineStatus | null {
    if (ctx.started) return status(vote.atLeastOne());
    const previous = ctx.previous;
    if (ctx.changed && previous != null && previous.atLeastOne() != vote.atLeastOne()) return status(vote.atLeastOne());
    return null;
  }
}

function status(online: bool): OnlineStatus {
  const s = new OnlineStatus();
  s.online = online;
  return s;
}

register(new Presence());
