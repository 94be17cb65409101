// The ABI exports (proto/keystate/ABI.md) and the entity models behind them: decode the
// call, run the registered handler, fold emitted events, encode the result.
#include <string.h>

#include "internal.h"

// ABI version 3: the result goes back as the export's return value, the address of its
// (pointer, length), instead of through the `keystate.output` import. A module that imports
// no host function costs V8 no import wrapper to compile on each cold start. The bytes live in
// the call's arena, which stays as it is until the host's next ks_input.
static uint32_t result_record[2];

// keystate.abi.StateAction
enum { STATE_KEEP = 0, STATE_UPDATE = 1, STATE_DELETE = 2 };

typedef struct meta_entry {
  ks_str key;
  ks_str value;
} meta_entry;

typedef struct emitted {
  const ks_message_type *type;
  ks_bytes payload;
} emitted;

typedef struct journal_event {
  ks_str type;
  ks_bytes payload;
} journal_event;

struct ks_context {
  ks_kind kind;
  ks_str entity_key;
  int64_t sequence;
  const meta_entry *metadata;
  uint32_t metadata_count;
  bool failed;
  uint32_t fail_code;
  ks_str fail_message;
  emitted *events;
  uint32_t event_count, event_cap;
  int state_action;
  ks_bytes new_state;
};

// ---- The ABI messages (abi.proto), the fields this SDK uses; others are skipped.

typedef struct command_call {
  ks_str service, method, entity_key;
  int64_t sequence;
  ks_bytes state;
  bool has_state;
  ks_bytes payload;
  meta_entry *metadata;
  uint32_t metadata_count, metadata_cap;
} command_call;

typedef struct replay_call {
  ks_str service;
  ks_bytes state;
  bool has_state;
  journal_event *events;
  uint32_t event_count, event_cap;
} replay_call;

typedef struct result {
  ks_bytes reply;
  bool failed;
  uint32_t code;
  ks_str message;
  const emitted *events;
  uint32_t event_count;
  ks_bytes state;
  int state_action;
} result;

// Reads a two-string message (MetadataEntry, Event) of fields 1 and 2.
static void read_pair(ks_reader *r, ks_str *one, ks_bytes *two) {
  uint32_t end = ks_r_len_end(r);
  ks_reader sub = {r->buf, r->pos, end, r->ok, r->depth + 1};
  uint32_t tag;
  while ((tag = ks_r_tag(&sub))) {
    if (tag == (1 << 3 | KS_WT_LEN)) *one = ks_r_str(&sub);
    else if (tag == (2 << 3 | KS_WT_LEN)) *two = ks_r_bytes(&sub);
    else ks_r_skip(&sub, tag & 7);
  }
  if (!sub.ok) ks_r_fail(r);
  else r->pos = end;
}

static bool decode_command_call(ks_bytes bytes, command_call *c) {
  memset(c, 0, sizeof *c);
  ks_reader r = ks_reader_of(bytes);
  uint32_t tag;
  while ((tag = ks_r_tag(&r))) {
    switch (tag) {
      case 1 << 3 | KS_WT_LEN: c->service = ks_r_str(&r); break;
      case 2 << 3 | KS_WT_LEN: c->method = ks_r_str(&r); break;
      case 3 << 3 | KS_WT_LEN: c->entity_key = ks_r_str(&r); break;
      case 4 << 3 | KS_WT_VARINT: c->sequence = (int64_t)ks_r_varint(&r); break;
      case 5 << 3 | KS_WT_LEN: c->state = ks_r_bytes(&r); break;
      case 6 << 3 | KS_WT_VARINT: c->has_state = ks_r_varint(&r) != 0; break;
      case 7 << 3 | KS_WT_LEN: c->payload = ks_r_bytes(&r); break;
      case 12 << 3 | KS_WT_LEN: {
        c->metadata = ks_grow_array(c->metadata, c->metadata_count, &c->metadata_cap, sizeof(meta_entry));
        meta_entry *m = &c->metadata[c->metadata_count++];
        ks_bytes value = {0, 0};
        read_pair(&r, &m->key, &value);
        m->value = (ks_str){(const char *)value.data, value.len};
        break;
      }
      default: ks_r_skip(&r, tag & 7);
    }
  }
  return r.ok;
}

static bool decode_replay_call(ks_bytes bytes, replay_call *c) {
  memset(c, 0, sizeof *c);
  ks_reader r = ks_reader_of(bytes);
  uint32_t tag;
  while ((tag = ks_r_tag(&r))) {
    switch (tag) {
      case 1 << 3 | KS_WT_LEN: c->service = ks_r_str(&r); break;
      case 2 << 3 | KS_WT_LEN: c->state = ks_r_bytes(&r); break;
      case 3 << 3 | KS_WT_VARINT: c->has_state = ks_r_varint(&r) != 0; break;
      case 4 << 3 | KS_WT_LEN: {
        c->events = ks_grow_array(c->events, c->event_count, &c->event_cap, sizeof(journal_event));
        journal_event *e = &c->events[c->event_count++];
        read_pair(&r, &e->type, &e->payload);
        break;
      }
      default: ks_r_skip(&r, tag & 7);
    }
  }
  return r.ok;
}

static void write_failure(ks_writer *w, uint32_t field, uint32_t code, ks_str message) {
  uint32_t mark = ks_w_begin(w, field);
  if (code) {
    ks_w_tag(w, 1, KS_WT_VARINT);
    ks_w_varint(w, code);
  }
  if (message.len) ks_w_str(w, 2, message);
  ks_w_end(w, mark);
}

// CommandResult (fields 1-5) or, with `replay`, ReplayResult (state 1, failure 2).
static uint32_t *send(const result *out, bool replay) {
  ks_writer w;
  ks_writer_init(&w, 256);
  if (replay) {
    if (!out->failed && out->state.len) ks_w_bytes(&w, 1, out->state);
    if (out->failed) write_failure(&w, 2, out->code, out->message);
  } else if (out->failed) {
    write_failure(&w, 2, out->code, out->message);
  } else {
    if (out->reply.len) ks_w_bytes(&w, 1, out->reply);
    for (uint32_t i = 0; i < out->event_count; i++) {
      uint32_t mark = ks_w_begin(&w, 3);
      ks_w_str(&w, 1, ks_cstr(out->events[i].type->full_name));
      if (out->events[i].payload.len) ks_w_bytes(&w, 2, out->events[i].payload);
      ks_w_end(&w, mark);
    }
    if (out->state.len) ks_w_bytes(&w, 4, out->state);
    if (out->state_action) {
      ks_w_tag(&w, 5, KS_WT_VARINT);
      ks_w_varint(&w, (uint64_t)out->state_action);
    }
  }
  result_record[0] = (uint32_t)(uintptr_t)w.buf;
  result_record[1] = (uint32_t)w.len;
  return result_record;
}

static void fail_result(result *out, uint32_t code, const char *format, ...) __attribute__((format(printf, 3, 4)));
// A formatted message in the call's arena.
static ks_str format_message(const char *format, va_list ap) {
  ks_writer w;
  ks_writer_init(&w, 128);
  ks_vformat(&w, format, ap);
  return (ks_str){(const char *)w.buf, w.len};
}

static void fail_result(result *out, uint32_t code, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  out->message = format_message(format, ap);
  va_end(ap);
  out->failed = true;
  out->code = code;
  out->events = 0;
  out->event_count = 0;
}

// ---- The context API.

ks_str ks_entity_key(const ks_context *ctx) { return ctx->entity_key; }

int64_t ks_sequence(const ks_context *ctx) { return ctx->sequence; }

bool ks_metadata(const ks_context *ctx, const char *key, ks_str *value) {
  ks_str wanted = ks_cstr(key);
  for (uint32_t i = 0; i < ctx->metadata_count; i++) {
    if (ks_str_eq(ctx->metadata[i].key, wanted)) {
      if (value) *value = ctx->metadata[i].value;
      return true;
    }
  }
  return false;
}

void ks_fail(ks_context *ctx, uint32_t code, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  ctx->fail_message = format_message(format, ap);
  va_end(ap);
  ctx->failed = true;
  ctx->fail_code = code;
}

void ks_emit(ks_context *ctx, const ks_message_type *type, const void *event) {
  if (ctx->kind != KS_EVENT_SOURCED) {
    ks_fail(ctx, KS_INTERNAL, "ks_emit(%s) called by a service that is not event-sourced", type->full_name);
    return;
  }
  ctx->events = ks_grow_array(ctx->events, ctx->event_count, &ctx->event_cap, sizeof(emitted));
  ctx->events[ctx->event_count++] = (emitted){type, ks_encode(type, event)};
}

void ks_update_state(ks_context *ctx, const ks_message_type *type, const void *state) {
  if (ctx->kind != KS_VALUE) {
    ks_fail(ctx, KS_INTERNAL, "ks_update_state called by a service that is not a value entity");
    return;
  }
  ctx->state_action = STATE_UPDATE;
  ctx->new_state = ks_encode(type, state);
}

void ks_delete_state(ks_context *ctx) {
  if (ctx->kind != KS_VALUE) {
    ks_fail(ctx, KS_INTERNAL, "ks_delete_state called by a service that is not a value entity");
    return;
  }
  ctx->state_action = STATE_DELETE;
  ctx->new_state = (ks_bytes){0, 0};
}

// ---- Dispatch.

#define FAIL(...)            \
  do {                       \
    fail_result(__VA_ARGS__); \
    return;                  \
  } while (0)

static const ks_service *service_named(ks_str name) {
  for (uint32_t i = 0; i < ks_service_count; i++) {
    if (ks_str_eq(ks_cstr(ks_services[i]->name), name)) return ks_services[i];
  }
  return 0;
}

static const ks_event_handler *event_handler(const ks_service *s, ks_str type) {
  for (uint32_t i = 0; i < s->event_count; i++) {
    if (ks_str_eq(ks_cstr(s->events[i].type->full_name), type)) return &s->events[i];
  }
  return 0;
}

// Decodes (or, for a new entity, initialises) the state; NULL when the bytes do not decode.
static void *load_state(const ks_service *s, bool has_state, ks_bytes bytes) {
  void *state = ks_alloc(s->state_type->size);
  if (has_state) return s->state_type->decode(bytes, state) ? state : 0;
  if (s->init_state) s->init_state(state);
  return state;
}

// Decodes one journaled or emitted event and folds it into `state`; NULL when it cannot.
static void *apply_event(const ks_event_handler *h, ks_bytes payload, void *state) {
  void *event = ks_alloc(h->type->size);
  if (!h->type->decode(payload, event)) return 0;
  return h->apply(event, state);
}

static void run_command(const command_call *call, result *out) {
  const ks_service *s = service_named(call->service);
  if (!s) FAIL(out, KS_UNIMPLEMENTED, "this module does not serve %.*s", KS_STR_ARGS(call->service));
  void *state = 0;
  if (s->kind != KS_ACTION) {
    state = load_state(s, call->has_state, call->state);
    if (!state) FAIL(out, KS_DATA_LOSS, "the stored state of %.*s does not decode", KS_STR_ARGS(call->entity_key));
  }
  const ks_method *m = 0;
  for (uint32_t i = 0; i < s->method_count && !m; i++) {
    if (ks_str_eq(ks_cstr(s->methods[i].name), call->method)) m = &s->methods[i];
  }
  if (!m) FAIL(out, KS_UNIMPLEMENTED, "%s has no method %.*s", s->name, KS_STR_ARGS(call->method));
  void *command = ks_alloc(m->input->size);
  if (!m->input->decode(call->payload, command)) {
    FAIL(out, KS_INVALID_ARGUMENT, "the request is not a valid %s", m->input->full_name);
  }
  ks_context ctx = {0};
  ctx.kind = s->kind;
  ctx.entity_key = call->entity_key;
  ctx.sequence = call->sequence;
  ctx.metadata = call->metadata;
  ctx.metadata_count = call->metadata_count;
  void *reply = m->handle(command, state, &ctx);
  if (ctx.failed) {
    out->failed = true;
    out->code = ctx.fail_code;
    out->message = ctx.fail_message;
    return;
  }
  if (!reply) FAIL(out, KS_INTERNAL, "the handler for %s returned NULL without ks_fail()", m->name);
  if (s->kind == KS_EVENT_SOURCED) {
    for (uint32_t i = 0; i < ctx.event_count; i++) {
      const ks_message_type *type = ctx.events[i].type;
      const ks_event_handler *h = event_handler(s, ks_cstr(type->full_name));
      if (!h) FAIL(out, KS_INTERNAL, "the entity emitted %s, which is not one of its event types", type->full_name);
      state = apply_event(h, ctx.events[i].payload, state);
      if (!state) FAIL(out, KS_INTERNAL, "the event handler for %s could not apply it", type->full_name);
    }
    out->events = ctx.events;
    out->event_count = ctx.event_count;
    out->state = ks_encode(s->state_type, state);
    out->state_action = STATE_UPDATE;
  } else if (s->kind == KS_VALUE) {
    out->state_action = ctx.state_action;
    if (ctx.state_action == STATE_UPDATE) out->state = ctx.new_state;
  }
  out->reply = ks_encode(m->output, reply);
}

static void run_replay(const replay_call *call, result *out) {
  const ks_service *s = service_named(call->service);
  if (!s) FAIL(out, KS_UNIMPLEMENTED, "this module does not serve %.*s", KS_STR_ARGS(call->service));
  if (s->kind != KS_EVENT_SOURCED) FAIL(out, KS_UNIMPLEMENTED, "service %s has no journal to replay", s->name);
  void *state = load_state(s, call->has_state, call->state);
  if (!state) FAIL(out, KS_DATA_LOSS, "the snapshot does not decode");
  for (uint32_t i = 0; i < call->event_count; i++) {
    const journal_event *e = &call->events[i];
    const ks_event_handler *h = event_handler(s, e->type);
    if (h) state = apply_event(h, e->payload, state);
    if (!h || !state) {
      FAIL(out, KS_DATA_LOSS, "journaled event %u of type %.*s cannot be applied", i, KS_STR_ARGS(e->type));
    }
  }
  out->state = ks_encode(s->state_type, state);
}

// ---- Exports.

static uint8_t *input;

__attribute__((export_name("ks_input"))) uint8_t *ks_input(int32_t length) {
  ks_arena_reset();
  input = ks_alloc_raw(length > 0 ? (size_t)length : 1);
  return input;
}

__attribute__((export_name("ks_command"))) uint32_t *ks_command(int32_t length) {
  result out = {0};
  command_call call;
  if (!decode_command_call((ks_bytes){input, (uint32_t)length}, &call)) {
    fail_result(&out, KS_INTERNAL, "the host sent a malformed CommandCall");
  } else {
    run_command(&call, &out);
  }
  return send(&out, false);
}

__attribute__((export_name("ks_replay"))) uint32_t *ks_replay(int32_t length) {
  result out = {0};
  replay_call call;
  if (!decode_replay_call((ks_bytes){input, (uint32_t)length}, &call)) {
    fail_result(&out, KS_INTERNAL, "the host sent a malformed ReplayCall");
  } else {
    run_replay(&call, &out);
  }
  return send(&out, true);
}
