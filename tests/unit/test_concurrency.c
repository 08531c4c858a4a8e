/* The concurrent runtime on the ref backend: one engine shared by 64
 * threads (the context pool), futures, the scheduler's workers, the dynamic
 * batcher (every caller gets its own rows back), what the workers prepare
 * before the scheduler is handed out, fault isolation and shutdown under
 * load. Every result is compared with a single-threaded run of the same
 * input. */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/backend.h" /* kiln_engine_set_prepare_hook */

#include "requests.h"

static kiln_engine *g_engine; /* symbolic.onnx: input [batch,3,8,8] -> output [batch,10] */

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
    g_engine = build("symbolic.onnx");
    kt_requests_init(g_engine, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kiln_engine_destroy(g_engine);
    return 0;
}

/* ---------------------------------------------------------------- pool */

#define POOL_THREADS 64
static int g_pool_requests = 1000;

typedef struct pool_arg {
    int t, bad;
} pool_arg;

static void *pool_thread(void *p)
{
    pool_arg *a = p;
    req r;
    for (int i = 0; i < g_pool_requests; i++) {
        req_make(&r, (a->t * 31 + i) % NV, 1);
        if (i % 97 == 0) r.tout.data = NULL; /* kiln allocates this one */
        if (kiln_engine_infer(g_engine, 1, &r.tin, 1, &r.tout) != KILN_OK) {
            a->bad++;
            continue;
        }
        if (r.tout.data != r.out) {
            memcpy(r.out, r.tout.data, sizeof r.out[0]);
            kiln_free(r.tout.data);
        }
        a->bad += req_check(&r);
    }
    return NULL;
}

static void test_engine_infer_shared_by_64_threads(void **state)
{
    (void)state;
    const char *env = getenv("KILN_TEST_CONC_REQUESTS");
    if (env) g_pool_requests = atoi(env);
    assert_kiln_ok(kiln_engine_set_pool_limits(g_engine, 2, 8)); /* fewer contexts than threads: some wait */
    pthread_t th[POOL_THREADS];
    pool_arg a[POOL_THREADS];
    for (int t = 0; t < POOL_THREADS; t++) {
        a[t] = (pool_arg){.t = t};
        assert_int_equal(pthread_create(&th[t], NULL, pool_thread, &a[t]), 0);
    }
    int bad = 0;
    for (int t = 0; t < POOL_THREADS; t++) {
        pthread_join(th[t], NULL);
        bad += a[t].bad;
    }
    assert_int_equal(bad, 0);

    /* a failing request fails alone; the engine stays usable */
    req r;
    req_make(&r, 3, 1);
    r.tout.dims[1] = 4; /* buffer too small */
    assert_int_equal(kiln_engine_infer(g_engine, 1, &r.tin, 1, &r.tout), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "output 'output'"));
    r.tin.dims[1] = 4;
    r.tout.dims[1] = OUT;
    assert_int_equal(kiln_engine_infer(g_engine, 1, &r.tin, 1, &r.tout), KILN_ERR_SHAPE);
    req_make(&r, 3, 1);
    assert_kiln_ok(kiln_engine_infer(g_engine, 1, &r.tin, 1, &r.tout));
    assert_int_equal(req_check(&r), 0);
    assert_int_equal(kiln_engine_set_pool_limits(g_engine, 3, 2), KILN_ERR_INVALID_ARGUMENT);
}

/* ------------------------------------------------------------- futures */

static atomic_int g_callbacks;

static void count_done(kiln_status st, int n_out, kiln_tensor *out, void *user)
{
    (void)n_out;
    req *r = user;
    if (st == KILN_OK && out == &r->tout) atomic_fetch_add(&g_callbacks, 1);
}

static void test_async_futures(void **state)
{
    (void)state;
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.n_workers = 4;
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    enum { N = 2000 };
    req *r = calloc(N, sizeof *r);
    kiln_future **f = calloc(N, sizeof *f);
    atomic_store(&g_callbacks, 0);
    for (int i = 0; i < N; i++) {
        req_make(&r[i], i % NV, 1);
        assert_kiln_ok(kiln_infer_async(s, 1, &r[i].tin, 1, &r[i].tout, i % 2 ? count_done : NULL, &r[i], &f[i]));
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        switch (i % 3) {
        case 0: assert_kiln_ok(kiln_future_wait(f[i])); break;
        case 1:
            while (!kiln_future_wait_for(f[i], 1000)) {
            }
            break;
        default:
            while (!kiln_future_is_ready(f[i])) usleep(10);
        }
        assert_int_equal(kiln_future_wait(f[i]), KILN_OK);
        assert_string_equal(kiln_future_error(f[i]), "");
        bad += req_check(&r[i]);
        kiln_future_destroy(f[i]);
    }
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&g_callbacks), N / 2);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.submitted, N);
    assert_int_equal(st.completed, N);
    assert_int_equal(st.runs, N);
    kiln_scheduler_destroy(s);
    free(r);
    free(f);
}

/* ------------------------------------------------------------- batcher */

#define BATCH_THREADS 16
#define BATCH_REQUESTS 200

typedef struct batch_arg {
    kiln_scheduler *s;
    int t, bad;
} batch_arg;

static void *batch_thread(void *p)
{
    batch_arg *a = p;
    enum { W = 4 }; /* requests in flight per thread */
    req r[W];
    kiln_future *f[W];
    for (int i = 0; i < BATCH_REQUESTS; i += W) {
        for (int k = 0; k < W; k++) {
            req_make(&r[k], (a->t * 7 + i + k * 13) % NV, 1 + (a->t + i + k) % MAXR);
            if (kiln_infer_async(a->s, 1, &r[k].tin, 1, &r[k].tout, NULL, NULL, &f[k]) != KILN_OK) {
                a->bad++;
                f[k] = NULL;
            }
        }
        for (int k = 0; k < W; k++) {
            if (!f[k]) continue;
            if (kiln_future_wait(f[k]) != KILN_OK) a->bad++;
            else a->bad += req_check(&r[k]);
            kiln_future_destroy(f[k]);
        }
    }
    return NULL;
}

static void test_batcher_routes_slices(void **state)
{
    (void)state;
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.n_workers = 2;
    o.max_batch = 8;
    o.max_delay_us = 500;
    o.n_preferred = 1;
    o.preferred[0] = 4;
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    pthread_t th[BATCH_THREADS];
    batch_arg a[BATCH_THREADS];
    for (int t = 0; t < BATCH_THREADS; t++) {
        a[t] = (batch_arg){.s = s, .t = t};
        assert_int_equal(pthread_create(&th[t], NULL, batch_thread, &a[t]), 0);
    }
    int bad = 0;
    for (int t = 0; t < BATCH_THREADS; t++) {
        pthread_join(th[t], NULL);
        bad += a[t].bad;
    }
    assert_int_equal(bad, 0);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.submitted, BATCH_THREADS * BATCH_REQUESTS);
    assert_int_equal(st.completed, st.submitted);
    assert_true(st.runs < st.submitted / 2); /* requests were really gathered */
    print_message("batcher: %llu requests, %llu rows in %llu runs\n", (unsigned long long)st.submitted,
                  (unsigned long long)st.rows, (unsigned long long)st.runs);
    kiln_scheduler_destroy(s);
}

static void test_batcher_refusals(void **state)
{
    (void)state;
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.max_batch = 4;
    kiln_scheduler *s = NULL;

    kiln_engine *fixed = build("add.onnx"); /* A, B: fixed [2,3] */
    assert_int_equal(kiln_scheduler_create(fixed, &o, &s), KILN_ERR_INVALID_ARGUMENT);
    assert_null(s);
    assert_non_null(strstr(kiln_last_error(), "fixed dim 0"));
    o.max_batch = 1; /* without batching the scheduler takes it */
    assert_kiln_ok(kiln_scheduler_create(fixed, &o, &s));
    kiln_scheduler_destroy(s);
    kiln_engine_destroy(fixed);

    o.max_batch = 4;
    o.n_preferred = 1;
    o.preferred[0] = 5;
    assert_int_equal(kiln_scheduler_create(g_engine, &o, &s), KILN_ERR_INVALID_ARGUMENT);
    o.n_preferred = 0;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    float big[5 * ROW] = {0}, out[5 * OUT];
    kiln_tensor in = {.name = "input", .dtype = KILN_F32, .rank = 4, .dims = {5, 3, 8, 8}, .data = big};
    kiln_tensor to = {.dtype = KILN_F32, .rank = 2, .dims = {5, OUT}, .data = out};
    kiln_future *f = NULL;
    assert_int_equal(kiln_infer_async(s, 1, &in, 1, &to, NULL, NULL, &f), KILN_ERR_INVALID_ARGUMENT);
    assert_null(f);
    assert_non_null(strstr(kiln_last_error(), "max_batch"));
    in.dims[0] = 2;
    in.dtype = KILN_F16;
    assert_int_equal(kiln_infer_async(s, 1, &in, 1, &to, NULL, NULL, &f), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "must be f32"));
    in.dtype = KILN_F32;
    in.dims[2] = 9;
    assert_int_equal(kiln_infer_async(s, 1, &in, 1, &to, NULL, NULL, &f), KILN_ERR_SHAPE);
    kiln_scheduler_destroy(s);
}

/* ------------------------------------------------------------- prepare */

/* What the workers prepared (the ref backend prepares nothing itself: the
 * test hook stands in for cuda's prepare). */
typedef struct prep_log {
    pthread_mutex_t mu;
    int calls, by_rows[17], bad;
    int fail_rows; /* fail the prepare of this batch size (0: none) */
} prep_log;

static kiln_status prep_hook(void *user, int n, const kiln_tensor *in)
{
    prep_log *l = user;
    pthread_mutex_lock(&l->mu);
    l->calls++;
    bool ok = n == 1 && in[0].name && !strcmp(in[0].name, "input") && in[0].dtype == KILN_F32 && in[0].rank == 4 &&
              in[0].dims[1] == 3 && in[0].dims[2] == 8 && in[0].dims[3] == 8 && !in[0].data && in[0].dims[0] >= 1 &&
              in[0].dims[0] <= 16;
    if (ok) l->by_rows[in[0].dims[0]]++;
    else l->bad++;
    bool fail = l->fail_rows && in[0].dims[0] == l->fail_rows;
    pthread_mutex_unlock(&l->mu);
    return fail ? kiln_fail(KILN_ERR_SHAPE, "hook refuses %lld rows", (long long)in[0].dims[0]) : KILN_OK;
}

/* Each worker prepares every batch size the batcher can form, 1..max_batch
 * (preferred sizes do not limit them), before kiln_scheduler_create
 * returns; without batching one shape (the profile's opt: 1 on ref); a
 * failure fails the create with its message. */
static void test_workers_prepare_batch_sizes(void **state)
{
    (void)state;
    assert_false(kiln_engine_can_prepare(g_engine)); /* ref: nothing to do, nothing done */
    prep_log l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    kiln_engine_set_prepare_hook(g_engine, prep_hook, &l);
    assert_true(kiln_engine_can_prepare(g_engine));

    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.n_workers = 3;
    o.max_batch = 8;
    o.n_preferred = 1;
    o.preferred[0] = 4;
    kiln_scheduler *s = NULL;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    assert_int_equal(l.bad, 0);
    assert_int_equal(l.calls, 3 * 8); /* all of it before create returned */
    for (int b = 1; b <= 8; b++) assert_int_equal(l.by_rows[b], 3);
    req r;
    req_make(&r, 4, 2);
    kiln_future *f;
    assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
    assert_kiln_ok(kiln_future_wait(f));
    assert_int_equal(req_check(&r), 0);
    kiln_future_destroy(f);
    kiln_scheduler_destroy(s);
    assert_int_equal(l.calls, 3 * 8); /* runs prepare nothing more */

    /* no batching: one shape per worker */
    memset(l.by_rows, 0, sizeof l.by_rows);
    l.calls = 0;
    kiln_scheduler_options_init(&o);
    o.n_workers = 2;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    assert_int_equal(l.calls, 2);
    assert_int_equal(l.by_rows[1], 2);
    kiln_scheduler_destroy(s);

    /* a size that cannot be prepared fails the create, naming it */
    l.calls = 0;
    l.fail_rows = 3;
    o.n_workers = 2;
    o.max_batch = 4;
    s = (kiln_scheduler *)&l;
    assert_int_equal(kiln_scheduler_create(g_engine, &o, &s), KILN_ERR_SHAPE);
    assert_null(s);
    assert_non_null(strstr(kiln_last_error(), "preparing a worker of engine 0 for a batch of 3: hook refuses 3 rows"));
    assert_non_null(strstr(kiln_last_error(), "max_batch"));
    assert_int_equal(l.bad, 0);

    /* a profile of batches 2..5 (as a cuda engine's): max_batch 8 is
     * lowered to 5, only 2..5 are prepared, 6 rows are refused */
    kiln_engine_set_test_profile(g_engine, 2, 5);
    memset(l.by_rows, 0, sizeof l.by_rows);
    l.calls = 0;
    l.fail_rows = 0;
    kiln_scheduler_options_init(&o);
    o.n_workers = 3;
    o.max_batch = 8;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    assert_int_equal(l.calls, 3 * 4);
    for (int b = 1; b <= 8; b++) assert_int_equal(l.by_rows[b], b >= 2 && b <= 5 ? 3 : 0);
    static float big_in[6][ROW], big_out[6][OUT];
    kiln_tensor bi = {.name = "input", .dtype = KILN_F32, .rank = 4, .dims = {6, 3, 8, 8}, .data = big_in};
    kiln_tensor bo = {.dtype = KILN_F32, .rank = 2, .dims = {6, OUT}, .data = big_out};
    f = NULL;
    assert_int_equal(kiln_infer_async(s, 1, &bi, 1, &bo, NULL, NULL, &f), KILN_ERR_INVALID_ARGUMENT);
    assert_null(f);
    assert_non_null(strstr(kiln_last_error(), "requests of 1..5 rows"));
    req_make(&r, 5, 3);
    assert_kiln_ok(kiln_infer_async(s, 1, &r.tin, 1, &r.tout, NULL, NULL, &f));
    assert_kiln_ok(kiln_future_wait(f));
    assert_int_equal(req_check(&r), 0);
    kiln_future_destroy(f);
    kiln_scheduler_destroy(s);
    kiln_engine_set_test_profile(g_engine, 0, 0);

    kiln_engine_set_prepare_hook(g_engine, NULL, NULL);
    assert_false(kiln_engine_can_prepare(g_engine));
    l.calls = 0;
    kiln_scheduler_options_init(&o);
    o.n_workers = 2;
    o.max_batch = 4;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    kiln_scheduler_destroy(s);
    assert_int_equal(l.calls, 0);
}

/* One bad request in a batch fails alone; the others and later ones run. */
static void test_fault_fails_one_request(void **state)
{
    (void)state;
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.max_batch = 8;
    o.max_delay_us = 20000; /* long enough to gather all four */
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    req r[4];
    kiln_future *f[4];
    for (int k = 0; k < 4; k++) {
        req_make(&r[k], k * 5, 2);
        if (k == 2) r[k].tout.dims[0] = 1; /* room for one row of two */
        assert_kiln_ok(kiln_infer_async(s, 1, &r[k].tin, 1, &r[k].tout, NULL, NULL, &f[k]));
    }
    for (int k = 0; k < 4; k++) {
        kiln_status st = kiln_future_wait(f[k]);
        if (k == 2) {
            assert_int_equal(st, KILN_ERR_SHAPE);
            assert_non_null(strstr(kiln_future_error(f[k]), "buffer"));
            assert_non_null(strstr(kiln_last_error(), "buffer"));
        } else {
            assert_int_equal(st, KILN_OK);
            assert_int_equal(req_check(&r[k]), 0);
        }
        kiln_future_destroy(f[k]);
    }
    req_make(&r[0], 9, 1);
    assert_kiln_ok(kiln_infer_async(s, 1, &r[0].tin, 1, &r[0].tout, NULL, NULL, &f[0]));
    assert_kiln_ok(kiln_future_wait(f[0]));
    assert_int_equal(req_check(&r[0]), 0);
    kiln_future_destroy(f[0]);
    kiln_scheduler_stats st;
    assert_kiln_ok(kiln_scheduler_stats_get(s, &st));
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.completed, 4);
    kiln_scheduler_destroy(s);
}

/* ------------------------------------------------------------ shutdown */

#define SHUT_THREADS 8
#define SHUT_REQUESTS 300

typedef struct shut_arg {
    kiln_scheduler *s;
    req *r;
    kiln_future **f;
    int t, accepted, refused, other;
    atomic_int *started;
} shut_arg;

static atomic_int g_detached_done;

static void detached_done(kiln_status st, int n_out, kiln_tensor *out, void *user)
{
    (void)n_out;
    (void)out;
    (void)user;
    if (st == KILN_OK || st == KILN_ERR_CANCELLED) atomic_fetch_add(&g_detached_done, 1);
}

static void *shut_thread(void *p)
{
    shut_arg *a = p;
    atomic_fetch_add(a->started, 1);
    for (int i = 0; i < SHUT_REQUESTS; i++) {
        req_make(&a->r[i], (a->t + i) % NV, 1 + i % 2);
        bool detach = i % 5 == 0;
        kiln_status st = kiln_infer_async(a->s, 1, &a->r[i].tin, 1, &a->r[i].tout, detach ? detached_done : NULL,
                                          NULL, detach ? NULL : &a->f[i]);
        if (st == KILN_OK) a->accepted++;
        else if (st == KILN_ERR_CANCELLED) a->refused++;
        else a->other++;
        if (detach) a->f[i] = NULL;
    }
    return NULL;
}

static void shutdown_under_load(int cancel, int batching)
{
    kiln_scheduler_options o;
    kiln_scheduler_options_init(&o);
    o.n_workers = 2;
    if (batching) {
        o.max_batch = 4;
        o.max_delay_us = 200;
    }
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create(g_engine, &o, &s));
    atomic_store(&g_detached_done, 0);
    atomic_int started = 0;
    pthread_t th[SHUT_THREADS];
    shut_arg a[SHUT_THREADS];
    for (int t = 0; t < SHUT_THREADS; t++) {
        a[t] = (shut_arg){.s = s, .t = t, .started = &started};
        a[t].r = calloc(SHUT_REQUESTS, sizeof *a[t].r);
        a[t].f = calloc(SHUT_REQUESTS, sizeof *a[t].f);
        assert_int_equal(pthread_create(&th[t], NULL, shut_thread, &a[t]), 0);
    }
    while (atomic_load(&started) < SHUT_THREADS) usleep(100);
    usleep(2000); /* let the queue fill */
    kiln_scheduler_shutdown(s, cancel);
    int accepted = 0, ok = 0, cancelled = 0, other = 0;
    for (int t = 0; t < SHUT_THREADS; t++) {
        pthread_join(th[t], NULL);
        accepted += a[t].accepted;
        assert_int_equal(a[t].other, 0);
    }
    kiln_scheduler_destroy(s); /* every request is complete now */
    for (int t = 0; t < SHUT_THREADS; t++) {
        for (int i = 0; i < SHUT_REQUESTS; i++) {
            if (!a[t].f[i]) continue;
            assert_true(kiln_future_is_ready(a[t].f[i]));
            kiln_status st = kiln_future_wait(a[t].f[i]);
            if (st == KILN_OK) {
                ok++;
                assert_int_equal(req_check(&a[t].r[i]), 0);
            } else if (st == KILN_ERR_CANCELLED)
                cancelled++;
            else
                other++;
            kiln_future_destroy(a[t].f[i]);
        }
        free(a[t].r);
        free(a[t].f);
    }
    int detached = atomic_load(&g_detached_done);
    assert_int_equal(other, 0);
    assert_int_equal(ok + cancelled + detached, accepted);
    if (!cancel) assert_int_equal(cancelled, 0);
    print_message("shutdown (%s%s): %d accepted, %d ok, %d cancelled, %d fire-and-forget\n",
                  cancel ? "cancel" : "drain", batching ? ", batching" : "", accepted, ok, cancelled, detached);
}

static void test_shutdown_cancel_under_load(void **state)
{
    (void)state;
    shutdown_under_load(1, 0);
    shutdown_under_load(1, 1);
}

static void test_shutdown_drain_under_load(void **state)
{
    (void)state;
    shutdown_under_load(0, 0);
    shutdown_under_load(0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_infer_shared_by_64_threads),
        cmocka_unit_test(test_async_futures),
        cmocka_unit_test(test_batcher_routes_slices),
        cmocka_unit_test(test_batcher_refusals),
        cmocka_unit_test(test_workers_prepare_batch_sizes),
        cmocka_unit_test(test_fault_fails_one_request),
        cmocka_unit_test(test_shutdown_cancel_under_load),
        cmocka_unit_test(test_shutdown_drain_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
