/*
 * The protobuf wire runtime behind the generated <Type>_decode / <Type>_encode functions
 * (and the SDK's own ABI messages). Entity code does not need it.
 *
 * Reader: decodes from a byte range. Strings and bytes are not copied: they point into the
 * input, which lives as long as the call. Any error (truncated varint, length past the end,
 * bad wire type, messages nested deeper than KS_MAX_DEPTH) clears `ok` and moves `pos` to
 * the end, so every decode loop stops.
 * Writer: appends to an arena buffer that doubles as needed.
 */
#ifndef KEYSTATE_PB_H
#define KEYSTATE_PB_H

#include "keystate.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { KS_WT_VARINT = 0, KS_WT_FIXED64 = 1, KS_WT_LEN = 2, KS_WT_FIXED32 = 5 };

/** Nesting levels a decode accepts (protobuf's usual limit), so hostile input cannot exhaust the stack. */
#define KS_MAX_DEPTH 100

typedef struct ks_reader {
  const uint8_t *buf;
  uint32_t pos;
  uint32_t end;
  bool ok;
  uint32_t depth;
} ks_reader;

ks_reader ks_reader_of(ks_bytes bytes);
void ks_r_fail(ks_reader *r);
uint64_t ks_r_varint(ks_reader *r);
uint32_t ks_r_fixed32(ks_reader *r);
uint64_t ks_r_fixed64(ks_reader *r);
/** A length-delimited value: the bytes (pointing into the input); fails when it overruns. */
ks_bytes ks_r_bytes(ks_reader *r);
ks_str ks_r_str(ks_reader *r);
/** Reads a length prefix and returns the end of the region it announces (checked). */
uint32_t ks_r_len_end(ks_reader *r);
/** Skips a value of wire type `wt` (groups are refused as malformed). */
void ks_r_skip(ks_reader *r, uint32_t wt);
/** The next tag, or 0 at the end or on error. */
static inline uint32_t ks_r_tag(ks_reader *r) {
  if (r->pos >= r->end) return 0;
  uint64_t tag = ks_r_varint(r);
  if (tag >> 32 || (tag >> 3) == 0) {
    ks_r_fail(r);
    return 0;
  }
  return (uint32_t)tag;
}
/** Reads a length-delimited nested message with `read_fn(ks_reader *, T *)` into `target`. */
#define KS_R_NESTED(r, read_fn, target)                          \
  do {                                                           \
    uint32_t ks_end_ = ks_r_len_end(r);                          \
    ks_reader ks_sub_ = {(r)->buf, (r)->pos, ks_end_, (r)->ok, (r)->depth + 1}; \
    if (ks_sub_.depth > KS_MAX_DEPTH) ks_r_fail(&ks_sub_);        \
    read_fn(&ks_sub_, target);                                   \
    if (!ks_sub_.ok) ks_r_fail(r);                               \
    else (r)->pos = ks_end_;                                     \
  } while (0)

static inline float ks_r_float(ks_reader *r) {
  uint32_t bits = ks_r_fixed32(r);
  float v;
  __builtin_memcpy(&v, &bits, 4);
  return v;
}
static inline double ks_r_double(ks_reader *r) {
  uint64_t bits = ks_r_fixed64(r);
  double v;
  __builtin_memcpy(&v, &bits, 8);
  return v;
}
static inline int32_t ks_unzigzag32(uint64_t v) { return (int32_t)((uint32_t)(v >> 1) ^ -(uint32_t)(v & 1)); }
static inline int64_t ks_unzigzag64(uint64_t v) { return (int64_t)((v >> 1) ^ -(v & 1)); }

struct ks_writer {
  uint8_t *buf;
  uint32_t len;
  uint32_t cap;
};

void ks_writer_init(ks_writer *w, uint32_t capacity);
void ks_w_reserve(ks_writer *w, uint32_t more);
void ks_w_varint(ks_writer *w, uint64_t v);
void ks_w_fixed32(ks_writer *w, uint32_t v);
void ks_w_fixed64(ks_writer *w, uint64_t v);
void ks_w_raw(ks_writer *w, const void *data, uint32_t len);
static inline void ks_w_tag(ks_writer *w, uint32_t field, uint32_t wt) { ks_w_varint(w, ((uint64_t)field << 3) | wt); }
static inline void ks_w_bytes(ks_writer *w, uint32_t field, ks_bytes v) {
  ks_w_tag(w, field, KS_WT_LEN);
  ks_w_varint(w, v.len);
  ks_w_raw(w, v.data, v.len);
}
static inline void ks_w_str(ks_writer *w, uint32_t field, ks_str v) {
  ks_w_tag(w, field, KS_WT_LEN);
  ks_w_varint(w, v.len);
  ks_w_raw(w, v.data, v.len);
}
static inline void ks_w_float(ks_writer *w, float v) {
  uint32_t bits;
  __builtin_memcpy(&bits, &v, 4);
  ks_w_fixed32(w, bits);
}
static inline void ks_w_double(ks_writer *w, double v) {
  uint64_t bits;
  __builtin_memcpy(&bits, &v, 8);
  ks_w_fixed64(w, bits);
}
static inline uint64_t ks_zigzag32(int32_t v) { return (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)); }
static inline uint64_t ks_zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

/**
 * A length-delimited region of unknown size (a nested message, a packed run): begin writes
 * the tag and reserves room for the length; end writes the length and closes the gap.
 */
uint32_t ks_w_begin(ks_writer *w, uint32_t field);
void ks_w_end(ks_writer *w, uint32_t mark);

/** Writes `*message` as field `field` of the enclosing message. */
void ks_w_message(ks_writer *w, uint32_t field, const ks_message_type *type, const void *message);

#ifdef __cplusplus
}
#endif

#endif
