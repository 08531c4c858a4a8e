/* Cross-layer internals: errors, logging, arenas, name maps, dtype helpers. */
#ifndef KILN_CORE_H
#define KILN_CORE_H

#include "kiln.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KILN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KILN_PRINTF(a, b)
#endif

/* Sets this thread's error message and returns `s`, so that a failure reads
 * `return kiln_fail(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));` */
kiln_status kiln_fail(kiln_status s, const char *fmt, ...) KILN_PRINTF(2, 3);
/* Puts `prefix` (formatted) in front of the current message, keeping the
 * status: used to add the node or file to a message from deeper down. */
kiln_status kiln_fail_prefix(kiln_status s, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln_clear_error(void);

void kiln_log(kiln_log_level level, const char *fmt, ...) KILN_PRINTF(2, 3);

/* ---- files (file.c) */
/* Reads a whole regular file into a malloc'd buffer with one spare byte
 * (*out is the caller's, free()); fails naming the path. */
kiln_status kiln_read_file(const char *path, uint8_t **out, size_t *size);

/* ---- checked allocation: NULL is reported through kiln_fail */
void *kiln_xmalloc(size_t n);
void *kiln_xcalloc(size_t count, size_t size);
void *kiln_xrealloc(void *p, size_t n);
char *kiln_xstrdup(const char *s);

/* ---- arena: many small allocations freed at once (graphs, parsed files) */
typedef struct kiln_arena_block kiln_arena_block;
typedef struct kiln_arena {
    kiln_arena_block *head;
} kiln_arena;

void *kiln_arena_alloc(kiln_arena *a, size_t n);   /* zeroed, 16-byte aligned, NULL on OOM */
char *kiln_arena_strdup(kiln_arena *a, const char *s);
char *kiln_arena_printf(kiln_arena *a, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln_arena_free(kiln_arena *a);

/* ---- string -> int map (open addressing), keys not copied */
typedef struct kiln_strmap {
    const char **keys;
    int *vals;
    size_t cap, count;
} kiln_strmap;

bool kiln_strmap_put(kiln_strmap *m, const char *key, int val); /* false on OOM */
int kiln_strmap_get(const kiln_strmap *m, const char *key);      /* -1 if absent */
void kiln_strmap_free(kiln_strmap *m);

/* ---- growable text buffer for reports */
typedef struct kiln_sbuf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed; the text is incomplete */
} kiln_sbuf;

void kiln_sbuf_printf(kiln_sbuf *b, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln_sbuf_json_string(kiln_sbuf *b, const char *s);

/* ---- dtypes */
bool kiln_dtype_valid(kiln_dtype t);
bool kiln_dtype_is_float(kiln_dtype t);
float kiln_f16_to_f32(uint16_t h);
uint16_t kiln_f32_to_f16(float f);   /* round to nearest even */
float kiln_bf16_to_f32(uint16_t h);
uint16_t kiln_f32_to_bf16(float f);  /* round to nearest even */
float kiln_f8e4m3_to_f32(uint8_t v);
uint8_t kiln_f32_to_f8e4m3(float f); /* saturating, round to nearest even */

/* Reads element i of a buffer of dtype t as double / int64 (for kernels on
 * index and shape tensors, and for reports). */
double kiln_load_f64(kiln_dtype t, const void *data, int64_t i);
int64_t kiln_load_i64(kiln_dtype t, const void *data, int64_t i);
void kiln_store_f64(kiln_dtype t, void *data, int64_t i, double v);
/* The same for a run of n elements, the dtype switch outside the loop: the
 * kernels that compute in double (reductions, softmax, pooling, resize)
 * widen a row, work, and narrow it back. Narrowing to an integer dtype
 * truncates like kiln_store_f64; kernels that must round or clamp do so first. */
void kiln_widen_f64(kiln_dtype t, const void *src, double *dst, int64_t n);
void kiln_narrow_f64(kiln_dtype t, const double *src, void *dst, int64_t n);

#endif
