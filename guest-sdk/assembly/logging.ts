// Logging from entity code; lines go to the node's structured log with the module name.
import { log as hostLog } from "./bindings/host";

export function log(level: i32, message: string): void {
  const bytes = String.UTF8.encode(message);
  hostLog(level, changetype<usize>(bytes), bytes.byteLength);
}

export function logInfo(message: string): void {
  log(1, message);
}
