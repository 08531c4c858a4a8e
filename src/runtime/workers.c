/* The scheduler: a queue of requests in front of N workers, each with its
 * own context (on cuda, its own stream). With batching on, one worker at a
 * time gathers a batch from the queue (waiting up to max_delay_us after
 * the batch's first request arrived) while the others run theirs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime.h"

typedef struct worker {
    struct kiln_scheduler *s;
    pthread_t th;
    kiln_context *ctx;
    kiln_batch_buf buf;
    kiln_future **batch; /* max_batch entries */
    bool started;
} worker;

struct kiln_scheduler {
    kiln_engine *e;
    kiln_batcher_cfg cfg;
    bool batching;
    int n_in, n_out;
    kiln_tensor_desc *in_desc;

    pthread_mutex_t mu;
    pthread_cond_t work; /* a request arrived, a gatherer finished, or shutdown */
    kiln_future *head, *tail;
    bool stop;      /* no more submissions; workers exit once the queue is empty */
    bool gathering; /* a worker is gathering a batch */

    int n_workers;
    worker *w;
    atomic_uint_fast64_t submitted, completed, failed, cancelled, runs, rows;
};

void kiln_scheduler_options_init(kiln_scheduler_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->n_workers = 1;
}

static kiln_future *pop(kiln_scheduler *s)
{
    kiln_future *f = s->head;
    s->head = f->next;
    if (!s->head) s->tail = NULL;
    f->next = NULL;
    return f;
}

static void deadline_ts(uint64_t us, struct timespec *ts)
{
    ts->tv_sec = (time_t)(us / 1000000u);
    ts->tv_nsec = (long)(us % 1000000u) * 1000;
}

/* Takes a batch from the queue into w->batch; called with mu held and the
 * queue non-empty; returns the number of requests. */
static int gather(kiln_scheduler *s, worker *w)
{
    int n = 0;
    w->batch[n++] = pop(s);
    int64_t rows = w->batch[0]->rows;
    uint64_t deadline = w->batch[0]->t_submit_us + (uint64_t)s->cfg.max_delay_us;
    s->gathering = true;
    for (;;) {
        while (s->head && kiln_batch_fits(&s->cfg, w->batch[0], rows, s->head)) {
            rows += s->head->rows;
            w->batch[n++] = pop(s);
        }
        /* the next queued request does not fit: it starts the next batch */
        bool blocked = s->head != NULL;
        if (blocked || s->stop || kiln_batch_ready(&s->cfg, rows, false)) break;
        if (kiln_now_us() >= deadline) break;
        struct timespec ts;
        deadline_ts(deadline, &ts);
        pthread_cond_timedwait(&s->work, &s->mu, &ts);
    }
    s->gathering = false;
    pthread_cond_broadcast(&s->work); /* another worker may gather now */
    return n;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    kiln_scheduler *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (!s->head) {
            if (s->stop) break;
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        int n;
        if (s->batching) {
            if (s->gathering) {
                pthread_cond_wait(&s->work, &s->mu);
                continue;
            }
            n = gather(s, w);
        } else {
            w->batch[0] = pop(s);
            n = 1;
        }
        pthread_mutex_unlock(&s->mu);
        kiln_batch_run(w->ctx, &w->buf, w->batch, n, &s->runs, &s->rows, &s->completed, &s->failed);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void destroy_workers(kiln_scheduler *s)
{
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->w[i];
        if (w->started) pthread_join(w->th, NULL);
        kiln_context_destroy(w->ctx);
        kiln_batch_buf_free(&w->buf);
        free(w->batch);
    }
}

static void scheduler_free(kiln_scheduler *s)
{
    free(s->w);
    free(s->in_desc);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

kiln_status kiln_scheduler_create(kiln_engine *e, const kiln_scheduler_options *o, kiln_scheduler **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create: out is NULL");
    *out = NULL;
    if (!e) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create: engine is NULL");
    kiln_scheduler_options dflt;
    if (!o) {
        kiln_scheduler_options_init(&dflt);
        o = &dflt;
    }
    int n_workers = o->n_workers > 0 ? o->n_workers : 1;
    if (n_workers > 1024 || o->max_batch < 0 || o->max_delay_us < 0 || o->n_preferred < 0 ||
        o->n_preferred > KILN_MAX_PREFERRED_BATCH)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_scheduler_create: options out of range (workers %d, max_batch %d, max_delay_us %d, "
                         "%d preferred sizes)",
                         o->n_workers, o->max_batch, o->max_delay_us, o->n_preferred);
    for (int i = 0; i < o->n_preferred; i++)
        if (o->preferred[i] < 1 || o->preferred[i] > o->max_batch)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                             "kiln_scheduler_create: preferred batch size %d is not in 1..max_batch (%d)",
                             o->preferred[i], o->max_batch);
    if (o->device != 0 && strcmp(kiln_engine_backend_name(e), "cuda") != 0)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create: device %d: the %s backend has no devices",
                         o->device, kiln_engine_backend_name(e));
    bool batching = o->max_batch > 1;
    int n_in = kiln_engine_num_inputs(e);
    kiln_tensor_desc *desc = kiln_xcalloc((size_t)n_in + 1, sizeof *desc);
    if (!desc) return KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < n_in; i++) {
        kiln_engine_input(e, i, &desc[i]);
        if (!batching) continue;
        if (desc[i].rank < 1 || desc[i].dims[0] >= 0) {
            kiln_status st = kiln_fail(
                KILN_ERR_INVALID_ARGUMENT,
                desc[i].rank < 1 ? "cannot batch: input '%s' is a scalar; dynamic batching needs a symbolic dim 0 on "
                                   "every input (%lld)"
                                 : "cannot batch: input '%s' has a fixed dim 0 (%lld); dynamic batching needs a "
                                   "symbolic batch dim (build the engine without fixing it), or set max_batch to 1",
                desc[i].name, desc[i].rank < 1 ? 0LL : (long long)desc[i].dims[0]);
            free(desc);
            return st;
        }
    }
    kiln_scheduler *s = kiln_xcalloc(1, sizeof *s);
    if (!s) {
        free(desc);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    s->e = e;
    s->in_desc = desc;
    s->n_in = n_in;
    s->n_out = kiln_engine_num_outputs(e);
    s->batching = batching;
    s->cfg.max_batch = batching ? o->max_batch : 1;
    s->cfg.max_delay_us = o->max_delay_us;
    s->cfg.n_preferred = o->n_preferred;
    memcpy(s->cfg.preferred, o->preferred, sizeof s->cfg.preferred);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->work, &ca);
    pthread_condattr_destroy(&ca);
    s->w = kiln_xcalloc((size_t)n_workers, sizeof *s->w);
    if (!s->w) {
        scheduler_free(s);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    s->n_workers = n_workers;
    kiln_status st = KILN_OK;
    /* every context first: a failure leaves no thread to stop */
    for (int i = 0; i < n_workers && st == KILN_OK; i++) {
        s->w[i].s = s;
        st = kiln_context_create(e, &s->w[i].ctx);
        if (st == KILN_OK) {
            s->w[i].batch = kiln_xcalloc((size_t)s->cfg.max_batch, sizeof *s->w[i].batch);
            if (!s->w[i].batch) st = KILN_ERR_OUT_OF_MEMORY;
        }
    }
    for (int i = 0; i < n_workers && st == KILN_OK; i++) {
        int rc = pthread_create(&s->w[i].th, NULL, worker_main, &s->w[i]);
        if (rc != 0)
            st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "kiln_scheduler_create: cannot start worker %d: %s", i, strerror(rc));
        else
            s->w[i].started = true;
    }
    if (st != KILN_OK) {
        kiln_scheduler_shutdown(s, 1);
        destroy_workers(s);
        scheduler_free(s);
        return st;
    }
    *out = s;
    return KILN_OK;
}

void kiln_scheduler_shutdown(kiln_scheduler *s, int cancel)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    kiln_future *list = NULL;
    if (cancel) {
        list = s->head;
        s->head = s->tail = NULL;
    }
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    while (list) {
        kiln_future *f = list;
        list = f->next;
        atomic_fetch_add(&s->cancelled, 1);
        kiln_fail(KILN_ERR_CANCELLED, "request cancelled: the scheduler was shut down before it ran");
        kiln_future_complete(f, KILN_ERR_CANCELLED);
    }
}

void kiln_scheduler_destroy(kiln_scheduler *s)
{
    if (!s) return;
    kiln_scheduler_shutdown(s, 0);
    destroy_workers(s);
    scheduler_free(s);
}

kiln_status kiln_scheduler_stats_get(kiln_scheduler *s, kiln_scheduler_stats *out)
{
    if (!s || !out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_stats_get: NULL argument");
    memset(out, 0, sizeof *out);
    out->submitted = atomic_load(&s->submitted);
    out->completed = atomic_load(&s->completed);
    out->failed = atomic_load(&s->failed);
    out->cancelled = atomic_load(&s->cancelled);
    out->runs = atomic_load(&s->runs);
    out->rows = atomic_load(&s->rows);
    return KILN_OK;
}

/* Matches the caller's inputs to the engine's order and checks what can be
 * checked before the run (the run checks the rest). */
static kiln_status check_request(const kiln_scheduler *s, int n, const kiln_tensor *in, kiln_future *f)
{
    if (n != s->n_in)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_infer_async: %d inputs given, the engine has %d", n, s->n_in);
    for (int i = 0; i < s->n_in; i++) {
        const kiln_tensor_desc *d = &s->in_desc[i];
        const kiln_tensor *t = NULL;
        for (int k = 0; k < n; k++)
            if (in[k].name && !strcmp(in[k].name, d->name)) t = &in[k];
        if (!t && n == 1 && !in[0].name) t = &in[0];
        if (!t) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_infer_async: input '%s' is missing", d->name);
        if (t->dtype != d->dtype)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_infer_async: input '%s' must be %s, %s was given",
                             d->name, kiln_dtype_name(d->dtype), kiln_dtype_name(t->dtype));
        if (t->rank != d->rank)
            return kiln_fail(KILN_ERR_SHAPE, "kiln_infer_async: input '%s' must have rank %d, rank %d was given",
                             d->name, d->rank, t->rank);
        for (int k = 0; k < t->rank; k++)
            if (t->dims[k] < 0 || (d->dims[k] >= 0 && d->dims[k] != t->dims[k]))
                return kiln_fail(KILN_ERR_SHAPE, "kiln_infer_async: input '%s': dim %d must be %lld, %lld was given",
                                 d->name, k, (long long)d->dims[k], (long long)t->dims[k]);
        if (s->batching) {
            if (t->dims[0] < 1 || t->dims[0] > s->cfg.max_batch)
                return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                                 "kiln_infer_async: input '%s' has a batch of %lld rows; this scheduler batches "
                                 "requests of 1..%d rows (max_batch)",
                                 d->name, (long long)t->dims[0], s->cfg.max_batch);
            if (i > 0 && t->dims[0] != f->rows)
                return kiln_fail(KILN_ERR_SHAPE, "kiln_infer_async: input '%s' has %lld rows, input '%s' %lld",
                                 d->name, (long long)t->dims[0], s->in_desc[0].name, (long long)f->rows);
            f->rows = t->dims[0];
        }
        f->in[i] = *t;
        f->in[i].name = d->name;
    }
    return KILN_OK;
}

kiln_status kiln_infer_async(kiln_scheduler *s, int n_inputs, const kiln_tensor *inputs, int n_outputs,
                             kiln_tensor *outputs, kiln_infer_done_fn done, void *user, kiln_future **out)
{
    if (out) *out = NULL;
    if (!s || (n_inputs > 0 && !inputs) || (n_outputs > 0 && !outputs))
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_infer_async: NULL argument");
    if (n_outputs != s->n_out)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_infer_async: %d output tensors given, the engine has %d",
                         n_outputs, s->n_out);
    kiln_future *f = kiln_future_new(s->n_in);
    if (!f) return KILN_ERR_OUT_OF_MEMORY;
    f->rows = 1;
    kiln_status st = check_request(s, n_inputs, inputs, f);
    if (st != KILN_OK) {
        kiln_future_free(f);
        return st;
    }
    f->out = outputs;
    f->n_out = n_outputs;
    f->done = done;
    f->user = user;
    f->detached = out == NULL;
    f->t_submit_us = kiln_now_us();
    pthread_mutex_lock(&s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        kiln_future_free(f);
        return kiln_fail(KILN_ERR_CANCELLED, "kiln_infer_async: the scheduler is shutting down");
    }
    if (s->tail)
        s->tail->next = f;
    else
        s->head = f;
    s->tail = f;
    atomic_fetch_add(&s->submitted, 1);
    if (out) *out = f;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    return KILN_OK;
}
