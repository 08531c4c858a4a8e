/* Host buffers through the API (kiln_host_alloc/_free/_register/
 * _unregister): on a machine without a GPU they are plain memory and
 * registration locks nothing, but every call and argument check behaves
 * as with one, and an engine runs on such buffers. (The page-locked path
 * on a GPU is tested by test_cuda_engine.) */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "requests.h"

static void test_alloc_free(void **state)
{
    (void)state;
    void *p = NULL;
    assert_kiln_ok(kiln_host_alloc(1000, &p));
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 4096, 0); /* page-aligned, as page-locked memory is */
    memset(p, 0xab, 1000);
    void *q = NULL;
    assert_kiln_ok(kiln_host_alloc(1, &q));
    assert_ptr_not_equal(p, q);
    assert_kiln_ok(kiln_host_free(p));
    assert_kiln_ok(kiln_host_free(q));
    assert_kiln_ok(kiln_host_free(NULL)); /* as free(NULL) */
}

static void test_alloc_free_refusals(void **state)
{
    (void)state;
    assert_int_equal(kiln_host_alloc(16, NULL), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "ptr is NULL"));
    void *p = (void *)&p;
    assert_int_equal(kiln_host_alloc(0, &p), KILN_ERR_INVALID_ARGUMENT);
    assert_null(p);
    assert_non_null(strstr(kiln_last_error(), "0 bytes"));

    assert_kiln_ok(kiln_host_alloc(64, &p));
    assert_kiln_ok(kiln_host_free(p));
    assert_int_equal(kiln_host_free(p), KILN_ERR_INVALID_ARGUMENT); /* twice */
    assert_non_null(strstr(kiln_last_error(), "freed already"));

    void *m = malloc(64);
    assert_int_equal(kiln_host_free(m), KILN_ERR_INVALID_ARGUMENT); /* not kiln's */
    assert_non_null(strstr(kiln_last_error(), "kiln_host_alloc"));
    free(m);

    assert_kiln_ok(kiln_host_alloc(64, &p));
    assert_int_equal(kiln_host_free((char *)p + 8), KILN_ERR_INVALID_ARGUMENT); /* inside, not the start */
    assert_kiln_ok(kiln_host_free(p));
}

/* Page-aligned memory of the caller's: on a GPU, CUDA locks whole pages,
 * so two registrations must not share one. */
static void *own_pages(size_t bytes)
{
    void *p = NULL;
    assert_int_equal(posix_memalign(&p, 4096, bytes), 0);
    return p;
}

static void test_register(void **state)
{
    (void)state;
    size_t n = 1 << 16;
    char *buf = own_pages(n);
    assert_kiln_ok(kiln_host_register(buf, n));
    memset(buf, 1, n); /* still the caller's memory */
    /* the same range, or one that overlaps it, is refused */
    assert_int_equal(kiln_host_register(buf, n), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "registered already"));
    assert_int_equal(kiln_host_register(buf + n / 2, n / 4), KILN_ERR_INVALID_ARGUMENT);
    /* a registered buffer is not kiln's to free */
    assert_int_equal(kiln_host_free(buf), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "kiln_host_unregister"));
    assert_kiln_ok(kiln_host_unregister(buf));
    assert_int_equal(kiln_host_unregister(buf), KILN_ERR_INVALID_ARGUMENT); /* twice */
    assert_non_null(strstr(kiln_last_error(), "not registered"));
    /* registered again after unregistering, in two halves */
    assert_kiln_ok(kiln_host_register(buf, n / 2));
    assert_kiln_ok(kiln_host_register(buf + n / 2, n / 2));
    assert_kiln_ok(kiln_host_unregister(buf + n / 2));
    assert_kiln_ok(kiln_host_unregister(buf));
    free(buf);
}

static void test_register_refusals(void **state)
{
    (void)state;
    char b[64];
    assert_int_equal(kiln_host_register(NULL, 64), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "ptr is NULL"));
    assert_int_equal(kiln_host_register(b, 0), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "0 bytes"));
    assert_int_equal(kiln_host_register((void *)(UINTPTR_MAX - 16), 64), KILN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kiln_host_unregister(NULL), KILN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kiln_host_unregister(b), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "not registered"));

    /* kiln_host_alloc memory is locked already, and kiln_host_free's */
    void *p;
    assert_kiln_ok(kiln_host_alloc(256, &p));
    assert_int_equal(kiln_host_register(p, 256), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "kiln_host_alloc"));
    assert_int_equal(kiln_host_register((char *)p + 128, 16), KILN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kiln_host_unregister(p), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "kiln_host_free"));
    assert_kiln_ok(kiln_host_free(p));
}

/* Buffers made and released from several threads at once. */
#define THREADS 8
static void *churn(void *arg)
{
    (void)arg;
    int bad = 0;
    char *own = own_pages(4096);
    for (int i = 0; i < 200; i++) {
        void *p = NULL;
        bad += kiln_host_alloc(100 + (size_t)i, &p) != KILN_OK;
        if (p) memset(p, i, 100);
        bad += kiln_host_register(own, 4096) != KILN_OK;
        bad += kiln_host_unregister(own) != KILN_OK;
        bad += kiln_host_free(p) != KILN_OK;
    }
    free(own);
    return (void *)(intptr_t)bad;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) assert_int_equal(pthread_create(&th[t], NULL, churn, NULL), 0);
    for (int t = 0; t < THREADS; t++) {
        void *bad;
        pthread_join(th[t], &bad);
        assert_int_equal((intptr_t)bad, 0);
    }
}

/* An engine on such buffers gives the result it gives on malloc'd ones,
 * through kiln_engine_infer and a scheduler. */
static void test_engine_on_host_buffers(void **state)
{
    (void)state;
    char *path = kt_model("symbolic.onnx");
    kiln_engine *e = kt_build_ref(path, NULL);
    free(path);
    kt_requests_init(e, 7);
    float *in, *out;
    assert_kiln_ok(kiln_host_alloc(sizeof g_in[0], (void **)&in));
    assert_kiln_ok(kiln_host_alloc(sizeof g_ref[0], (void **)&out));
    float *reg = own_pages(4096);
    assert_kiln_ok(kiln_host_register(reg, sizeof g_ref[0]));
    kiln_scheduler *s;
    assert_kiln_ok(kiln_scheduler_create(e, NULL, &s));
    for (int v = 0; v < 4; v++) {
        memcpy(in, g_in[v], sizeof g_in[v]);
        kiln_tensor ti = {.name = "input", .dtype = KILN_F32, .rank = 4, .dims = {1, 3, 8, 8}, .data = in};
        kiln_tensor to = {.dtype = KILN_F32, .rank = 2, .dims = {1, OUT}, .data = out};
        memset(out, 0, sizeof g_ref[0]);
        assert_kiln_ok(kiln_engine_infer(e, 1, &ti, 1, &to));
        assert_ptr_equal(to.data, out);
        assert_memory_equal(out, g_ref[v], sizeof g_ref[v]);
        to.data = reg;
        memset(reg, 0, sizeof g_ref[0]);
        kiln_future *f;
        assert_kiln_ok(kiln_infer_async(s, 1, &ti, 1, &to, NULL, NULL, &f));
        assert_kiln_ok(kiln_future_wait(f));
        kiln_future_destroy(f);
        assert_memory_equal(reg, g_ref[v], sizeof g_ref[v]);
    }
    kiln_scheduler_destroy(s);
    assert_kiln_ok(kiln_host_unregister(reg));
    free(reg);
    assert_kiln_ok(kiln_host_free(in));
    assert_kiln_ok(kiln_host_free(out));
    kiln_engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_free),
        cmocka_unit_test(test_alloc_free_refusals),
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_register_refusals),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_engine_on_host_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
