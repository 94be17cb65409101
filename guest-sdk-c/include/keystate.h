/*
 * Keystate guest SDK for C: what an entity module's C code uses.
 *
 * A module is a core WebAssembly module speaking the ABI in proto/keystate/ABI.md. This SDK
 * implements the ABI's exports (ks_input, ks_command, ks_replay), decodes each call, runs the
 * handler `keystate build` wired up for the called service and method, and encodes the result.
 * `keystate build` generates, from the module's .proto files and module.json:
 *   generated/messages.h   one struct per message, <Type>_decode / <Type>_encode, <Type>_TYPE
 *   generated/handlers.h   the prototypes of the handlers the module must define
 * See guest-sdk-c/README.md for a walk-through.
 *
 * Memory: everything (decoded messages, strings, encoded bytes, ks_alloc) lives in a per-call
 * arena that is reset when the next call starts. Nothing survives a call; the host passes the
 * state in and takes it out every time.
 */
#ifndef KEYSTATE_H
#define KEYSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Strings and bytes: a pointer and a length, not NUL-terminated. ---- */

typedef struct ks_str {
  const char *data;
  uint32_t len;
} ks_str;

typedef struct ks_bytes {
  const uint8_t *data;
  uint32_t len;
} ks_bytes;

/** A ks_str of a NUL-terminated string. */
ks_str ks_cstr(const char *s);
/** A ks_str of a string literal, with its length known at compile time. */
#define KS_LIT(literal) ((ks_str){"" literal, sizeof(literal) - 1})
bool ks_str_eq(ks_str a, ks_str b);
/** For printf-style formats: ks_fail(ctx, code, "item %.*s", KS_STR_ARGS(s)). */
#define KS_STR_ARGS(s) (int)(s).len, (s).data

/* ---- Memory: a bump arena, reset at the start of every call. ---- */

/** `size` bytes, zeroed, 8-byte aligned, valid until the call ends. Traps when memory runs out. */
void *ks_alloc(size_t size);
/** A zeroed T from the arena. */
#define KS_NEW(T) ((T *)ks_alloc(sizeof(T)))
/** Grows an arena array of `count` elements of `size` to hold `count + 1`; returns the new array. */
void *ks_grow_array(void *array, uint32_t count, uint32_t *capacity, size_t size);

/* ---- gRPC status codes, for ks_fail. ---- */

enum {
  KS_CANCELLED = 1,
  KS_UNKNOWN = 2,
  KS_INVALID_ARGUMENT = 3,
  KS_DEADLINE_EXCEEDED = 4,
  KS_NOT_FOUND = 5,
  KS_ALREADY_EXISTS = 6,
  KS_PERMISSION_DENIED = 7,
  KS_RESOURCE_EXHAUSTED = 8,
  KS_FAILED_PRECONDITION = 9,
  KS_ABORTED = 10,
  KS_OUT_OF_RANGE = 11,
  KS_UNIMPLEMENTED = 12,
  KS_INTERNAL = 13,
  KS_UNAVAILABLE = 14,
  KS_DATA_LOSS = 15,
  KS_UNAUTHENTICATED = 16,
};

/* ---- Logging: lines go to the node's structured log, with the module's name. ---- */

enum { KS_LOG_DEBUG = 0, KS_LOG_INFO = 1, KS_LOG_WARN = 2, KS_LOG_ERROR = 3 };

/** printf-style: %s %.*s %c %d %i %u %x %ld %lu %lld %llu %zu %p %%. */
void ks_log(int level, const char *format, ...) __attribute__((format(printf, 2, 3)));
/** printf-style formatting into the arena (same conversions as ks_log). */
ks_str ks_format(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* ---- Message types: generated tables that let the SDK decode and encode structs. ---- */

typedef struct ks_writer ks_writer;

typedef struct ks_message_type {
  /** Fully qualified protobuf name, e.g. "shop.Cart". */
  const char *full_name;
  /** sizeof the generated struct. */
  uint32_t size;
  /** Decodes `bytes` into `*message` (zeroed first); false when the bytes are malformed. */
  bool (*decode)(ks_bytes bytes, void *message);
  /** Writes `*message`'s fields (without a tag or length). */
  void (*write)(ks_writer *w, const void *message);
} ks_message_type;

/** Encodes any generated message (the generated <Type>_encode call this). */
ks_bytes ks_encode(const ks_message_type *type, const void *message);

/* ---- The context a handler gets besides its command (and state). ---- */

typedef struct ks_context ks_context;

/** The entity key, read by the host from the request's (keystate.entity_key) fields. Empty for actions. */
ks_str ks_entity_key(const ks_context *ctx);
/** Event-sourced: the sequence number of the last event folded into the state. */
int64_t ks_sequence(const ks_context *ctx);
/**
 * A value the call carries besides its message (ABI 2 metadata, e.g. "idempotency-key",
 * "ce-type"); false when absent.
 */
bool ks_metadata(const ks_context *ctx, const char *key, ks_str *value);

/**
 * Refuses the command with a gRPC status and a printf-style message for the caller; the
 * host writes nothing for it. Return NULL from the handler after it. The last call wins.
 */
void ks_fail(ks_context *ctx, uint32_t code, const char *format, ...) __attribute__((format(printf, 3, 4)));

/**
 * Event-sourced: records an event. It is encoded now; once the handler succeeds, the SDK
 * folds the recorded events, in order, into the state with the module's event handlers
 * (decoding them again, exactly as a replay would) and the host journals them. Generated
 * code has typed wrappers: emit_<Event>(ctx, &event).
 */
void ks_emit(ks_context *ctx, const ks_message_type *type, const void *event);

/**
 * Value entities: replaces the stored value with `state`, encoded now, once the command
 * succeeds. The last of ks_update_state / ks_delete_state wins.
 */
void ks_update_state(ks_context *ctx, const ks_message_type *type, const void *state);
/** Value entities: deletes the stored value once the command succeeds. */
void ks_delete_state(ks_context *ctx);

/* ---- Services: what the generated handlers.c registers (a C author rarely writes these). ---- */

typedef enum ks_kind { KS_EVENT_SOURCED = 1, KS_VALUE = 2, KS_ACTION = 4 } ks_kind;

typedef struct ks_method {
  /** The rpc name as in the .proto file, e.g. "AddItem". */
  const char *name;
  const ks_message_type *input;
  const ks_message_type *output;
  /** Returns the reply (of type `output`), or NULL after ks_fail. `state` is NULL for actions. */
  void *(*handle)(const void *command, void *state, ks_context *ctx);
} ks_method;

typedef struct ks_event_handler {
  const ks_message_type *type;
  /** Folds the event into the state; returns the new state (usually `state` itself). NULL: the event cannot be applied. */
  void *(*apply)(const void *event, void *state);
} ks_event_handler;

typedef struct ks_service {
  /** Fully qualified gRPC service name. */
  const char *name;
  ks_kind kind;
  /** The state message (event-sourced and value entities). */
  const ks_message_type *state_type;
  /** Optional: fills a new entity's state (it starts zeroed: every field at its default). */
  void (*init_state)(void *state);
  const ks_method *methods;
  uint32_t method_count;
  const ks_event_handler *events;
  uint32_t event_count;
} ks_service;

/** Defined by the generated handlers.c: the services this module serves. */
extern const ks_service *const ks_services[];
extern const uint32_t ks_service_count;

#ifdef __cplusplus
}
#endif

#endif
