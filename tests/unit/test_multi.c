/* One scheduler over several engines (the multi-GPU path), on ref engines
 * of one model standing in for the GPUs: the work is spread over every
 * engine and each result equals a single-threaded run; a fatal device
 * fault (injected) takes its engine out and its requests finish on the
 * others; with every engine out, requests fail at once ("no device
 * left"); a recoverable device fault fails exactly the requests of its
 * run (a whole batch, no others) and the engine keeps serving; any other
 * fault fails only its request; engines of different models are refused. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/backend.h" /* kiln_engine_inject_fault */

#include "requests.h"

#define NENG 3

#define THREADS 8
#define REQUESTS 500 /* per thread */
#define INFLIGHT 4   /* requests in flight per thread */

static kiln_engine *g_eng[NENG]; /* symbolic.onnx: input [batch,3,8,8] -> output [batch,10] */

/* ---- the log: "taken out" lines and "keeps serving" lines */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_taken_out, g_kept;
static char g_last_taken[1024], g_last_kept[1024];

static void log_sink(kiln_log_level level, const char *msg, void *user)
{
    (void)user;
    bool taken = level == KILN_LOG_ERROR && strstr(msg, "taken out of service");
    bool kept = level == KILN_LOG_WARN && strstr(msg, "the engine keeps serving");
    if (!taken && !kept) return;
    pthread_mutex_lock(&g_log_mu);
    if (taken) {
        g_taken_out++;
        snprintf(g_last_taken, sizeof g_last_taken, "%s", msg);
    } else {
        g_kept++;
        snprintf(g_last_kept, sizeof g_last_kept, "%s", msg);
    }
    pthread_mutex_unlock(&g_log_mu);
}

static int kept_serving(void)
{
    pthread_mutex_lock(&g_log_mu);
    int n = g_kept;
    g_kept = 0;
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

static int taken_out(void)
{
    pthread_mutex_lock(&g_log_mu);
    int n = g_taken_out;
    g_taken_out = 0;
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

static kiln_engine *build(const char *name)
{
    char *p = kt_model(name);
    kiln_engine *e = kt_build_ref(p, NULL);
    free(p);
    return e;
}

static int setup(void **state)
{
    (void)state;
    for (int k = 0; k < NENG; k++) g_eng[k] = build("symbolic.onnx");
    kt_requests_init(g_eng[0], 101);
    kiln_set_log_callback(log_sink, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kiln_set_log_callback(NULL, NULL);
    for (int k = 0; k < NENG; k++) kiln_engine_destroy(g_eng[k]);
    return 0;
}

/* Waits at most 20 s: a request that never completes fails the test
 * instead of hanging it. */
static kiln_status wait_bounded(kiln_future *f)
{
    if (!kiln_future_wait_for(f, 20 * 1000000)) fail_msg("a request did not complete within 20 s");
    return kiln_future_wait(f);
}

typedef struct load_arg {
    kiln_scheduler *s;
    int t, batching;
    int ok, wrong, failed, refused;
    kiln_status first_err;
} load_arg;

/* THREADS x REQUESTS, INFLIGHT at a time per thread */
static void *load_thread(void *p)
{
    load_arg *a = p;
    req r[INFLIGHT];
    kiln_future *f[INFLIGHT];
    for (int i = 0; i < REQUESTS; i += INFLIGHT) {
        for (int k = 0; k < INFLIGHT; k++) {
            req_make(&r[k], (a->t * 11 + i + k * 17) % NV, a->batching ? 1 + (a->t + i + k) % MAXR : 1);
            if (kiln_infer_async(a->s, 1, &r[k].tin, 1, &r[k].tout, NULL, NULL, &f[k]) != KILN_OK) {
                a->refused++;
                f[k] = NULL;
            }
        }
        for (int k = 0; k < INFLIGHT; k++) {
            if (!f[k]) continue;
            kiln_status st = wait_bounded(f[k]);
            if (st != KILN_OK) {
                if (!a->failed++) a->first_err = st;
            } else if (req_check(&r[k]))
                a->wrong++;
            else
                a->ok++;
            kiln_future_destroy(f[k]);
        }
    }
    return NULL;
}

typedef struct totals {
    int ok, wrong, failed, refused;
} totals;

static totals run_load(kiln_scheduler *s, int batching)
{
    pthread_t th[THREADS];
    load_arg a[THREADS];
    for (int t = 0; t < THREADS; t++) {
        a[t] = (load_arg){.s = s, .t = t, .batching = batching};
        assert_int_equal(pthread_create(&th[t], NULL, load_thread, &a[t]), 0);
    }
    totals n = {0};
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        n.ok += a[t].ok;
        n.wrong += a[t].wrong;
        n.failed += a[t].failed;
        n.refused += a[t].refused;
    }
    return n;
}

static kiln_scheduler *make(int n_engines, int workers, int batching)
{
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.n_workers = workers;
    if (batching) {
        o.max_batch = 8;
        o.max_delay_us = 200;
    }
    kiln_scheduler *s = NULL;
    assert_kiln_ok(kiln_scheduler_create_multi(g_eng, n_engines, &o, &s));
    return s;
}

/* ---------------------------------------------------------- spreading */

static void spread(int n_engines, int batching)
{
    kiln_scheduler *s = make(n_engines, 2, batching);
    totals n = run_load(s, batching);
    assert_int_equal(n.wrong, 0);
    assert_int_equal(n.failed, 0);
    assert_int_equal(n.refused, 0);
    assert_int_equal(n.ok, THREADS * REQUESTS);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.completed, THREADS * REQUESTS);
    uint64_t sum = 0;
    for (int k = 0; k < n_engines; k++) {
        uint64_t runs = 0;
        int alive = 0;
        assert_kiln_ok(kiln_scheduler_device_stats(s, k, &runs, &alive));
        assert_int_equal(alive, 1);
        assert_true(runs > 0); /* every engine got work */
        sum += runs;
        print_message("%d engines%s: engine %d ran %llu\n", n_engines, batching ? ", batching" : "", k,
                      (unsigned long long)runs);
    }
    assert_int_equal(sum, st.runs);
    if (batching) assert_true(st.rows > st.runs); /* requests were gathered */
    assert_int_equal(kiln_scheduler_device_stats(s, n_engines, NULL, NULL), KILN_ERR_NOT_FOUND);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), 0);
}

static void test_two_engines_share_the_work(void **state)
{
    (void)state;
    spread(2, 0);
    spread(2, 1);
}

static void test_three_engines_share_the_work(void **state)
{
    (void)state;
    spread(3, 0);
    spread(3, 1);
}

/* -------------------------------------------------------------- faults */

/* A device fault on engine 1 after 50 runs: it is taken out (one log
 * line), and every request still completes OK on the others. */
static void device_fault_on_one(int n_engines, int batching)
{
    kiln_scheduler *s = make(n_engines, 2, batching);
    kiln_engine_inject_fault(g_eng[1], KILN_ERR_DEVICE, 50, 0, KILN_FAULT_FATAL);
    totals n = run_load(s, batching);
    kiln_engine_inject_fault(g_eng[1], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    assert_int_equal(n.wrong, 0);
    assert_int_equal(n.failed, 0);
    assert_int_equal(n.refused, 0);
    assert_int_equal(n.ok, THREADS * REQUESTS);
    uint64_t runs[NENG] = {0};
    int alive[NENG] = {0};
    for (int k = 0; k < n_engines; k++) assert_kiln_ok(kiln_scheduler_device_stats(s, k, &runs[k], &alive[k]));
    assert_int_equal(alive[0], 1);
    assert_int_equal(alive[1], 0);
    if (n_engines > 2) assert_int_equal(alive[2], 1);
    assert_true(runs[1] >= 50);       /* its runs until the fault, */
    assert_true(runs[1] <= 50 + 2 + 2); /* plus at most a failed one per worker (and one in flight) */
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.completed, THREADS * REQUESTS);
    assert_int_equal(st.failed, 0);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), 1);
    pthread_mutex_lock(&g_log_mu);
    assert_non_null(strstr(g_last_taken, "device 0 (engine 1) taken out of service: injected fault"));
    assert_non_null(strstr(g_last_taken, "(device check: the injected fault is a fatal one)"));
    pthread_mutex_unlock(&g_log_mu);
    assert_int_equal(kept_serving(), 0);
    print_message("%d engines%s, engine 1 faulted: runs %llu %llu %llu\n", n_engines, batching ? ", batching" : "",
                  (unsigned long long)runs[0], (unsigned long long)runs[1], (unsigned long long)runs[2]);
}

static void test_device_fault_moves_requests(void **state)
{
    (void)state;
    device_fault_on_one(2, 0);
    device_fault_on_one(3, 0);
    device_fault_on_one(2, 1);
    device_fault_on_one(3, 1);
}

/* Every engine faulted: the requests fail with KILN_ERR_DEVICE, none
 * hangs, and later submissions are refused with "no device left". */
static void all_faulted(int n_engines, int batching)
{
    kiln_scheduler *s = make(n_engines, 1, batching);
    for (int k = 0; k < n_engines; k++) kiln_engine_inject_fault(g_eng[k], KILN_ERR_DEVICE, 5, 0, KILN_FAULT_FATAL);
    enum { N = 300 };
    req *r = calloc(N, sizeof *r);
    kiln_future **f = calloc(N, sizeof *f);
    int accepted = 0, refused = 0, ok = 0, dev = 0, no_device = 0, injected = 0;
    for (int i = 0; i < N; i++) {
        req_make(&r[i], i % NV, batching ? 1 + i % MAXR : 1);
        kiln_status st = kiln_infer_async(s, 1, &r[i].tin, 1, &r[i].tout, NULL, NULL, &f[i]);
        if (st == KILN_OK) {
            accepted++;
            continue;
        }
        assert_int_equal(st, KILN_ERR_DEVICE);
        assert_non_null(strstr(kiln_last_error(), "no device left"));
        assert_null(f[i]);
        refused++;
    }
    for (int i = 0; i < N; i++) {
        if (!f[i]) continue;
        kiln_status st = wait_bounded(f[i]);
        if (st == KILN_OK) {
            assert_int_equal(req_check(&r[i]), 0);
            ok++;
        } else {
            assert_int_equal(st, KILN_ERR_DEVICE);
            dev++;
            if (strstr(kiln_future_error(f[i]), "no device left")) no_device++;
            else if (strstr(kiln_future_error(f[i]), "injected fault")) injected++;
            else fail_msg("unexpected message: %s", kiln_future_error(f[i]));
        }
        kiln_future_destroy(f[i]);
    }
    for (int k = 0; k < n_engines; k++) kiln_engine_inject_fault(g_eng[k], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    assert_int_equal(ok + dev, accepted);
    assert_true(ok <= 5 * n_engines * (batching ? 8 : 1)); /* 5 good runs per engine */
    assert_true(dev > 0);
    assert_true(injected >= 1); /* the last engine's failed run keeps its own error */
    for (int k = 0; k < n_engines; k++) {
        int alive = 1;
        assert_kiln_ok(kiln_scheduler_device_stats(s, k, NULL, &alive));
        assert_int_equal(alive, 0);
    }
    /* nothing is left to serve: refused at once */
    req one;
    req_make(&one, 1, 1);
    kiln_future *g = NULL;
    assert_int_equal(kiln_infer_async(s, 1, &one.tin, 1, &one.tout, NULL, NULL, &g), KILN_ERR_DEVICE);
    assert_non_null(strstr(kiln_last_error(), "no device left"));
    assert_null(g);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.submitted, accepted);
    assert_int_equal(st.completed + st.failed, accepted);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), n_engines);
    print_message("%d engines%s all faulted: %d ok, %d failed (%d injected, %d no device left), %d refused\n",
                  n_engines, batching ? ", batching" : "", ok, dev, injected, no_device, refused);
    free(r);
    free(f);
}

static void test_all_devices_faulted(void **state)
{
    (void)state;
    all_faulted(1, 0); /* one GPU: the degenerate case */
    all_faulted(2, 0);
    all_faulted(3, 1);
}

/* A fault that is not the device's fails its requests; the engine stays. */
static void test_other_fault_keeps_engine(void **state)
{
    (void)state;
    kiln_scheduler *s = make(2, 2, 0);
    kiln_engine_inject_fault(g_eng[1], KILN_ERR_SHAPE, 10, 0, KILN_FAULT_FATAL);
    totals n = run_load(s, 0);
    kiln_engine_inject_fault(g_eng[1], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    assert_int_equal(n.wrong, 0);
    assert_int_equal(n.refused, 0);
    assert_true(n.failed > 0);
    assert_int_equal(n.ok + n.failed, THREADS * REQUESTS);
    uint64_t runs1 = 0;
    int alive0 = 0, alive1 = 0;
    assert_kiln_ok(kiln_scheduler_device_stats(s, 0, NULL, &alive0));
    assert_kiln_ok(kiln_scheduler_device_stats(s, 1, &runs1, &alive1));
    assert_int_equal(alive0, 1);
    assert_int_equal(alive1, 1);
    /* every run on engine 1 after the 10th failed (two workers may both
     * have started an 11th before the count reached 10) */
    assert_true(n.failed <= (int)runs1 - 10 && n.failed >= (int)runs1 - 12);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.failed, n.failed);
    assert_int_equal(st.completed, n.ok);

    /* the message is the request's */
    kiln_engine_inject_fault(g_eng[0], KILN_ERR_SHAPE, 0, 0, KILN_FAULT_FATAL);
    kiln_engine_inject_fault(g_eng[1], KILN_ERR_SHAPE, 0, 0, KILN_FAULT_FATAL);
    req r;
    req_make(&r, 2, 1);
    kiln_future *f;
    assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
    assert_int_equal(wait_bounded(f), KILN_ERR_SHAPE);
    assert_string_equal(kiln_future_error(f), "injected fault");
    kiln_future_destroy(f);
    kiln_engine_inject_fault(g_eng[0], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    kiln_engine_inject_fault(g_eng[1], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    req_make(&r, 3, 1);
    assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
    assert_kiln_ok(wait_bounded(f));
    assert_int_equal(req_check(&r), 0);
    kiln_future_destroy(f);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), 0);
}

/* A batch whose device fails goes back whole: with batching on and one
 * engine faulted at once, every request still completes on the other. */
static void test_device_fault_requeues_batch(void **state)
{
    (void)state;
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.max_batch = 8;
    o.max_delay_us = 20000; /* long enough to gather all four */
    kiln_scheduler *s;
    kiln_engine *two[2] = {g_eng[1], g_eng[2]};
    kiln_engine_inject_fault(g_eng[1], KILN_ERR_DEVICE, 0, 0, KILN_FAULT_FATAL);
    kiln_engine_inject_fault(g_eng[2], KILN_ERR_DEVICE, 1000000, 0, KILN_FAULT_FATAL);
    assert_kiln_ok(kiln_scheduler_create_multi(two, 2, &o, &s));
    req r[4];
    kiln_future *f[4];
    for (int k = 0; k < 4; k++) {
        req_make(&r[k], k * 5, 2);
        assert_kiln_ok(kiln_infer_async(s, 1, &r[k].tin, 1, &r[k].tout, NULL, NULL, &f[k]));
    }
    for (int k = 0; k < 4; k++) {
        assert_kiln_ok(wait_bounded(f[k]));
        assert_int_equal(req_check(&r[k]), 0);
        kiln_future_destroy(f[k]);
    }
    kiln_engine_inject_fault(g_eng[1], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    kiln_engine_inject_fault(g_eng[2], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    kiln_scheduler_destroy(s);
    int n = taken_out();
    assert_true(n <= 1); /* engine 0 (g_eng[1]) out if it got the work first */
}

/* A recoverable device fault: the 5 runs from the 20th on fail (one
 * request each), nothing is retried elsewhere, no engine is taken out,
 * one warning per failed run, and everything else succeeds. */
static void test_recoverable_fault_fails_its_requests(void **state)
{
    (void)state;
    kiln_scheduler *s = make(2, 2, 0);
    kiln_engine_inject_fault(g_eng[1], KILN_ERR_DEVICE, 20, 5, KILN_FAULT_RECOVERABLE);
    totals n = run_load(s, 0);
    kiln_engine_inject_fault(g_eng[1], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    assert_int_equal(n.wrong, 0);
    assert_int_equal(n.refused, 0);
    assert_int_equal(n.failed, 5);
    assert_int_equal(n.ok, THREADS * REQUESTS - 5);
    for (int k = 0; k < 2; k++) {
        int alive = 0;
        assert_kiln_ok(kiln_scheduler_device_stats(s, k, NULL, &alive));
        assert_int_equal(alive, 1);
    }
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.failed, 5);
    assert_int_equal(st.completed, THREADS * REQUESTS - 5);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), 0);
    assert_int_equal(kept_serving(), 5);
    pthread_mutex_lock(&g_log_mu);
    assert_non_null(strstr(g_last_kept, "device 0 (engine 1): a run of 1 request failed: injected fault"));
    pthread_mutex_unlock(&g_log_mu);

    /* one engine, the fault on every run for a while: each request fails
     * with the error, the engine never leaves, and serves again after */
    s = make(1, 1, 0);
    kiln_engine_inject_fault(g_eng[0], KILN_ERR_DEVICE, 0, 0, KILN_FAULT_RECOVERABLE);
    req r;
    kiln_future *f;
    for (int i = 0; i < 3; i++) {
        req_make(&r, i, 1);
        assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
        assert_int_equal(wait_bounded(f), KILN_ERR_DEVICE);
        assert_string_equal(kiln_future_error(f), "injected fault");
        kiln_future_destroy(f);
    }
    kiln_engine_inject_fault(g_eng[0], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    req_make(&r, 9, 1);
    assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
    assert_kiln_ok(wait_bounded(f));
    assert_int_equal(req_check(&r), 0);
    kiln_future_destroy(f);
    int alive = 0;
    assert_kiln_ok(kiln_scheduler_device_stats(s, 0, NULL, &alive));
    assert_int_equal(alive, 1);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), 0);
    assert_int_equal(kept_serving(), 3);
}

/* A recoverable fault on a batched run fails exactly that batch's
 * requests: four requests of two rows fill a batch of 8, whose run fails;
 * the four queued behind them fill the next batch, which succeeds. */
static void test_recoverable_fault_fails_its_batch(void **state)
{
    (void)state;
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.max_batch = 8;
    o.max_delay_us = 5000000; /* a batch closes when full, never on time */
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create(g_eng[0], &o, &s));
    kiln_engine_inject_fault(g_eng[0], KILN_ERR_DEVICE, 0, 1, KILN_FAULT_RECOVERABLE);
    req r[8];
    kiln_future *f[8];
    for (int k = 0; k < 8; k++) {
        req_make(&r[k], k * 3, 2);
        assert_kiln_ok(kiln_infer_async(s, 1, &r[k].tin, 1, &r[k].tout, NULL, NULL, &f[k]));
    }
    for (int k = 0; k < 8; k++) {
        kiln_status st = wait_bounded(f[k]);
        if (k < 4) {
            assert_int_equal(st, KILN_ERR_DEVICE);
            assert_string_equal(kiln_future_error(f[k]), "injected fault");
        } else {
            assert_kiln_ok(st);
            assert_int_equal(req_check(&r[k]), 0);
        }
        kiln_future_destroy(f[k]);
    }
    kiln_engine_inject_fault(g_eng[0], KILN_OK, 0, 0, KILN_FAULT_FATAL);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.failed, 4);
    assert_int_equal(st.completed, 4);
    assert_int_equal(st.runs, 2);
    assert_int_equal(st.rows, 16);
    int alive = 0;
    assert_kiln_ok(kiln_scheduler_device_stats(s, 0, NULL, &alive));
    assert_int_equal(alive, 1);
    kiln_scheduler_destroy(s);
    assert_int_equal(taken_out(), 0);
    assert_int_equal(kept_serving(), 1);
    pthread_mutex_lock(&g_log_mu);
    assert_non_null(strstr(g_last_kept, "a run of 4 requests failed: injected fault"));
    pthread_mutex_unlock(&g_log_mu);
}

/* ------------------------------------------------------------ refusals */

static void test_mismatched_engines_refused(void **state)
{
    (void)state;
    kiln_scheduler *s = NULL;
    kiln_engine *other = build("zoo_resnet_basic.onnx"); /* x [batch,16,16,16] */
    kiln_engine *pair[2] = {g_eng[0], other};
    assert_int_equal(kiln_scheduler_create_multi(pair, 2, NULL, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_null(s);
    assert_non_null(strstr(kiln_last_error(), "engine 1 does not match engine 0"));
    assert_non_null(strstr(kiln_last_error(), "'x'"));
    kiln_engine_destroy(other);

    other = build("add.onnx"); /* two inputs */
    pair[1] = other;
    assert_int_equal(kiln_scheduler_create_multi(pair, 2, NULL, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "engine 1 has 2 inputs"));
    kiln_engine_destroy(other);

    /* one model, but the batch dim fixed in one of them */
    char *p = kt_model("symbolic.onnx");
    kiln_model *m = NULL;
    assert_kiln_ok(kiln_model_load(p, &m));
    free(p);
    int64_t dims[4] = {2, 3, 8, 8};
    assert_kiln_ok(kiln_model_set_input_shape(m, "input", 4, dims));
    kiln_build_options bo;
    kiln_build_options_init(&bo);
    bo.backend = KILN_BACKEND_REF;
    assert_kiln_ok(kiln_engine_build(m, &bo, &other));
    pair[0] = other;
    pair[1] = g_eng[0];
    assert_int_equal(kiln_scheduler_create_multi(pair, 2, NULL, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "input 0 is 'input' f32[?,3,8,8], engine 0's is 'input' f32[2,3,8,8]"));
    kiln_engine_destroy(other);

    /* ref engines have no GPU */
    bo.device = 1;
    assert_int_equal(kiln_engine_build(m, &bo, &other), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "device must be 0"));
    kiln_model_destroy(m);

    assert_int_equal(kiln_scheduler_create_multi(g_eng, 0, NULL, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kiln_scheduler_create_multi(NULL, 2, NULL, &s), KILN_ERR_INVALID_ARGUMENT);
    pair[0] = g_eng[0];
    pair[1] = NULL;
    assert_int_equal(kiln_scheduler_create_multi(pair, 2, NULL, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "engine 1 is NULL"));
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.device = 1;
    assert_int_equal(kiln_scheduler_create_multi(g_eng, 2, &o, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "no devices"));
    assert_int_equal(kiln_scheduler_device_stats(NULL, 0, NULL, NULL), KILN_ERR_INVALID_ARGUMENT);
}

/* A ref plan loads only onto device 0. */
static void test_load_device(void **state)
{
    (void)state;
    char dir[] = "/tmp/kiln_multi_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/sym.plan", dir);
    assert_kiln_ok(kiln_engine_save(g_eng[0], path));
    kiln_engine *e[2] = {NULL, NULL};
    assert_kiln_ok(kiln_engine_load_device(path, 0, &e[0]));
    assert_kiln_ok(kiln_engine_load(path, &e[1]));
    kiln_engine *bad = NULL;
    assert_int_equal(kiln_engine_load_device(path, 1, &bad), KILN_ERR_INVALID_ARGUMENT);
    assert_null(bad);
    assert_non_null(strstr(kiln_last_error(), "device must be 0"));
    assert_int_equal(kiln_engine_load_device(path, -1, &bad), KILN_ERR_INVALID_ARGUMENT);
    /* the two loaded engines serve one scheduler */
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create_multi(e, 2, NULL, &s));
    req r;
    req_make(&r, 7, 1);
    kiln_future *f;
    assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
    assert_kiln_ok(wait_bounded(f));
    assert_int_equal(req_check(&r), 0);
    kiln_future_destroy(f);
    kiln_scheduler_destroy(s);
    kiln_engine_destroy(e[0]);
    kiln_engine_destroy(e[1]);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_engines_share_the_work),
        cmocka_unit_test(test_three_engines_share_the_work),
        cmocka_unit_test(test_device_fault_moves_requests),
        cmocka_unit_test(test_all_devices_faulted),
        cmocka_unit_test(test_other_fault_keeps_engine),
        cmocka_unit_test(test_device_fault_requeues_batch),
        cmocka_unit_test(test_recoverable_fault_fails_its_requests),
        cmocka_unit_test(test_recoverable_fault_fails_its_batch),
        cmocka_unit_test(test_mismatched_engines_refused),
        cmocka_unit_test(test_load_device),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
