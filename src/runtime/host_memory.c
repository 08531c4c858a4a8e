/* Host buffers for the caller's inputs and outputs (kiln_host_alloc,
 * kiln_host_register): page-locked by a backend that has a device on this
 * machine (cuda), so that copies to and from the GPU are DMA that overlaps
 * other work; plain page-aligned memory otherwise, so that the same code
 * runs everywhere.
 *
 * A table of what kiln handed out or registered lets a wrong pointer fail
 * with a message instead of corrupting the heap or the driver's state. It
 * holds few entries (buffers are set up once and reused, not made per
 * request), so a list searched under one lock does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend.h"
#include "runtime/runtime.h"

#define HOST_ALIGN 4096 /* a page, as cudaHostAlloc gives */

typedef struct host_buf {
    uint8_t *p;
    size_t bytes;
    const kiln_backend_iface *be; /* the backend that page-locked it; NULL: plain memory */
    bool registered;              /* the caller's memory (kiln_host_register), not kiln's */
} host_buf;

static pthread_mutex_t host_mu = PTHREAD_MUTEX_INITIALIZER;
static host_buf *host_bufs;
static size_t n_bufs, cap_bufs;

/* The entry that starts at p, or NULL; with host_mu held. */
static host_buf *find(const void *p)
{
    for (size_t i = 0; i < n_bufs; i++)
        if (host_bufs[i].p == p) return &host_bufs[i];
    return NULL;
}

/* The first entry that shares a byte with [p, p + bytes); with host_mu held. */
static host_buf *find_overlap(const uint8_t *p, size_t bytes)
{
    for (size_t i = 0; i < n_bufs; i++) {
        const host_buf *b = &host_bufs[i];
        if ((uintptr_t)p < (uintptr_t)b->p + b->bytes && (uintptr_t)b->p < (uintptr_t)p + bytes) return &host_bufs[i];
    }
    return NULL;
}

/* Adds an entry; with host_mu held. */
static kiln_status add(const host_buf *b)
{
    if (n_bufs == cap_bufs) {
        size_t cap = cap_bufs ? cap_bufs * 2 : 16;
        host_buf *a = kiln_xrealloc(host_bufs, cap * sizeof *a);
        if (!a) return KILN_ERR_OUT_OF_MEMORY;
        host_bufs = a;
        cap_bufs = cap;
    }
    host_bufs[n_bufs++] = *b;
    return KILN_OK;
}

/* Removes entry b (from find); with host_mu held. */
static void drop(host_buf *b) { *b = host_bufs[--n_bufs]; }

static void release(const host_buf *b)
{
    if (b->be)
        b->be->host_free(b->p);
    else
        free(b->p);
}

kiln_status kiln_host_alloc(size_t bytes, void **ptr)
{
    if (!ptr) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_host_alloc: ptr is NULL");
    *ptr = NULL;
    if (!bytes) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_host_alloc: 0 bytes asked for; give the buffer's size");
    host_buf b = {.bytes = bytes};
    /* the registered backends that page-lock host memory, in their order */
    const kiln_backend_iface *be;
    for (int i = 0; !b.be && (be = kiln_backend_at(i, NULL)) != NULL; i++) {
        if (!be->host_alloc) continue;
        void *p = NULL;
        kiln_status st = be->host_alloc(bytes, &p);
        if (st == KILN_OK) {
            b.p = p;
            b.be = be;
        } else if (st != KILN_ERR_UNSUPPORTED)
            return st; /* a device that cannot page-lock this much: say so rather than hand out pageable memory */
    }
    if (!b.be) {
        void *p = NULL;
        if (posix_memalign(&p, HOST_ALIGN, bytes) != 0)
            return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "kiln_host_alloc: out of host memory (%zu bytes)", bytes);
        b.p = p;
    }
    pthread_mutex_lock(&host_mu);
    kiln_status st = add(&b);
    pthread_mutex_unlock(&host_mu);
    if (st != KILN_OK) {
        release(&b);
        return st;
    }
    *ptr = b.p;
    return KILN_OK;
}

kiln_status kiln_host_free(void *ptr)
{
    if (!ptr) return KILN_OK;
    pthread_mutex_lock(&host_mu);
    host_buf *e = find(ptr), b = e ? *e : (host_buf){0};
    if (e && !e->registered) drop(e);
    pthread_mutex_unlock(&host_mu);
    if (!e)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_host_free: %p did not come from kiln_host_alloc, or was freed already", ptr);
    if (b.registered)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_host_free: %p is the caller's memory registered with kiln_host_register: "
                         "kiln_host_unregister it, then free it the way it was allocated",
                         ptr);
    release(&b);
    return KILN_OK;
}

kiln_status kiln_host_register(void *ptr, size_t bytes)
{
    if (!ptr || !bytes)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_host_register: %s", !ptr ? "ptr is NULL" : "0 bytes given");
    if ((uintptr_t)ptr + bytes < (uintptr_t)ptr)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_host_register: %p + %zu bytes wraps around", ptr, bytes);
    /* held across the backend's call: registering is set-up work, and the
     * overlap check must see every registration that is under way */
    pthread_mutex_lock(&host_mu);
    const host_buf *o = find_overlap(ptr, bytes);
    kiln_status st = KILN_OK;
    if (o)
        st = kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                       o->registered ? "kiln_host_register: [%p, +%zu) overlaps a buffer registered already (%p, %zu "
                                       "bytes); register each buffer once"
                                     : "kiln_host_register: [%p, +%zu) lies in a buffer from kiln_host_alloc (%p, %zu "
                                       "bytes), which is page-locked already",
                       ptr, bytes, (void *)o->p, o->bytes);
    host_buf b = {.p = ptr, .bytes = bytes, .registered = true};
    const kiln_backend_iface *be;
    for (int i = 0; st == KILN_OK && !b.be && (be = kiln_backend_at(i, NULL)) != NULL; i++) {
        if (!be->host_register) continue;
        kiln_status r = be->host_register(ptr, bytes);
        if (r == KILN_OK)
            b.be = be;
        else if (r != KILN_ERR_UNSUPPORTED)
            st = r;
    }
    /* without a device nothing is page-locked, but the entry keeps the
     * argument checks the same on every machine */
    if (st == KILN_OK) st = add(&b);
    if (st != KILN_OK && b.be) b.be->host_unregister(ptr);
    pthread_mutex_unlock(&host_mu);
    return st;
}

kiln_status kiln_host_unregister(void *ptr)
{
    if (!ptr) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_host_unregister: ptr is NULL");
    pthread_mutex_lock(&host_mu);
    host_buf *e = find(ptr);
    kiln_status st = KILN_OK;
    if (!e)
        st = kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                       "kiln_host_unregister: %p was not registered with kiln_host_register (give the pointer that "
                       "was), or was unregistered already",
                       ptr);
    else if (!e->registered)
        st = kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                       "kiln_host_unregister: %p came from kiln_host_alloc; release it with kiln_host_free", ptr);
    else if (e->be)
        st = e->be->host_unregister(ptr);
    if (st == KILN_OK) drop(e); /* a failed unregister stays listed: the memory may still be locked */
    pthread_mutex_unlock(&host_mu);
    return st;
}
