/* Engines and contexts on the ref backend: inputs are checked by name,
 * dtype and shape before anything runs; results are right; contexts on one
 * engine run side by side from several threads. */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/backend.h" /* the backend table */

static kiln_engine *build_add(kiln_model **m)
{
    char *p = kt_model("add.onnx"); /* C = A + B, all f32 [2,3] */
    kiln_engine *e = kt_build_ref(p, m);
    free(p);
    assert_string_equal(kiln_engine_backend_name(e), "ref");
    return e;
}

static kiln_tensor tensor(const char *name, float *data)
{
    kiln_tensor t = {.name = name, .dtype = KILN_F32, .rank = 2, .dims = {2, 3}, .data = data};
    return t;
}

static void test_runs_and_checks_inputs(void **state)
{
    (void)state;
    kiln_model *m;
    kiln_engine *e = build_add(&m);
    kiln_model_destroy(m); /* the engine keeps what it needs */
    kiln_context *c;
    assert_kiln_ok(kiln_context_create(e, &c));
    float a[6], b[6];
    kt_fill_uniform(a, 6, 1, -1, 1);
    kt_fill_uniform(b, 6, 2, -1, 1);
    kiln_tensor in[2] = {tensor("B", b), tensor("A", a)}; /* any order */
    int n_out;
    const kiln_tensor *out;
    assert_kiln_ok(kiln_context_run(c, 2, in, &n_out, &out));
    assert_int_equal(n_out, 1);
    assert_string_equal(out[0].name, "C");
    for (int i = 0; i < 6; i++) assert_true(((float *)out[0].data)[i] == a[i] + b[i]);

    assert_int_equal(kiln_context_run(c, 1, in, &n_out, &out), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "'A' is missing"));
    in[1].dims[1] = 4;
    assert_int_equal(kiln_context_run(c, 2, in, &n_out, &out), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "'A'"));
    assert_non_null(strstr(kiln_last_error(), "4 was given"));
    in[1].dims[1] = 3;
    in[1].dtype = KILN_F16;
    assert_int_equal(kiln_context_run(c, 2, in, &n_out, &out), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "must be f32"));
    kiln_context_destroy(c);
    kiln_engine_destroy(e);
}

static void test_cuda_backend_is_not_a_silent_fallback(void **state)
{
    (void)state;
    char *p = kt_model("add.onnx");
    kiln_model *m;
    assert_kiln_ok(kiln_model_load(p, &m));
    free(p);
    kiln_build_options o;
    kiln_build_options_init(&o); /* default backend: cuda */
    kiln_engine *e = NULL;
    kiln_status st = kiln_engine_build(m, &o, &e);
    if (st == KILN_OK) {
        /* a build with a GPU engine: it must really be that backend */
        assert_string_equal(kiln_engine_backend_name(e), "cuda");
        kiln_engine_destroy(e);
    } else {
        assert_null(e);
        assert_non_null(strstr(kiln_last_error(), "cuda"));
    }
    kiln_model_destroy(m);
}

/* What kiln asks a backend goes through the one table: ref fills in none
 * of the device members and gets the host defaults; a backend this build
 * lacks is named, not unknown. */
static void test_backend_table(void **state)
{
    (void)state;
    const kiln_backend_iface *ref = kiln_backend_find(KILN_BACKEND_REF);
    assert_non_null(ref);
    assert_string_equal(ref->name, "ref");
    assert_string_equal(kiln_backend_name(KILN_BACKEND_REF), "ref");
    assert_string_equal(kiln_backend_name(KILN_BACKEND_CUDA), "cuda");
    assert_null(kiln_backend_name((kiln_backend)99));
    assert_string_equal(kiln_backend_arch_of(KILN_BACKEND_REF, 0), "cpu");
    assert_int_equal(kiln_backend_check_device(ref, 0), KILN_OK);
    assert_int_equal(kiln_backend_check_device(ref, 1), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "device must be 0"));
    assert_int_equal(kiln_backend_default_precision(ref), KILN_PRECISION_FP32);
    assert_true(kiln_backend_builds(ref, KILN_PRECISION_DEFAULT));
    assert_true(kiln_backend_builds(ref, KILN_PRECISION_FP32));
    assert_false(kiln_backend_builds(ref, KILN_PRECISION_FP16));
    char libs[64] = "x";
    kiln_backend_lib_versions(ref, libs, sizeof libs);
    assert_string_equal(libs, "");
    assert_int_equal(kiln_backend_missing((kiln_backend)99), KILN_ERR_INVALID_ARGUMENT);
    if (!kiln_backend_find(KILN_BACKEND_CUDA)) {
        assert_int_equal(kiln_backend_missing(KILN_BACKEND_CUDA), KILN_ERR_UNSUPPORTED);
        assert_non_null(strstr(kiln_last_error(), "the cuda backend is not part of this build of kiln"));
        assert_null(kiln_backend_arch_of(KILN_BACKEND_CUDA, 0));
    }
    /* every registered backend once, ref among them */
    int n = 0, saw_ref = 0;
    kiln_backend id;
    for (const kiln_backend_iface *be; (be = kiln_backend_at(n, &id)) != NULL; n++) {
        assert_ptr_equal(kiln_backend_find(id), be);
        saw_ref += be == ref;
    }
    assert_int_equal(saw_ref, 1);
    assert_null(kiln_backend_at(n, NULL));
}

typedef struct worker {
    kiln_engine *e;
    int failures;
    unsigned seed;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    kiln_context *c;
    if (kiln_context_create(w->e, &c) != KILN_OK) {
        w->failures++;
        return NULL;
    }
    for (int it = 0; it < 200; it++) {
        float a[6], b[6];
        kt_fill_uniform(a, 6, w->seed + (unsigned)it, -1, 1);
        kt_fill_uniform(b, 6, w->seed * 7 + (unsigned)it, -1, 1);
        kiln_tensor in[2] = {tensor("A", a), tensor("B", b)};
        int n_out;
        const kiln_tensor *out;
        if (kiln_context_run(c, 2, in, &n_out, &out) != KILN_OK) {
            w->failures++;
            continue;
        }
        for (int i = 0; i < 6; i++)
            if (((float *)out[0].data)[i] != a[i] + b[i]) w->failures++;
    }
    kiln_context_destroy(c);
    return NULL;
}

static void test_contexts_in_parallel(void **state)
{
    (void)state;
    kiln_model *m;
    kiln_engine *e = build_add(&m);
    pthread_t t[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){.e = e, .seed = (unsigned)i * 1000 + 1};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    kiln_engine_destroy(e);
    kiln_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_and_checks_inputs),
        cmocka_unit_test(test_cuda_backend_is_not_a_silent_fallback),
        cmocka_unit_test(test_backend_table),
        cmocka_unit_test(test_contexts_in_parallel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
