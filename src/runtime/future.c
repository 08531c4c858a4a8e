/* Futures: the handle of one queued request. A worker completes it (status,
 * message, callback) and wakes whoever waits; the caller owns it unless it
 * was submitted fire-and-forget. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime.h"

kiln_future *kiln_future_new(int n_in)
{
    kiln_future *f = kiln_xcalloc(1, sizeof *f + ((size_t)n_in + 1) * sizeof(kiln_tensor));
    if (!f) return NULL;
    f->in = (kiln_tensor *)(f + 1);
    f->n_in = n_in;
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&f->ready, 0);
    return f;
}

void kiln_future_free(kiln_future *f)
{
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void kiln_future_complete(kiln_future *f, kiln_status st)
{
    f->status = st;
    if (st != KILN_OK) {
        snprintf(f->error, sizeof f->error, "%s", kiln_last_error());
        if (!f->error[0]) snprintf(f->error, sizeof f->error, "%s", kiln_status_name(st));
    }
    if (f->done) {
        if (st != KILN_OK) kiln_fail(st, "%s", f->error);
        f->done(st, f->n_out, f->out, f->user);
    }
    if (f->detached) {
        kiln_future_free(f);
        return;
    }
    /* after the unlock a waiter may free f: touch nothing past it */
    pthread_mutex_lock(&f->mu);
    atomic_store_explicit(&f->ready, 1, memory_order_release);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

kiln_status kiln_future_wait(kiln_future *f)
{
    if (!f) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_future_wait: future is NULL");
    pthread_mutex_lock(&f->mu);
    while (!atomic_load_explicit(&f->ready, memory_order_acquire)) pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    if (f->status != KILN_OK) return kiln_fail(f->status, "%s", f->error);
    return KILN_OK;
}

int kiln_future_wait_for(kiln_future *f, int64_t timeout_us)
{
    if (!f) return 0;
    if (atomic_load_explicit(&f->ready, memory_order_acquire)) return 1;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    int64_t ns = (int64_t)dl.tv_nsec + (timeout_us > 0 ? timeout_us : 0) % 1000000 * 1000;
    dl.tv_sec += (time_t)((timeout_us > 0 ? timeout_us : 0) / 1000000 + ns / 1000000000);
    dl.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&f->mu);
    while (!atomic_load_explicit(&f->ready, memory_order_acquire))
        if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) == ETIMEDOUT) break;
    int r = atomic_load_explicit(&f->ready, memory_order_acquire);
    pthread_mutex_unlock(&f->mu);
    return r;
}

int kiln_future_is_ready(const kiln_future *f)
{
    return f && atomic_load_explicit(&f->ready, memory_order_acquire);
}

const char *kiln_future_error(const kiln_future *f)
{
    if (!f || !atomic_load_explicit(&f->ready, memory_order_acquire)) return "";
    return f->error;
}

void kiln_future_destroy(kiln_future *f)
{
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    while (!atomic_load_explicit(&f->ready, memory_order_acquire)) pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    kiln_future_free(f);
}
