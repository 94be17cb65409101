// Raw host imports (module "keystate"). Entity code never calls these directly; the
// SDK layers above them (see ABI.md in proto/keystate). Results go back without an import
// (bindings/records.ts); only logging calls the host.

/** Writes a UTF-8 log line at `level` (0 debug, 1 info, 2 warn, 3 error). */
@external("keystate", "log")
export declare function log(level: i32, ptr: usize, length: i32): void;
