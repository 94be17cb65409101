// keystate-guest-sdk: what entity code imports.
export { Status } from "./status";
export { Context, CommandContext, ValueContext, ActionContext } from "./context";
export { EntityHandler, register } from "./entity";
export { EventSourcedEntity } from "./event-sourced";
export { ValueEntity } from "./value-entity";
export { Action } from "./action";
export { Message, encode, decode } from "./proto/index";
export { log, logInfo } from "./logging";
