/* The scheduler: a queue of requests in front of workers, each with its
 * own context (on cuda, its own stream). With batching on, one worker at a
 * time gathers a batch from the queue (waiting up to max_delay_us after
 * the batch's first request arrived) while the others run theirs. Each
 * worker prepares its context for every input shape it can be given
 * before the scheduler is handed out, so no request pays for a first run.
 *
 * Several engines (one per GPU) may share the queue, n_workers each: a
 * worker takes the next request when it is free, so the least-loaded
 * device gets it. A run that fails with KILN_ERR_DEVICE asks the engine
 * whether its device still works: if so, only that run's requests fail;
 * if not, the engine is taken out of service: its workers leave, and the
 * run's requests go back to the head of the queue for the engines still
 * serving. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/backend.h"
#include "runtime/runtime.h"

#define MAX_ENGINES 64 /* kiln_future.tried has a bit per engine */

typedef struct slot {
    kiln_engine *e;
    int device;       /* its GPU (kiln_build_options.device); 0 on ref */
    atomic_bool alive; /* in service; cleared once, with mu held */
    int n_active;     /* its workers still taking requests (mu) */
    atomic_uint_fast64_t runs;
    kiln_tensor *prep; /* n_prep shapes of n_in inputs each, for its workers to prepare (data NULL) */
    int n_prep;
} slot;

typedef struct worker {
    struct kiln_scheduler *s;
    int slot;         /* its engine */
    pthread_t th;
    kiln_context *ctx;
    kiln_batch_buf buf;
    kiln_future **batch; /* max_batch entries */
    bool started;
    kiln_status prep_st;  /* its context's preparation (mu) */
    char prep_err[512];
    char check_msg[256]; /* why the device check found the device lost, for the log */
} worker;

struct kiln_scheduler {
    slot *eng;
    int n_engines;
    kiln_batcher_cfg cfg;
    bool batching;
    int n_in, n_out;
    kiln_tensor_desc *in_desc; /* engine 0's */

    pthread_mutex_t mu;
    pthread_cond_t work; /* a request arrived, a gatherer finished, or shutdown */
    pthread_cond_t prepared; /* a worker finished preparing its context */
    int n_prepared;
    kiln_future *head, *tail;
    bool stop;      /* no more submissions; workers exit once the queue is empty */
    bool gathering; /* a worker is gathering a batch */
    int n_alive;    /* engines in service */
    char last_fault[512]; /* the last device fault, for "no device left" */

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

/* Whether engine i still takes requests; with mu held. */
static bool serving(const kiln_scheduler *s, int i)
{
    return atomic_load(&s->eng[i].alive) && s->eng[i].n_active > 0;
}

/* Whether some engine that has not failed on f can still run it. */
static bool can_serve(const kiln_scheduler *s, const kiln_future *f)
{
    for (int i = 0; i < s->n_engines; i++)
        if (serving(s, i) && !(f->tried >> i & 1)) return true;
    return false;
}

/* Completes a list of requests with KILN_ERR_DEVICE and `msg`; without mu. */
static void fail_list(kiln_scheduler *s, kiln_future *list, const char *msg)
{
    while (list) {
        kiln_future *f = list;
        list = f->next;
        f->next = NULL;
        atomic_fetch_add(&s->failed, 1);
        kiln_fail(KILN_ERR_DEVICE, "%s", msg); /* again for each: a done callback may change it */
        kiln_future_complete(f, KILN_ERR_DEVICE);
    }
}

/* Puts reqs[0..n) back at the head of the queue, in their order, for the
 * engines that can still run them; the others complete with `msg` (NULL:
 * "no device left"), and when no engine serves any more, every queued
 * request fails with "no device left". Called with mu held; releases it
 * while completing. */
static void requeue(kiln_scheduler *s, kiln_future **reqs, int n, const char *msg)
{
    kiln_future *fail = NULL;
    for (int r = n - 1; r >= 0; r--) {
        kiln_future *f = reqs[r];
        if (can_serve(s, f)) {
            f->next = s->head;
            s->head = f;
            if (!s->tail) s->tail = f;
        } else {
            f->next = fail;
            fail = f;
        }
    }
    bool any = false;
    for (int i = 0; i < s->n_engines && !any; i++) any = serving(s, i);
    kiln_future *flush = NULL;
    if (!any) {
        flush = s->head;
        s->head = s->tail = NULL;
    }
    pthread_cond_broadcast(&s->work);
    if (!fail && !flush) return;
    char nodev[768];
    snprintf(nodev, sizeof nodev,
             s->n_alive ? "no device left to run the request: the scheduler is shut down and the engines that did "
                          "not fail have stopped (last fault: %s)"
                        : "no device left: every engine of the scheduler was taken out of service (last fault: %s)",
             s->last_fault);
    pthread_mutex_unlock(&s->mu);
    fail_list(s, fail, msg ? msg : nodev);
    fail_list(s, flush, nodev);
    pthread_mutex_lock(&s->mu);
}

/* kiln_batch_env.device_usable: a run of n_requests requests on w's
 * engine failed with KILN_ERR_DEVICE. Asks the engine whether its device
 * still works (cuda: whether the error is a sticky one) and logs one line
 * when it does: the run's requests fail, the engine keeps serving. When it
 * does not, device_fault logs the "taken out" line with the reason kept
 * here. Called without mu: the check may wait for the device. */
static bool worker_device_usable(void *arg, int n_requests)
{
    worker *w = arg;
    slot *es = &w->s->eng[w->slot];
    char msg[512];
    snprintf(msg, sizeof msg, "%s", kiln_last_error());
    bool usable = kiln_engine_device_check(es->e) == KILN_OK;
    if (usable)
        kiln_log(KILN_LOG_WARN,
                 "scheduler: device %d (engine %d): a run of %d request%s failed: %s; the device still works (the "
                 "error is not sticky): those requests fail, the engine keeps serving",
                 es->device, w->slot, n_requests, n_requests == 1 ? "" : "s", msg);
    else
        snprintf(w->check_msg, sizeof w->check_msg, "%s", kiln_last_error());
    kiln_fail(KILN_ERR_DEVICE, "%s", msg); /* the run's message stays its requests' */
    return usable;
}

/* A run on w's engine failed with KILN_ERR_DEVICE (the message in this
 * thread's kiln_last_error) and the device check found the device lost
 * (w->check_msg): the engine is taken out of service, once, and
 * reqs[0..n) are retried elsewhere. With mu held. */
static void device_fault(kiln_scheduler *s, worker *w, kiln_future **reqs, int n)
{
    slot *es = &s->eng[w->slot];
    char msg[512];
    snprintf(msg, sizeof msg, "%s", kiln_last_error());
    for (int r = 0; r < n; r++) reqs[r]->tried |= (uint64_t)1 << w->slot;
    if (atomic_load(&es->alive)) {
        atomic_store(&es->alive, false);
        int left = --s->n_alive;
        snprintf(s->last_fault, sizeof s->last_fault, "device %d (engine %d): %.400s", es->device, w->slot, msg);
        /* logged before any request of it completes, outside the lock (the
         * sink is the caller's code) */
        pthread_mutex_unlock(&s->mu);
        kiln_log(KILN_LOG_ERROR,
                 "scheduler: device %d (engine %d) taken out of service: %s (device check: %s); %d of %d engine%s "
                 "left",
                 es->device, w->slot, msg, w->check_msg[0] ? w->check_msg : "lost", left, s->n_engines,
                 s->n_engines == 1 ? "" : "s");
        pthread_mutex_lock(&s->mu);
    }
    requeue(s, reqs, n, msg);
}

/* Prepares w's context for every shape its engine's workers may be given
 * (es->prep); the first failure is kept in w for kiln_scheduler_create. */
static kiln_status prepare_worker(kiln_scheduler *s, worker *w)
{
    const slot *es = &s->eng[w->slot];
    for (int k = 0; k < es->n_prep; k++) {
        const kiln_tensor *in = &es->prep[(size_t)k * (size_t)s->n_in];
        kiln_status st = kiln_context_prepare(w->ctx, s->n_in, in);
        if (st == KILN_OK) continue;
        char what[64] = "its input shapes";
        if (s->batching) snprintf(what, sizeof what, "a batch of %lld", (long long)in[0].dims[0]);
        char why[96] = "";
        if (s->batching)
            snprintf(why, sizeof why, " (a batching scheduler prepares every batch of 1..max_batch = %d rows)",
                     s->cfg.max_batch);
        snprintf(w->prep_err, sizeof w->prep_err, "kiln_scheduler_create: preparing a worker of engine %d for %s: %s%s",
                 w->slot, what, kiln_last_error(), why);
        return st;
    }
    return KILN_OK;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    kiln_scheduler *s = w->s;
    slot *es = &s->eng[w->slot];
    const kiln_batch_env k = {&s->runs, &s->rows, &s->completed, &s->failed, &es->runs, worker_device_usable, w};
    kiln_status prep = prepare_worker(s, w);
    pthread_mutex_lock(&s->mu);
    w->prep_st = prep;
    s->n_prepared++;
    pthread_cond_broadcast(&s->prepared);
    for (;;) {
        if (!atomic_load(&es->alive)) break; /* taken out of service */
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
            if (!atomic_load(&es->alive)) {
                /* the engine failed while this worker gathered: the batch
                 * never ran here */
                requeue(s, w->batch, n, NULL);
                break;
            }
        } else {
            w->batch[0] = pop(s);
            n = 1;
        }
        pthread_mutex_unlock(&s->mu);
        int left = 0;
        kiln_status st = kiln_batch_run(w->ctx, &w->buf, w->batch, n, &k, &left);
        pthread_mutex_lock(&s->mu);
        if (st == KILN_ERR_DEVICE) device_fault(s, w, w->batch, left);
    }
    es->n_active--;
    /* the last worker of the last engine serving: nobody is left for the queue */
    requeue(s, NULL, 0, NULL);
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
    for (int k = 0; s->eng && k < s->n_engines; k++) free(s->eng[k].prep);
    free(s->w);
    free(s->eng);
    free(s->in_desc);
    pthread_cond_destroy(&s->prepared);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* "f32[?,3,8,8]" */
static void desc_str(const kiln_tensor_desc *d, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s[", kiln_dtype_name(d->dtype));
    for (int k = 0; k < d->rank && n < cap; k++)
        n += (size_t)(d->dims[k] < 0 ? snprintf(buf + n, cap - n, "%s?", k ? "," : "")
                                     : snprintf(buf + n, cap - n, "%s%lld", k ? "," : "", (long long)d->dims[k]));
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static bool desc_same(const kiln_tensor_desc *a, const kiln_tensor_desc *b)
{
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int k = 0; k < a->rank; k++)
        if ((a->dims[k] < 0) != (b->dims[k] < 0) || (a->dims[k] >= 0 && a->dims[k] != b->dims[k])) return false;
    return true;
}

/* The engines of one scheduler take the same requests and give the same
 * outputs: inputs and outputs agree in order, name, dtype and dims. */
static kiln_status check_same_io(kiln_engine *const *engines, int n_engines)
{
    kiln_engine *e0 = engines[0];
    for (int k = 1; k < n_engines; k++) {
        kiln_engine *e = engines[k];
        if (kiln_engine_num_inputs(e) != kiln_engine_num_inputs(e0) ||
            kiln_engine_num_outputs(e) != kiln_engine_num_outputs(e0))
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                             "kiln_scheduler_create_multi: engine %d has %d inputs and %d outputs, engine 0 %d and %d: "
                             "the engines of one scheduler must be built from one model",
                             k, kiln_engine_num_inputs(e), kiln_engine_num_outputs(e), kiln_engine_num_inputs(e0),
                             kiln_engine_num_outputs(e0));
        for (int io = 0; io < 2; io++) {
            int n = io ? kiln_engine_num_outputs(e) : kiln_engine_num_inputs(e);
            for (int i = 0; i < n; i++) {
                kiln_tensor_desc a, b;
                if (io) {
                    kiln_engine_output(e0, i, &a);
                    kiln_engine_output(e, i, &b);
                } else {
                    kiln_engine_input(e0, i, &a);
                    kiln_engine_input(e, i, &b);
                }
                if (desc_same(&a, &b)) continue;
                char sa[160], sb[160];
                desc_str(&a, sa, sizeof sa);
                desc_str(&b, sb, sizeof sb);
                return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                                 "kiln_scheduler_create_multi: engine %d does not match engine 0: its %s %d is '%s' "
                                 "%s, engine 0's is '%s' %s; the engines of one scheduler must be built from one model",
                                 k, io ? "output" : "input", i, b.name, sb, a.name, sa);
            }
        }
    }
    return KILN_OK;
}

/* The batch: dim 0, and any dim named like an input's dim 0. */
static bool is_batch_dim(const kiln_tensor_desc *d, int n_in, int i, int k)
{
    if (d[i].dims[k] >= 0) return false;
    bool batch = k == 0;
    for (int j = 0; j < n_in && !batch && d[i].dim_names[k]; j++)
        batch = d[j].dim_names[0] && !strcmp(d[j].dim_names[0], d[i].dim_names[k]);
    return batch;
}

/* The input shapes engine es's workers will run, for them to prepare
 * before the first request (none when the engine has nothing to prepare).
 * With batching: a batch of every size 1..max_batch that the engine's
 * profile allows, since the batcher forms any of them (a batch closes when
 * full, when its wait is over, when the next request does not fit, or at
 * shutdown; a preferred size only closes it early). Without: one shape,
 * as a request most likely brings it. Symbolic dims other than the batch
 * take the profile's opt. */
/* The batch sizes e's profile allows, [*lo, *hi] (the ref backend: any). */
static kiln_status batch_range(const kiln_engine *e, int n_in, int64_t *lo, int64_t *hi)
{
    kiln_tensor_desc d[64];
    if (n_in > 64) return kiln_fail(KILN_ERR_UNSUPPORTED, "kiln_scheduler_create: %d inputs; at most 64", n_in);
    *lo = 1;
    *hi = INT32_MAX;
    for (int i = 0; i < n_in; i++) kiln_engine_input(e, i, &d[i]);
    for (int i = 0; i < n_in; i++) {
        int64_t mn[KILN_MAX_RANK], opt[KILN_MAX_RANK], mx[KILN_MAX_RANK];
        kiln_status st = kiln_engine_input_profile(e, i, mn, opt, mx);
        if (st != KILN_OK) return st;
        for (int k = 0; k < d[i].rank; k++) {
            if (!is_batch_dim(d, n_in, i, k)) continue;
            if (mn[k] > *lo) *lo = mn[k];
            if (mx[k] < *hi) *hi = mx[k];
        }
    }
    return KILN_OK;
}

static kiln_status prepare_shapes(kiln_scheduler *s, slot *es)
{
    kiln_engine *e = es->e;
    if (!kiln_engine_can_prepare(e)) return KILN_OK;
    int n_in = s->n_in;
    kiln_tensor_desc d[64];
    if (n_in > 64) return kiln_fail(KILN_ERR_UNSUPPORTED, "kiln_scheduler_create: %d inputs; at most 64", n_in);
    int64_t opt[64][KILN_MAX_RANK];
    for (int i = 0; i < n_in; i++) {
        int64_t mn[KILN_MAX_RANK], mx[KILN_MAX_RANK];
        kiln_engine_input(e, i, &d[i]);
        kiln_status st = kiln_engine_input_profile(e, i, mn, opt[i], mx);
        if (st != KILN_OK) return st;
    }
    /* max_batch is within every engine's profile (create clamps it); a
     * batch below the profile's min cannot run and is not prepared */
    int64_t lo = 1, hi = INT32_MAX;
    if (s->batching) {
        kiln_status st = batch_range(e, n_in, &lo, &hi);
        if (st != KILN_OK) return st;
        if (hi > s->cfg.max_batch) hi = s->cfg.max_batch;
    }
    int n = s->batching ? (hi >= lo ? (int)(hi - lo + 1) : 0) : 1;
    es->prep = kiln_xcalloc((size_t)n * (size_t)n_in + 1, sizeof *es->prep);
    if (!es->prep) return KILN_ERR_OUT_OF_MEMORY;
    es->n_prep = n;
    for (int i = 0; i < n_in; i++) {
        for (int b = 0; b < n; b++) {
            kiln_tensor *t = &es->prep[(size_t)b * (size_t)n_in + (size_t)i];
            t->name = d[i].name;
            t->dtype = d[i].dtype;
            t->rank = d[i].rank;
            for (int k = 0; k < d[i].rank; k++) {
                t->dims[k] = d[i].dims[k] >= 0 ? d[i].dims[k] : opt[i][k];
                if (s->batching && is_batch_dim(d, n_in, i, k)) t->dims[k] = lo + b;
            }
        }
    }
    return KILN_OK;
}

kiln_status kiln_scheduler_create(kiln_engine *e, const kiln_scheduler_options *o, kiln_scheduler **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create: out is NULL");
    *out = NULL;
    if (!e) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create: engine is NULL");
    return kiln_scheduler_create_multi(&e, 1, o, out);
}

kiln_status kiln_scheduler_create_multi(kiln_engine *const *engines, int n_engines, const kiln_scheduler_options *o,
                                        kiln_scheduler **out)
{
    if (!out) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create_multi: out is NULL");
    *out = NULL;
    if (!engines || n_engines < 1 || n_engines > MAX_ENGINES)
        return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create_multi: %d engines; 1..%d are possible",
                         engines ? n_engines : 0, MAX_ENGINES);
    for (int k = 0; k < n_engines; k++)
        if (!engines[k]) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create_multi: engine %d is NULL", k);
    kiln_scheduler_options dflt;
    if (!o) {
        kiln_scheduler_options_init(&dflt);
        o = &dflt;
    }
    int per_engine = o->n_workers > 0 ? o->n_workers : 1;
    if (per_engine > 1024 || o->max_batch < 0 || o->max_delay_us < 0 || o->n_preferred < 0 ||
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
    for (int k = 0; k < n_engines && o->device != 0; k++) {
        kiln_engine *e = engines[k];
        if (!kiln_engine_backend(e)->device_count) /* a host backend */
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_create: device %d: the %s backend has no devices",
                             o->device, kiln_engine_backend_name(e));
        if (n_engines > 1 || kiln_engine_options(e)->device != o->device)
            return kiln_fail(KILN_ERR_INVALID_ARGUMENT,
                             "kiln_scheduler_create: device %d: engine %d is on GPU %d; the workers run on their "
                             "engine's GPU (kiln_build_options.device, kiln_engine_load_device): leave device 0",
                             o->device, k, kiln_engine_options(e)->device);
    }
    kiln_status st = check_same_io(engines, n_engines);
    if (st != KILN_OK) return st;
    kiln_engine *e = engines[0];
    bool batching = o->max_batch > 1;
    int n_in = kiln_engine_num_inputs(e);
    kiln_tensor_desc *desc = kiln_xcalloc((size_t)n_in + 1, sizeof *desc);
    if (!desc) return KILN_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < n_in; i++) {
        kiln_engine_input(e, i, &desc[i]);
        if (!batching) continue;
        if (desc[i].rank < 1 || desc[i].dims[0] >= 0) {
            st = kiln_fail(
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
    pthread_cond_init(&s->prepared, NULL);
    int n_workers = per_engine * n_engines;
    s->eng = kiln_xcalloc((size_t)n_engines, sizeof *s->eng);
    s->w = kiln_xcalloc((size_t)n_workers, sizeof *s->w);
    if (!s->eng || !s->w) {
        scheduler_free(s);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    s->n_engines = n_engines;
    s->n_alive = n_engines;
    for (int k = 0; k < n_engines; k++) {
        s->eng[k].e = engines[k];
        s->eng[k].device = kiln_engine_options(engines[k])->device;
        atomic_init(&s->eng[k].alive, true);
        atomic_init(&s->eng[k].runs, 0);
    }
    s->n_workers = n_workers;
    /* a batch over an engine's profile could not run: batches stop at the
     * smallest profile max of the engines */
    for (int k = 0; k < n_engines && st == KILN_OK && batching; k++) {
        int64_t lo, hi;
        st = batch_range(engines[k], n_in, &lo, &hi);
        if (st == KILN_OK && hi < s->cfg.max_batch) {
            kiln_log(KILN_LOG_WARN,
                     "scheduler: max_batch %d is above the optimization profile of engine %d (batch %lld..%lld): "
                     "batches of at most %lld rows; rebuild with a larger --maxShapes for bigger batches",
                     s->cfg.max_batch, k, (long long)lo, (long long)hi, (long long)(hi > 1 ? hi : 1));
            s->cfg.max_batch = hi > 1 ? (int)hi : 1;
        }
    }
    for (int k = 0; k < n_engines && st == KILN_OK; k++) {
        st = prepare_shapes(s, &s->eng[k]);
        if (st != KILN_OK && n_engines > 1) kiln_fail_prefix(st, "engine %d: ", k);
    }
    /* every context first: a failure leaves no thread to stop. Workers
     * interleave the engines (w[i] serves engine i % n_engines). */
    for (int i = 0; i < n_workers && st == KILN_OK; i++) {
        worker *w = &s->w[i];
        w->s = s;
        w->slot = i % n_engines;
        st = kiln_context_create(engines[w->slot], &w->ctx);
        if (st != KILN_OK && n_engines > 1) kiln_fail_prefix(st, "engine %d: ", w->slot);
        if (st == KILN_OK) {
            w->batch = kiln_xcalloc((size_t)s->cfg.max_batch, sizeof *w->batch);
            if (!w->batch) st = KILN_ERR_OUT_OF_MEMORY;
        }
    }
    for (int i = 0; i < n_workers && st == KILN_OK; i++) {
        worker *w = &s->w[i];
        pthread_mutex_lock(&s->mu);
        s->eng[w->slot].n_active++;
        pthread_mutex_unlock(&s->mu);
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        if (rc != 0) {
            pthread_mutex_lock(&s->mu);
            s->eng[w->slot].n_active--;
            pthread_mutex_unlock(&s->mu);
            st = kiln_fail(KILN_ERR_OUT_OF_MEMORY, "kiln_scheduler_create: cannot start worker %d: %s", i, strerror(rc));
        } else
            w->started = true;
    }
    /* the workers prepare their contexts at once (each shape costs
     * milliseconds of library plans and graph capture); the scheduler is
     * handed out when all are done, and not at all when one failed */
    if (st == KILN_OK) {
        uint64_t t0 = kiln_now_us();
        pthread_mutex_lock(&s->mu);
        while (s->n_prepared < n_workers) pthread_cond_wait(&s->prepared, &s->mu);
        pthread_mutex_unlock(&s->mu);
        int n_shapes = 0;
        for (int i = 0; i < n_workers && st == KILN_OK; i++) {
            if (s->w[i].prep_st != KILN_OK) st = kiln_fail(s->w[i].prep_st, "%s", s->w[i].prep_err);
            n_shapes += s->eng[s->w[i].slot].n_prep;
        }
        if (st == KILN_OK && n_shapes)
            kiln_log(KILN_LOG_INFO, "scheduler: %d workers prepared %d input shapes in %.1f ms", n_workers, n_shapes,
                     (double)(kiln_now_us() - t0) / 1e3);
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
    /* the last worker to leave failed what was left; nothing should be */
    kiln_scheduler_shutdown(s, 1);
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

kiln_status kiln_scheduler_device_stats(kiln_scheduler *s, int engine_index, uint64_t *runs, int *alive)
{
    if (!s) return kiln_fail(KILN_ERR_INVALID_ARGUMENT, "kiln_scheduler_device_stats: scheduler is NULL");
    if (engine_index < 0 || engine_index >= s->n_engines)
        return kiln_fail(KILN_ERR_NOT_FOUND, "kiln_scheduler_device_stats: engine %d; the scheduler has %d (0..%d)",
                         engine_index, s->n_engines, s->n_engines - 1);
    if (runs) *runs = atomic_load(&s->eng[engine_index].runs);
    if (alive) *alive = atomic_load(&s->eng[engine_index].alive) ? 1 : 0;
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
    if (s->n_alive == 0) {
        char why[sizeof s->last_fault];
        memcpy(why, s->last_fault, sizeof why);
        pthread_mutex_unlock(&s->mu);
        kiln_future_free(f);
        return kiln_fail(KILN_ERR_DEVICE,
                         "kiln_infer_async: no device left: every engine of the scheduler was taken out of service "
                         "(last fault: %s)",
                         why);
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
