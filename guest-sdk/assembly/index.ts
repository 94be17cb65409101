// keystate-guest-sdk: what entity code imports.
export { Status } from "./status";
export { CommandContext } from "./context";
export { EntityHandler, register } from "./entity";
export { EventSourcedEntity } from "./event-sourced";
export { Message, encode, decode } from "./proto/index";
export { log, logInfo } from "./logging";
