// The arena, strings, formatting and logging, and the protobuf wire runtime.
#include <stdarg.h>
#include <string.h>

#include "keystate_pb.h"
#include "internal.h"

// ---- Arena: bump allocation from __heap_base up, memory grown on demand, reset per call.
// The module never calls malloc, so nothing else grows the memory behind the arena's back.

extern unsigned char __heap_base;

static uintptr_t arena_next;
static uintptr_t arena_end;

void ks_arena_reset(void) {
  arena_next = ((uintptr_t)&__heap_base + 7) & ~(uintptr_t)7;
  if (arena_end == 0) arena_end = __builtin_wasm_memory_size(0) * 65536u;
}

static void *arena_take(size_t size) {
  if (arena_next == 0) ks_arena_reset();
  size = (size + 7) & ~(size_t)7;
  if (size > arena_end - arena_next) {
    size_t missing = size - (arena_end - arena_next);
    size_t pages = (missing + 65535) / 65536;
    // Grow by at least half the memory so long calls do not grow page by page.
    size_t have = arena_end / 65536;
    if (pages < have / 2) pages = have / 2;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) {
      pages = (missing + 65535) / 65536;
      if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap();
    }
    arena_end += pages * 65536u;
  }
  void *p = (void *)arena_next;
  arena_next += size;
  return p;
}

void *ks_alloc(size_t size) {
  void *p = arena_take(size);
  memset(p, 0, size);
  return p;
}

// Memory the caller fills at once (no zeroing).
void *ks_alloc_raw(size_t size) { return arena_take(size); }

void *ks_grow_array(void *array, uint32_t count, uint32_t *capacity, size_t size) {
  if (count < *capacity) return array;
  uint32_t cap = *capacity < 4 ? 4 : *capacity * 2;
  void *grown = ks_alloc(cap * size);
  if (count) memcpy(grown, array, count * size);
  *capacity = cap;
  return grown;
}

// ---- Strings.

ks_str ks_cstr(const char *s) { return (ks_str){s, (uint32_t)strlen(s)}; }

bool ks_str_eq(ks_str a, ks_str b) { return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0); }

// ---- A small printf (no libc stdio: it would pull in WASI imports).

static void put(ks_writer *w, const char *s, uint32_t n) { ks_w_raw(w, s, n); }

static void put_unsigned(ks_writer *w, unsigned long long v, unsigned base) {
  char digits[24];
  int n = 0;
  do {
    unsigned d = (unsigned)(v % base);
    digits[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v);
  char out[24];
  for (int i = 0; i < n; i++) out[i] = digits[n - 1 - i];
  put(w, out, (uint32_t)n);
}

static void put_signed(ks_writer *w, long long v) {
  if (v < 0) {
    put(w, "-", 1);
    put_unsigned(w, 0ull - (unsigned long long)v, 10);
  } else {
    put_unsigned(w, (unsigned long long)v, 10);
  }
}

void ks_vformat(ks_writer *w, const char *f, va_list ap) {
  while (*f) {
    const char *run = f;
    while (*f && *f != '%') f++;
    if (f > run) put(w, run, (uint32_t)(f - run));
    if (!*f) break;
    f++;  // '%'
    int precision = -1;
    if (f[0] == '.' && f[1] == '*') {
      precision = va_arg(ap, int);
      f += 2;
    }
    int longs = 0;
    bool size = false;
    while (*f == 'l') longs++, f++;
    if (*f == 'z') size = true, f++;
    char c = *f ? *f++ : 0;
    switch (c) {
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        uint32_t n = 0;
        while ((precision < 0 || n < (uint32_t)precision) && s[n]) n++;
        put(w, s, n);
        break;
      }
      case 'c': {
        char ch = (char)va_arg(ap, int);
        put(w, &ch, 1);
        break;
      }
      case 'd':
      case 'i':
        if (longs >= 2) put_signed(w, va_arg(ap, long long));
        else if (longs == 1) put_signed(w, va_arg(ap, long));
        else if (size) put_signed(w, (long long)va_arg(ap, size_t));
        else put_signed(w, va_arg(ap, int));
        break;
      case 'u':
      case 'x': {
        unsigned base = c == 'x' ? 16 : 10;
        if (longs >= 2) put_unsigned(w, va_arg(ap, unsigned long long), base);
        else if (longs == 1) put_unsigned(w, va_arg(ap, unsigned long), base);
        else if (size) put_unsigned(w, va_arg(ap, size_t), base);
        else put_unsigned(w, va_arg(ap, unsigned), base);
        break;
      }
      case 'p':
        put(w, "0x", 2);
        put_unsigned(w, (uintptr_t)va_arg(ap, void *), 16);
        break;
      case '%':
        put(w, "%", 1);
        break;
      default:
        put(w, "%?", 2);
        break;
    }
  }
}

ks_str ks_format(const char *format, ...) {
  ks_writer w;
  ks_writer_init(&w, 64);
  va_list ap;
  va_start(ap, format);
  ks_vformat(&w, format, ap);
  va_end(ap);
  return (ks_str){(const char *)w.buf, w.len};
}

__attribute__((import_module("keystate"), import_name("log"))) void ks_host_log(int32_t level, const void *ptr, int32_t len);

void ks_log(int level, const char *format, ...) {
  ks_writer w;
  ks_writer_init(&w, 128);
  va_list ap;
  va_start(ap, format);
  ks_vformat(&w, format, ap);
  va_end(ap);
  ks_host_log(level, w.buf, (int32_t)w.len);
}

// ---- Reader.

ks_reader ks_reader_of(ks_bytes bytes) { return (ks_reader){bytes.data, 0, bytes.len, true, 0}; }

void ks_r_fail(ks_reader *r) {
  r->ok = false;
  r->pos = r->end;
}

uint64_t ks_r_varint(ks_reader *r) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (r->pos >= r->end) break;
    uint8_t b = r->buf[r->pos++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
  ks_r_fail(r);
  return 0;
}

uint32_t ks_r_fixed32(ks_reader *r) {
  if (r->end - r->pos < 4) {
    ks_r_fail(r);
    return 0;
  }
  uint32_t v;
  memcpy(&v, r->buf + r->pos, 4);  // wasm is little-endian
  r->pos += 4;
  return v;
}

uint64_t ks_r_fixed64(ks_reader *r) {
  if (r->end - r->pos < 8) {
    ks_r_fail(r);
    return 0;
  }
  uint64_t v;
  memcpy(&v, r->buf + r->pos, 8);
  r->pos += 8;
  return v;
}

uint32_t ks_r_len_end(ks_reader *r) {
  uint64_t len = ks_r_varint(r);
  if (!r->ok) return r->end;
  if (len > r->end - r->pos) {
    ks_r_fail(r);
    return r->end;
  }
  return r->pos + (uint32_t)len;
}

ks_bytes ks_r_bytes(ks_reader *r) {
  uint32_t end = ks_r_len_end(r);
  ks_bytes b = {r->buf + r->pos, end - r->pos};
  if (!r->ok) b.len = 0;
  r->pos = end;
  return b;
}

ks_str ks_r_str(ks_reader *r) {
  ks_bytes b = ks_r_bytes(r);
  return (ks_str){(const char *)b.data, b.len};
}

void ks_r_skip(ks_reader *r, uint32_t wt) {
  switch (wt) {
    case KS_WT_VARINT:
      ks_r_varint(r);
      break;
    case KS_WT_FIXED64:
      ks_r_fixed64(r);
      break;
    case KS_WT_LEN:
      r->pos = ks_r_len_end(r);
      break;
    case KS_WT_FIXED32:
      ks_r_fixed32(r);
      break;
    default:
      ks_r_fail(r);
  }
}

// ---- Writer.

void ks_writer_init(ks_writer *w, uint32_t capacity) {
  w->buf = ks_alloc_raw(capacity);
  w->len = 0;
  w->cap = capacity;
}

void ks_w_reserve(ks_writer *w, uint32_t more) {
  if (w->cap - w->len >= more) return;
  uint32_t cap = w->cap * 2;
  if (cap < w->len + more) cap = w->len + more;
  uint8_t *grown = ks_alloc_raw(cap);
  if (w->len) memcpy(grown, w->buf, w->len);
  w->buf = grown;
  w->cap = cap;
}

void ks_w_varint(ks_writer *w, uint64_t v) {
  ks_w_reserve(w, 10);
  while (v >= 0x80) {
    w->buf[w->len++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  w->buf[w->len++] = (uint8_t)v;
}

void ks_w_fixed32(ks_writer *w, uint32_t v) {
  ks_w_reserve(w, 4);
  memcpy(w->buf + w->len, &v, 4);
  w->len += 4;
}

void ks_w_fixed64(ks_writer *w, uint64_t v) {
  ks_w_reserve(w, 8);
  memcpy(w->buf + w->len, &v, 8);
  w->len += 8;
}

void ks_w_raw(ks_writer *w, const void *data, uint32_t len) {
  if (!len) return;
  ks_w_reserve(w, len);
  memcpy(w->buf + w->len, data, len);
  w->len += len;
}

// The length goes into a 5-byte slot; end() moves the body back when it needs fewer.
uint32_t ks_w_begin(ks_writer *w, uint32_t field) {
  ks_w_tag(w, field, KS_WT_LEN);
  ks_w_reserve(w, 5);
  w->len += 5;
  return w->len;
}

void ks_w_end(ks_writer *w, uint32_t mark) {
  uint32_t body = w->len - mark;
  uint8_t prefix[5];
  uint32_t n = 0;
  uint32_t v = body;
  while (v >= 0x80) {
    prefix[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  prefix[n++] = (uint8_t)v;
  uint32_t start = mark - 5;
  memcpy(w->buf + start, prefix, n);
  if (n < 5) memmove(w->buf + start + n, w->buf + mark, body);
  w->len = start + n + body;
}

void ks_w_message(ks_writer *w, uint32_t field, const ks_message_type *type, const void *message) {
  uint32_t mark = ks_w_begin(w, field);
  type->write(w, message);
  ks_w_end(w, mark);
}

ks_bytes ks_encode(const ks_message_type *type, const void *message) {
  ks_writer w;
  ks_writer_init(&w, 64);
  type->write(&w, message);
  return (ks_bytes){w.buf, w.len};
}
