/* ONNX import: good models load with the right shapes; every kind of bad
 * input gives its status and a message naming the file and node/tensor.
 * Models come from tests/models/gen.py (the gen fixture). */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static char *need_model(const char *name)
{
    char *p = kt_model(name);
    if (!p) fail_msg("generated test model %s is missing: run tests/models/gen.py (the gen fixture)", name);
    return p;
}

static kiln_status load(const char *name, kiln_model **m)
{
    char *p = need_model(name);
    kiln_status st = kiln_model_load(p, m);
    free(p);
    return st;
}

static void expect_error(const char *name, kiln_status want, const char *must_contain)
{
    kiln_model *m = NULL;
    kiln_status st = load(name, &m);
    if (st != want)
        fail_msg("%s: expected %s, got %s: %s", name, kiln_status_name(want), kiln_status_name(st), kiln_last_error());
    assert_null(m);
    if (!strstr(kiln_last_error(), name)) fail_msg("%s: message does not name the file: %s", name, kiln_last_error());
    if (must_contain && !strstr(kiln_last_error(), must_contain))
        fail_msg("%s: message lacks '%s': %s", name, must_contain, kiln_last_error());
}

static void test_missing_and_directory(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_int_equal(kiln_model_load("/nonexistent/dir/x.onnx", &m), KILN_ERR_IO);
    assert_non_null(strstr(kiln_last_error(), "/nonexistent/dir/x.onnx"));
    assert_int_equal(kiln_model_load("/tmp", &m), KILN_ERR_IO);
    assert_non_null(strstr(kiln_last_error(), "not a regular file"));
    assert_int_equal(kiln_model_load(NULL, &m), KILN_ERR_INVALID_ARGUMENT);
}

static void test_bad_bytes(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_int_equal(kiln_model_load_memory("", 0, "empty.onnx", NULL, &m), KILN_ERR_FORMAT);
    const char text[] = "this is a text file, not a protobuf\n";
    assert_int_equal(kiln_model_load_memory(text, sizeof text - 1, "text.onnx", NULL, &m), KILN_ERR_FORMAT);
    assert_non_null(strstr(kiln_last_error(), "text.onnx"));
    expect_error("truncated.onnx", KILN_ERR_FORMAT, NULL);
    expect_error("not_onnx.onnx", KILN_ERR_FORMAT, NULL);
}

static void test_truncated_at_every_tenth(void **state)
{
    (void)state;
    /* a model cut anywhere must fail cleanly (or, cut at a field boundary,
     * load as a smaller model) — never crash */
    char *p = need_model("symbolic.onnx");
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    free(p);
    for (int k = 1; k < 10; k++) {
        kiln_model *m = NULL;
        kiln_status st = kiln_model_load_memory(buf, n * (size_t)k / 10, "cut.onnx", NULL, &m);
        if (st == KILN_OK)
            kiln_model_destroy(m);
        else
            assert_non_null(strstr(kiln_last_error(), "cut.onnx"));
    }
}

static void test_opset_refused(void **state)
{
    (void)state;
    expect_error("old_opset.onnx", KILN_ERR_UNSUPPORTED, "opset");
}

static void test_unknown_op_listed_and_refused(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_kiln_ok(load("unknown_op.onnx", &m));
    assert_int_equal(kiln_model_num_unsupported(m), 1);
    const char *node, *op, *why;
    assert_kiln_ok(kiln_model_unsupported(m, 0, &node, &op, &why));
    assert_string_equal(node, "mystery_node");
    assert_string_equal(op, "FooBar");
    char *report = NULL;
    assert_kiln_ok(kiln_model_report(m, KILN_REPORT_JSON, &report));
    assert_non_null(strstr(report, "\"node\":\"mystery_node\""));
    kiln_free(report);
    kiln_build_options o;
    kiln_build_options_init(&o);
    o.backend = KILN_BACKEND_REF;
    kiln_engine *e = NULL;
    assert_int_equal(kiln_engine_build(m, &o, &e), KILN_ERR_UNSUPPORTED);
    assert_null(e);
    assert_non_null(strstr(kiln_last_error(), "mystery_node"));
    assert_non_null(strstr(kiln_last_error(), "unknown_op.onnx"));
    kiln_model_destroy(m);
}

static void test_custom_domain_listed(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_kiln_ok(load("custom_domain.onnx", &m));
    assert_true(kiln_model_num_unsupported(m) >= 1);
    const char *why;
    assert_kiln_ok(kiln_model_unsupported(m, 0, NULL, NULL, &why));
    assert_non_null(strstr(why, "domain"));
    kiln_model_destroy(m);
}

static void test_external_data(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_kiln_ok(load("external.onnx", &m));
    kiln_model_destroy(m);
    expect_error("external_escape.onnx", KILN_ERR_IO, NULL); /* ../../etc/passwd: refused one way or the other */
    expect_error("external_missing.onnx", KILN_ERR_IO, "external data");
    /* from memory without a folder: refused, not read from the cwd */
    char *p = need_model("external.onnx");
    FILE *f = fopen(p, "rb");
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    free(p);
    assert_int_equal(kiln_model_load_memory(buf, n, "mem.onnx", NULL, &m), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "external"));
}

static void test_contradiction_and_cycle(void **state)
{
    (void)state;
    expect_error("contradiction.onnx", KILN_ERR_SHAPE, "contradiction");
    expect_error("cycle.onnx", KILN_ERR_FORMAT, NULL);
}

static void test_symbolic_dims_and_set_shape(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_kiln_ok(load("symbolic.onnx", &m));
    kiln_tensor_desc d;
    assert_kiln_ok(kiln_model_input(m, 0, &d));
    assert_int_equal(d.rank, 4);
    assert_true(d.dims[0] < 0);
    assert_non_null(d.dim_names[0]);
    assert_kiln_ok(kiln_model_output(m, 0, &d));
    assert_true(d.dims[0] < 0);
    assert_string_equal(d.dim_names[0], "batch");
    assert_int_equal(d.dims[1], 10);

    assert_kiln_ok(kiln_model_input(m, 0, &d));
    int64_t dims[4] = {3, d.dims[1], d.dims[2], d.dims[3]};
    assert_kiln_ok(kiln_model_set_input_shape(m, d.name, 4, dims));
    assert_kiln_ok(kiln_model_output(m, 0, &d));
    assert_int_equal(d.dims[0], 3);
    /* a fixed dim cannot change */
    dims[1] += 1;
    kiln_tensor_desc in;
    assert_kiln_ok(kiln_model_input(m, 0, &in));
    assert_int_equal(kiln_model_set_input_shape(m, in.name, 4, dims), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), in.name));
    assert_int_equal(kiln_model_set_input_shape(m, "no_such_input", 4, dims), KILN_ERR_NOT_FOUND);
    kiln_model_destroy(m);
}

static void test_shape_subgraph_folds(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    assert_kiln_ok(load("shape_subgraph.onnx", &m));
    kiln_tensor_desc in, out;
    assert_kiln_ok(kiln_model_input(m, 0, &in));
    int64_t dims[3] = {5, in.dims[1], in.dims[2]};
    assert_kiln_ok(kiln_model_set_input_shape(m, in.name, 3, dims));
    assert_kiln_ok(kiln_model_output(m, 0, &out));
    /* Shape -> Gather -> Unsqueeze -> Concat -> Reshape folded to [5, rest] */
    assert_int_equal(out.rank, 2);
    assert_int_equal(out.dims[0], 5);
    assert_int_equal(out.dims[1], in.dims[1] * in.dims[2]);
    kiln_model_destroy(m);
}

static void *other_thread(void *arg)
{
    (void)arg;
    kiln_model *m = NULL;
    kiln_model_load("/nonexistent/other.onnx", &m);
    return NULL;
}

static void test_error_is_per_thread(void **state)
{
    (void)state;
    kiln_model *m = NULL;
    kiln_model_load("/nonexistent/mine.onnx", &m);
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    assert_non_null(strstr(kiln_last_error(), "mine.onnx"));
}

static int log_calls;
static void count_log(kiln_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)msg;
    (*(int *)user)++;
}

static void test_log_callback_and_level(void **state)
{
    (void)state;
    kiln_set_log_callback(count_log, &log_calls);
    kiln_set_log_level(KILN_LOG_INFO);
    kiln_log(KILN_LOG_INFO, "shown");
    kiln_log(KILN_LOG_DEBUG, "dropped");
    assert_int_equal(log_calls, 1);
    kiln_set_log_callback(NULL, NULL);
    kiln_set_log_level(KILN_LOG_WARN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_and_directory),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_truncated_at_every_tenth),
        cmocka_unit_test(test_opset_refused),
        cmocka_unit_test(test_unknown_op_listed_and_refused),
        cmocka_unit_test(test_custom_domain_listed),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_contradiction_and_cycle),
        cmocka_unit_test(test_symbolic_dims_and_set_shape),
        cmocka_unit_test(test_shape_subgraph_folds),
        cmocka_unit_test(test_error_is_per_thread),
        cmocka_unit_test(test_log_callback_and_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
