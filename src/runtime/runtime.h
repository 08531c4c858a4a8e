/* Internals of the concurrent runtime: the engine's context pool (pool.c),
 * futures (future.c), the scheduler's workers (workers.c) and the dynamic
 * batcher (batcher.c). Never included by the public header. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/core.h"

/* ---- context pool (pool.c); one per engine */
typedef struct kiln_ctx_pool kiln_ctx_pool;

kiln_ctx_pool *kiln_ctx_pool_create(kiln_engine *e);
/* Every context must be back in the pool. */
void kiln_ctx_pool_destroy(kiln_ctx_pool *p);
/* The engine's pool (engine.c). */
kiln_ctx_pool *kiln_engine_pool(const kiln_engine *e);

/* Copies run results into the caller's output tensors, as documented in
 * kiln.h (caller's buffers checked for size, or allocated). A result the
 * backend wrote into the caller's buffer already (same data pointer) is
 * not copied. */
kiln_status kiln_outputs_deliver(int n_res, const kiln_tensor *res, int n_out, kiln_tensor *out);

/* kiln_context_run, offering the backend the caller's output tensors
 * (n_dst of them, as kiln_outputs_deliver takes them): it may write
 * results straight into their buffers (page-locked ones, on cuda), and
 * then (*outputs)[i].data == dst[i].data. engine.c */
kiln_status kiln_context_run_into(kiln_context *c, int n_inputs, const kiln_tensor *inputs, int n_dst,
                                  const kiln_tensor *dst, int *n_outputs, const kiln_tensor **outputs);
/* Makes c ready to run inputs of these dims (checked as for a run; data
 * unused, may be NULL) without running: the backend's prepare (and the
 * test hook); KILN_OK at once when there is none. engine.c */
kiln_status kiln_context_prepare(kiln_context *c, int n_inputs, const kiln_tensor *inputs);

/* Monotonic clock, microseconds. */
uint64_t kiln_now_us(void);

/* ---- futures (future.c): a queued request and its completion */
struct kiln_future {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int ready;
    kiln_status status;
    char error[512];
    kiln_infer_done_fn done;
    void *user;
    bool detached;   /* no handle: freed after completion */
    int n_in, n_out;
    kiln_tensor *in; /* copies, in the engine's input order (allocated with the future) */
    kiln_tensor *out; /* the caller's array */
    int64_t rows;    /* dim 0 of the inputs when batching, else 1 */
    uint64_t t_submit_us;
    uint64_t tried;  /* engines (bit per index) whose device failed running it */
    kiln_future *next; /* queue link */
};

kiln_future *kiln_future_new(int n_in);
/* Frees a future that was never queued (or whose waiters are gone). */
void kiln_future_free(kiln_future *f);
/* Completes f: sets its status (message from this thread's last error when
 * not OK), runs the callback, wakes the waiters. f may be freed by then. */
void kiln_future_complete(kiln_future *f, kiln_status st);

/* ---- dynamic batcher (batcher.c) */
typedef struct kiln_batcher_cfg {
    int max_batch;
    int max_delay_us;
    int n_preferred;
    int preferred[KILN_MAX_PREFERRED_BATCH];
} kiln_batcher_cfg;

/* Whether request r can join a batch that starts with `first` and holds
 * `rows` rows: same trailing dims on every input, and room left. */
bool kiln_batch_fits(const kiln_batcher_cfg *cfg, const kiln_future *first, int64_t rows, const kiln_future *r);
/* Whether a batch of `rows` rows should run without waiting for more:
 * full, or at a preferred size while nothing fitting is queued. */
bool kiln_batch_ready(const kiln_batcher_cfg *cfg, int64_t rows, bool more_fitting_queued);

/* Per-worker staging buffers for the concatenated inputs. */
/* A worker's staging for batched inputs: page-locked (kiln_host_alloc)
 * so the batch's copy to the GPU is one DMA, not a copy through CUDA's
 * pageable bounce buffer; plain memory where locking fails (pinned[i]
 * false). Grown, never shrunk. */
typedef struct kiln_batch_buf {
    void **data;
    size_t *cap;
    bool *pinned;
    kiln_tensor *in;
    int n;
} kiln_batch_buf;

void kiln_batch_buf_free(kiln_batch_buf *b);

/* What a worker's runs report to: the counters a run adds to (engine runs
 * and their rows, the scheduler's and its engine's; requests completed OK
 * and failed), and who judges a device error. */
typedef struct kiln_batch_env {
    atomic_uint_fast64_t *runs, *rows, *ok, *failed, *engine_runs;
    /* Called after a run of n_requests requests failed with KILN_ERR_DEVICE
     * (its message in this thread's kiln_last_error, which it must leave
     * there): whether the device still works. NULL: it never does. */
    bool (*device_usable)(void *arg, int n_requests);
    void *arg;
} kiln_batch_env;

/* Runs reqs[0..n) on context c: one run when n > 1 (inputs concatenated
 * along dim 0, each request gets its slice of every output), falling back
 * to one run per request when the batched run fails, so that one bad
 * request fails alone. A run that fails with KILN_ERR_DEVICE on a device
 * that still works (env->device_usable) fails exactly that run's requests
 * (the whole batch, not one by one: the error is the device's, not a
 * request's) and the others go on. Completes every request and returns
 * KILN_OK, except when the device is lost: it stops there and returns
 * KILN_ERR_DEVICE (the message in this thread's kiln_last_error) with the
 * requests it did not complete moved to reqs[0..*n_left), in their order,
 * for the caller to re-queue or fail. */
kiln_status kiln_batch_run(kiln_context *c, kiln_batch_buf *b, kiln_future **reqs, int n, const kiln_batch_env *k,
                           int *n_left);

#endif
