/* The dynamic batcher: requests of a few rows are concatenated along dim 0
 * of every input, run once, and each request gets exactly its own rows of
 * every output back. The gathering policy (when a batch is complete) is
 * here too; the queue and its waiting live in workers.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

static size_t row_bytes(const kiln_tensor *t)
{
    size_t n = kiln_dtype_size(t->dtype);
    for (int k = 1; k < t->rank; k++) n *= (size_t)t->dims[k];
    return n;
}

bool kiln_batch_fits(const kiln_batcher_cfg *cfg, const kiln_future *first, int64_t rows, const kiln_future *r)
{
    if (rows + r->rows > cfg->max_batch) return false;
    for (int i = 0; i < first->n_in; i++) {
        const kiln_tensor *a = &first->in[i], *b = &r->in[i];
        if (a->rank != b->rank) return false;
        for (int k = 1; k < a->rank; k++)
            if (a->dims[k] != b->dims[k]) return false;
    }
    return true;
}

bool kiln_batch_ready(const kiln_batcher_cfg *cfg, int64_t rows, bool more_fitting_queued)
{
    if (rows >= cfg->max_batch) return true;
    if (more_fitting_queued) return false;
    for (int i = 0; i < cfg->n_preferred; i++)
        if (rows == cfg->preferred[i]) return true;
    return false;
}

static void stage_free(kiln_batch_buf *b, int i)
{
    if (b->pinned && b->pinned[i])
        kiln_host_free(b->data[i]);
    else
        free(b->data[i]);
    b->data[i] = NULL;
    b->cap[i] = 0;
}

/* Room for `need` bytes in staging buffer i, at least twice the last size
 * (page-locking is slow: a few growths, then none). */
static kiln_status stage_grow(kiln_batch_buf *b, int i, size_t need, int64_t rows)
{
    if (need <= b->cap[i]) return KILN_OK;
    size_t want = need > 2 * b->cap[i] ? need : 2 * b->cap[i];
    stage_free(b, i);
    void *p = NULL;
    bool pinned = kiln_host_alloc(want, &p) == KILN_OK;
    if (!pinned) {
        kiln_clear_error();
        p = malloc(want);
    }
    if (!p) return kiln_fail(KILN_ERR_OUT_OF_MEMORY, "out of memory for a batch of %lld rows", (long long)rows);
    b->data[i] = p;
    b->cap[i] = want;
    b->pinned[i] = pinned;
    return KILN_OK;
}

void kiln_batch_buf_free(kiln_batch_buf *b)
{
    for (int i = 0; i < b->n && b->data && b->cap; i++) stage_free(b, i);
    free(b->data);
    free(b->cap);
    free(b->pinned);
    free(b->in);
    memset(b, 0, sizeof *b);
}

static kiln_status buf_reserve(kiln_batch_buf *b, int n_in)
{
    if (b->n >= n_in && b->data) return KILN_OK;
    kiln_batch_buf_free(b);
    b->data = kiln_xcalloc((size_t)n_in + 1, sizeof *b->data);
    b->cap = kiln_xcalloc((size_t)n_in + 1, sizeof *b->cap);
    b->pinned = kiln_xcalloc((size_t)n_in + 1, sizeof *b->pinned);
    b->in = kiln_xcalloc((size_t)n_in + 1, sizeof *b->in);
    b->n = n_in;
    if (!b->data || !b->cap || !b->pinned || !b->in) {
        kiln_batch_buf_free(b);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    return KILN_OK;
}

/* After a run failed with KILN_ERR_DEVICE: whether its device still
 * works, so that only the run's requests fail. */
static bool device_usable(const kiln_batch_env *k, int n_requests)
{
    return k->device_usable && k->device_usable(k->arg, n_requests);
}

/* One request on its own: its inputs in place, its outputs written into
 * the caller's buffers (straight from the device when the backend can).
 * Completes it, unless its device is lost (KILN_ERR_DEVICE returned). */
static kiln_status run_one(kiln_context *c, kiln_future *f, const kiln_batch_env *k)
{
    int n_res = 0;
    const kiln_tensor *res = NULL;
    kiln_status st = kiln_context_run_into(c, f->n_in, f->in, f->n_out, f->out, &n_res, &res);
    atomic_fetch_add(k->runs, 1);
    atomic_fetch_add(k->engine_runs, 1);
    atomic_fetch_add(k->rows, (uint_fast64_t)f->rows);
    if (st == KILN_ERR_DEVICE && !device_usable(k, 1)) return st;
    if (st == KILN_OK) st = kiln_outputs_deliver(n_res, res, f->n_out, f->out);
    atomic_fetch_add(st == KILN_OK ? k->ok : k->failed, 1);
    kiln_future_complete(f, st);
    return KILN_OK;
}

/* The batched run; on success every request is complete. */
static kiln_status run_batched(kiln_context *c, kiln_batch_buf *b, kiln_future **reqs, int n, int64_t total,
                               const kiln_batch_env *k)
{
    const kiln_future *f0 = reqs[0];
    kiln_status st = buf_reserve(b, f0->n_in);
    if (st != KILN_OK) return st;
    for (int i = 0; i < f0->n_in; i++) {
        size_t rb = row_bytes(&f0->in[i]), need = rb * (size_t)total;
        st = stage_grow(b, i, need ? need : 1, total);
        if (st != KILN_OK) return st;
        size_t off = 0;
        for (int r = 0; r < n; r++) {
            size_t bytes = rb * (size_t)reqs[r]->rows;
            if (bytes) memcpy((char *)b->data[i] + off, reqs[r]->in[i].data, bytes);
            off += bytes;
        }
        b->in[i] = f0->in[i];
        b->in[i].dims[0] = total;
        b->in[i].data = b->data[i];
    }
    int n_res = 0;
    const kiln_tensor *res = NULL;
    st = kiln_context_run(c, f0->n_in, b->in, &n_res, &res);
    if (st != KILN_OK) return st;
    for (int o = 0; o < n_res; o++)
        if (res[o].rank < 1 || res[o].dims[0] != total)
            return kiln_fail(KILN_ERR_SHAPE,
                             "output '%s' does not have the batch (%lld rows) as dim 0: the model cannot be batched",
                             res[o].name, (long long)total);
    /* slices: each request's rows of every output */
    kiln_tensor slice[KILN_MAX_RANK * 2];
    kiln_tensor *sl = n_res <= (int)(sizeof slice / sizeof *slice) ? slice : kiln_xcalloc((size_t)n_res, sizeof *sl);
    if (!sl) return KILN_ERR_OUT_OF_MEMORY; /* not counted: the requests run again one by one */
    /* counted before any request completes: a caller that saw its future
     * complete sees the run in the stats */
    atomic_fetch_add(k->runs, 1);
    atomic_fetch_add(k->engine_runs, 1);
    atomic_fetch_add(k->rows, (uint_fast64_t)total);
    int64_t row = 0;
    for (int r = 0; r < n; r++) {
        kiln_future *f = reqs[r];
        for (int o = 0; o < n_res; o++) {
            sl[o] = res[o];
            sl[o].dims[0] = f->rows;
            sl[o].data = (char *)res[o].data + row_bytes(&res[o]) * (size_t)row;
        }
        row += f->rows;
        kiln_status fs = kiln_outputs_deliver(n_res, sl, f->n_out, f->out);
        atomic_fetch_add(fs == KILN_OK ? k->ok : k->failed, 1);
        kiln_future_complete(f, fs);
    }
    if (sl != slice) free(sl);
    return KILN_OK;
}

kiln_status kiln_batch_run(kiln_context *c, kiln_batch_buf *b, kiln_future **reqs, int n,
                           const kiln_batch_env *k, int *n_left)
{
    *n_left = 0;
    if (n == 1) {
        kiln_status st = run_one(c, reqs[0], k);
        if (st != KILN_OK) *n_left = 1;
        return st;
    }
    int64_t total = 0;
    for (int r = 0; r < n; r++) total += reqs[r]->rows;
    kiln_status st = run_batched(c, b, reqs, n, total, k);
    if (st == KILN_OK) return KILN_OK;
    if (st == KILN_ERR_DEVICE) {
        /* not a request's fault, so no run one by one: on a device that
         * still works the batch's requests fail with the error, and only
         * they; on a lost one none of them is complete yet */
        if (!device_usable(k, n)) {
            *n_left = n;
            return st;
        }
        atomic_fetch_add(k->runs, 1);
        atomic_fetch_add(k->engine_runs, 1);
        atomic_fetch_add(k->rows, (uint_fast64_t)total);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", kiln_last_error());
        for (int r = 0; r < n; r++) {
            atomic_fetch_add(k->failed, 1);
            kiln_fail(st, "%s", msg); /* again for each: a done callback may change it */
            kiln_future_complete(reqs[r], st);
        }
        return KILN_OK;
    }
    /* the batch failed as a whole: run each request alone, so that the
     * request at fault fails and the others succeed */
    kiln_log(KILN_LOG_DEBUG, "batch of %d requests failed (%s); running them one by one", n, kiln_last_error());
    for (int r = 0; r < n; r++) {
        st = run_one(c, reqs[r], k);
        if (st == KILN_OK) continue;
        /* the device failed under request r: it and the rest go back */
        memmove(reqs, reqs + r, (size_t)(n - r) * sizeof *reqs);
        *n_left = n - r;
        return st;
    }
    return KILN_OK;
}
