/* Checked allocation, arenas, name maps and text buffers. */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kiln_free(void *p) { free(p); }

void *kiln_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes)", n);
    return p;
}

void *kiln_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory (%zu x %zu bytes)", count, size);
    return p;
}

void *kiln_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes)", n);
    return q;
}

char *kiln_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = kiln_xmalloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------------ arena */

struct kiln_arena_block {
    kiln_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK (64 * 1024)

void *kiln_arena_alloc(kiln_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    kiln_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) {
            kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory (%zu bytes)", n);
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        /* a large single allocation goes behind the head so the head's free
         * room stays usable */
        if (a->head && cap != ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *kiln_arena_strdup(kiln_arena *a, const char *s)
{
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = kiln_arena_alloc(a, n);
    if (d) memcpy(d, s, n);
    return d;
}

char *kiln_arena_printf(kiln_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = n >= 0 ? kiln_arena_alloc(a, (size_t)n + 1) : NULL;
    if (d) vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}

void kiln_arena_free(kiln_arena *a)
{
    kiln_arena_block *b = a->head;
    while (b) {
        kiln_arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* ----------------------------------------------------------------- strmap */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool strmap_grow(kiln_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    const char **keys = calloc(cap, sizeof *keys);
    int *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of host memory (name table of %zu)", cap);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = hash_str(m->keys[i]) & (cap - 1);
        while (keys[j]) j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return true;
}

bool kiln_strmap_put(kiln_strmap *m, const char *key, int val)
{
    if ((m->count + 1) * 2 > m->cap && !strmap_grow(m)) return false;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key)) {
            m->vals[j] = val;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = key;
    m->vals[j] = val;
    m->count++;
    return true;
}

int kiln_strmap_get(const kiln_strmap *m, const char *key)
{
    if (!m->cap) return -1;
    size_t j = hash_str(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key)) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void kiln_strmap_free(kiln_strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------- sbuf */

void kiln_sbuf_printf(kiln_sbuf *b, const char *fmt, ...)
{
    if (b->failed) return;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            va_end(ap2);
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
    va_end(ap2);
}

void kiln_sbuf_json_string(kiln_sbuf *b, const char *s)
{
    kiln_sbuf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            kiln_sbuf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            kiln_sbuf_printf(b, "\\u%04x", *p);
        else
            kiln_sbuf_printf(b, "%c", *p);
    }
    kiln_sbuf_printf(b, "\"");
}
