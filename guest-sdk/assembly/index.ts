// keystate-guest-sdk: what entity code imports.
export { Status } from "./status";
export { Context, CommandContext, ValueContext, ActionContext } from "./context";
export { EntityHandler, register } from "./entity";
export { EventSourcedEntity } from "./event-sourced";
export { ValueEntity } from "./value-entity";
export { Action } from "./action";
export { ReplicatedEntity, ReplicatedContext, StreamContext } from "./replicated";
export { Crdt, GCounter, PNCounter, GSet, ORSet, LWWRegister, Flag, Vote, ORMap, utf8, bytesEqual } from "./crdt";
export { WriteConsistency, LwwClock, StreamEvent } from "./abi/messages";
export { Message, encode, decode } from "./proto/index";
export { log, logInfo } from "./logging";
