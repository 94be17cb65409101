// The process logger (pino: structured JSON lines). The level comes from KEYSTATE_LOG_LEVEL
// or `--log-level`; tests and the CLI may replace it with setLogger.
import { pino, type Logger } from "pino";

let logger: Logger = pino({
  name: "keystate",
  level: process.env.KEYSTATE_LOG_LEVEL ?? "info",
  base: { pid: process.pid },
});

export function log(): Logger {
  return logger;
}

export function setLogLevel(level: string): void {
  logger.level = level;
}

export function setLogger(replacement: Logger): void {
  logger = replacement;
}
