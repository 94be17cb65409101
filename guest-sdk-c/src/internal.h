// Shared between the SDK's own files; not part of the API.
#ifndef KEYSTATE_INTERNAL_H
#define KEYSTATE_INTERNAL_H

#include <stdarg.h>

#include "keystate_pb.h"

void ks_arena_reset(void);
void *ks_alloc_raw(size_t size);
void ks_vformat(ks_writer *w, const char *format, va_list ap);

#endif
