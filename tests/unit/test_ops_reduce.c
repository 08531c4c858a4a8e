/* Reduce family: Softmax, LogSoftmax, LayerNormalization, ReduceMean/Sum/
 * Max/Min, ArgMax, TopK — shape rules (symbolic dims, run-time axes and K,
 * errors) and reference kernels.
 *
 * Expected values were computed with numpy 2.4 in float64 from the ONNX
 * formulas (the expression is given next to each literal), or worked out by
 * hand where the arithmetic is trivial. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ops.h"
#include "opharness.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define U KILN_DIM_UNKNOWN

static void assert_shape(kt_op *t, const char *name, int rank, const int64_t *want)
{
    kiln_value *v = kt_op_value(t, name);
    assert_non_null(v);
    assert_int_equal(v->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        if (v->shape.d[i] != want[i])
            fail_msg("%s dim %d: got %lld want %lld", name, i, (long long)v->shape.d[i], (long long)want[i]);
}

static const void *out_data(kt_op *t, const char *name, kiln_dtype dt)
{
    kiln_value *v = kt_op_value(t, name);
    assert_non_null(v);
    assert_int_equal(v->dtype, dt);
    assert_non_null(v->data);
    return v->data;
}

static void assert_close(const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= tol * (1.0 + fabs(want[i])))) fail_msg("element %d: got %.9g want %.9g", i, got[i], want[i]);
    }
}

static void assert_i64(const int64_t *got, const int64_t *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("element %d: got %lld want %lld", i, (long long)got[i], (long long)want[i]);
}

/* x = arange(24).reshape(2,3,4) * 0.5 - 3 */
static float x234[24];
static void fill_x234(void)
{
    for (int i = 0; i < 24; i++) x234[i] = (float)i * 0.5f - 3.0f;
}

static const char *const NCHW[] = {"batch", NULL, NULL, NULL};

/* ---------------------------------------------------------------- shapes */

static void test_reduce_mean_keeps_symbolic_batch(void **state)
{
    (void)state;
    for (int keep = 0; keep <= 1; keep++) {
        kt_op *t = kt_op_new("ReduceMean", 13);
        kt_op_input_sym(t, "X", KILN_F32, 4, D(-1, 64, 7, 7), NCHW);
        kt_op_output(t, "Y");
        kt_op_attr_ints(t, "axes", 1, D(1));
        kt_op_attr_int(t, "keepdims", keep);
        assert_kiln_ok(kt_op_run(t));
        int64_t batch = kt_op_value(t, "X")->shape.d[0];
        assert_true(batch < 0 && batch != U);
        if (keep)
            assert_shape(t, "Y", 4, D(batch, 1, 7, 7));
        else
            assert_shape(t, "Y", 3, D(batch, 7, 7));
        assert_int_equal(kt_op_value(t, "Y")->dtype, KILN_F32);
        kt_op_free(t);
    }
}

static void test_reduce_axes_input_unknown_at_build(void **state)
{
    (void)state;
    /* ReduceSum-13: axes computed at run time, 2 of them */
    kt_op *t = kt_op_new("ReduceSum", 13);
    kt_op_input_sym(t, "X", KILN_F32, 4, D(-1, 64, 7, 7), NCHW);
    kt_op_input(t, "axes", KILN_I64, 1, D(2), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(U, U));
    kt_op_free(t);

    t = kt_op_new("ReduceMax", 18);
    kt_op_input_sym(t, "X", KILN_F32, 4, D(-1, 64, 7, 7), NCHW);
    kt_op_input(t, "axes", KILN_I64, 1, D(-1), NULL);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 4, D(U, U, U, U)); /* keepdims: the rank stays */
    kt_op_free(t);
}

static void test_reduce_empty_axes(void **state)
{
    (void)state;
    /* no axes: reduce all */
    kt_op *t = kt_op_new("ReduceSum", 13);
    kt_op_input_sym(t, "X", KILN_F32, 3, D(-1, 3, 4), NCHW);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 3, D(1, 1, 1));
    kt_op_free(t);

    /* an empty axes tensor with noop_with_empty_axes: Identity, symbol kept */
    t = kt_op_new("ReduceMean", 18);
    kt_op_input_sym(t, "X", KILN_F32, 3, D(-1, 3, 4), NCHW);
    kt_op_input(t, "axes", KILN_I64, 1, D(0), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "noop_with_empty_axes", 1);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 3, kt_op_value(t, "X")->shape.d);
    kt_op_free(t);

    /* keepdims=0, all reduced: a scalar */
    t = kt_op_new("ReduceMin", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 0, NULL);
    kt_op_free(t);
}

static void test_reduce_shape_errors(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("ReduceMean", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "axes", 1, D(2));
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "axis 2 is out of range for rank 2"));
    kt_op_free(t);

    t = kt_op_new("ReduceMax", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "axes", 2, D(1, -1));
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "twice"));
    kt_op_free(t);

    /* bool is a ReduceMax type only since opset 20, never a ReduceSum one */
    t = kt_op_new("ReduceSum", 13);
    kt_op_input(t, "X", KILN_BOOL, 1, D(3), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
}

static void test_softmax_shape(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("Softmax", 13);
    kt_op_input_sym(t, "X", KILN_F16, 3, D(-1, 12, 64), NCHW);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 3, kt_op_value(t, "X")->shape.d);
    assert_int_equal(kt_op_value(t, "Y")->dtype, KILN_F16);
    kt_op_free(t);

    t = kt_op_new("LogSoftmax", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 3), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "axis", 2);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    t = kt_op_new("Softmax", 13);
    kt_op_input(t, "X", KILN_I32, 2, D(2, 3), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
}

static void test_layernorm_shape(void **state)
{
    (void)state;
    static const char *const sym[] = {"batch", "seq", NULL};
    kt_op *t = kt_op_new("LayerNormalization", 17);
    kt_op_input_sym(t, "X", KILN_F16, 3, D(-1, -1, 768), sym);
    kt_op_input(t, "S", KILN_F16, 1, D(768), NULL);
    kt_op_input(t, "B", KILN_F16, 1, D(768), NULL);
    kt_op_output(t, "Y");
    kt_op_output(t, "Mean");
    kt_op_output(t, "Inv");
    assert_kiln_ok(kt_op_run(t));
    const int64_t *xd = kt_op_value(t, "X")->shape.d;
    assert_shape(t, "Y", 3, xd);
    assert_shape(t, "Mean", 3, D(xd[0], xd[1], 1));
    assert_shape(t, "Inv", 3, D(xd[0], xd[1], 1));
    assert_int_equal(kt_op_value(t, "Y")->dtype, KILN_F16);
    assert_int_equal(kt_op_value(t, "Mean")->dtype, KILN_F32); /* stash_type 1 */
    kt_op_free(t);

    /* Scale that cannot broadcast to X */
    t = kt_op_new("LayerNormalization", 17);
    kt_op_input_sym(t, "X", KILN_F32, 3, D(-1, -1, 768), sym);
    kt_op_input(t, "S", KILN_F32, 1, D(512), NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "'S'"));
    kt_op_free(t);
}

static void test_argmax_shape(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("ArgMax", 13);
    kt_op_input_sym(t, "X", KILN_F32, 3, D(-1, 10, 5), NCHW);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "axis", -2);
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(kt_op_value(t, "X")->shape.d[0], 5));
    assert_int_equal(kt_op_value(t, "Y")->dtype, KILN_I64);
    kt_op_free(t);
}

static void test_topk_shape(void **state)
{
    (void)state;
    /* K only known at run time: that axis is unknown, batch stays */
    kt_op *t = kt_op_new("TopK", 13);
    kt_op_input_sym(t, "X", KILN_F32, 2, D(-1, 100), NCHW);
    kt_op_input(t, "K", KILN_I64, 1, D(1), NULL);
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    assert_kiln_ok(kt_op_run(t));
    int64_t batch = kt_op_value(t, "X")->shape.d[0];
    assert_shape(t, "V", 2, D(batch, U));
    assert_shape(t, "I", 2, D(batch, U));
    assert_int_equal(kt_op_value(t, "I")->dtype, KILN_I64);
    kt_op_free(t);

    t = kt_op_new("TopK", 13);
    kt_op_input_sym(t, "X", KILN_F32, 2, D(-1, 100), NCHW);
    kt_op_input(t, "K", KILN_I64, 1, D(1), (const int64_t[]){5});
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    kt_op_attr_int(t, "axis", 1);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "V", 2, D(kt_op_value(t, "X")->shape.d[0], 5));
    kt_op_free(t);

    t = kt_op_new("TopK", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(4, 3), NULL);
    kt_op_input(t, "K", KILN_I64, 1, D(1), (const int64_t[]){4});
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "K = 4 is larger than dim 1 (3)"));
    kt_op_free(t);
}

/* ---------------------------------------------------------------- kernels */

static void test_reduce_sum_two_axes(void **state)
{
    (void)state;
    fill_x234();
    kt_op *t = kt_op_new("ReduceSum", 13);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), x234);
    kt_op_input(t, "axes", KILN_I64, 1, D(2), (const int64_t[]){0, -1});
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 3, D(1, 3, 1));
    /* x.sum(axis=(0,2), keepdims=True) */
    assert_close(out_data(t, "Y", KILN_F32), (const double[]){6, 22, 38}, 3, 0);
    kt_op_free(t);
}

static void test_reduce_mean_v18_axes_input(void **state)
{
    (void)state;
    fill_x234();
    kt_op *t = kt_op_new("ReduceMean", 18);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), x234);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), (const int64_t[]){-1});
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(2, 3));
    /* x.mean(axis=-1) */
    assert_close(out_data(t, "Y", KILN_F32), (const double[]){-2.25, -0.25, 1.75, 3.75, 5.75, 7.75}, 6, 1e-7);
    kt_op_free(t);
}

static void test_reduce_max_middle_axis_v13(void **state)
{
    (void)state;
    fill_x234();
    kt_op *t = kt_op_new("ReduceMax", 13);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), x234);
    kt_op_output(t, "Y");
    kt_op_attr_ints(t, "axes", 1, D(1));
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    /* x.max(axis=1): the last row of each 3x4 block */
    assert_close(out_data(t, "Y", KILN_F32), (const double[]){1, 1.5, 2, 2.5, 7, 7.5, 8, 8.5}, 8, 0);
    kt_op_free(t);
}

static void test_reduce_min_i64_exact(void **state)
{
    (void)state;
    /* 2^53 + 1 is not a double: an f64 accumulator would lose it */
    const int64_t x[4] = {9007199254740993LL, 9007199254740995LL, -5, 9007199254740994LL};
    kt_op *t = kt_op_new("ReduceMin", 18);
    kt_op_input(t, "X", KILN_I64, 2, D(2, 2), x);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), (const int64_t[]){0});
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_i64(out_data(t, "Y", KILN_I64), (const int64_t[]){-5, 9007199254740994LL}, 2);
    kt_op_free(t);

    t = kt_op_new("ReduceMax", 18);
    kt_op_input(t, "X", KILN_I64, 2, D(2, 2), x);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_i64(out_data(t, "Y", KILN_I64), (const int64_t[]){9007199254740995LL}, 1);
    kt_op_free(t);
}

static void test_reduce_over_empty_set(void **state)
{
    (void)state;
    const float none[1] = {0};
    /* ReduceMax of nothing is -inf (ONNX ReduceMax-18), ReduceSum 0 */
    kt_op *t = kt_op_new("ReduceMax", 18);
    kt_op_input(t, "X", KILN_F32, 2, D(2, 0), none);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), (const int64_t[]){1});
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const float *y = out_data(t, "Y", KILN_F32);
    assert_true(isinf(y[0]) && y[0] < 0 && isinf(y[1]) && y[1] < 0);
    kt_op_free(t);

    t = kt_op_new("ReduceMin", 18);
    kt_op_input(t, "X", KILN_I32, 2, D(2, 0), none);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), (const int64_t[]){1});
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const int32_t *yi = out_data(t, "Y", KILN_I32);
    assert_int_equal(yi[0], INT32_MAX);
    kt_op_free(t);

    t = kt_op_new("ReduceSum", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(0, 3), none);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), (const int64_t[]){0});
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_data(t, "Y", KILN_F32), (const double[]){0, 0, 0}, 3, 0);
    kt_op_free(t);
}

static void test_reduce_sum_noop_and_int(void **state)
{
    (void)state;
    const int32_t x[6] = {1, -2, 3, 40, 50, -60};
    kt_op *t = kt_op_new("ReduceSum", 13);
    kt_op_input(t, "X", KILN_I32, 2, D(2, 3), x);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "noop_with_empty_axes", 1);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Y", 2, D(2, 3));
    assert_memory_equal(out_data(t, "Y", KILN_I32), x, sizeof x);
    kt_op_free(t);

    t = kt_op_new("ReduceSum", 13);
    kt_op_input(t, "X", KILN_I32, 2, D(2, 3), x);
    kt_op_input(t, "axes", KILN_I64, 1, D(1), (const int64_t[]){1});
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const int32_t *y = out_data(t, "Y", KILN_I32);
    assert_int_equal(y[0], 2);
    assert_int_equal(y[1], 30);
    kt_op_free(t);
}

static void test_reduce_mean_f16_and_nan(void **state)
{
    (void)state;
    /* f16 in, f16 out: mean(1, 2, 3, 4.5) = 2.625, exact in f16 */
    uint16_t h[4];
    const float hv[4] = {1, 2, 3, 4.5f};
    for (int i = 0; i < 4; i++) h[i] = kiln_f32_to_f16(hv[i]);
    kt_op *t = kt_op_new("ReduceMean", 13);
    kt_op_input(t, "X", KILN_F16, 1, D(4), h);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_true(kiln_f16_to_f32(((const uint16_t *)out_data(t, "Y", KILN_F16))[0]) == 2.625f);
    kt_op_free(t);

    /* NaN propagates through ReduceMax (numpy maximum.reduce) */
    const float x[3] = {1, NAN, 2};
    t = kt_op_new("ReduceMax", 13);
    kt_op_input(t, "X", KILN_F32, 1, D(3), x);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    assert_true(isnan(((const float *)out_data(t, "Y", KILN_F32))[0]));
    kt_op_free(t);
}

static void test_softmax_middle_axis(void **state)
{
    (void)state;
    const float x[12] = {0.1f, -0.4f, 1.2f, 0.3f, 2.0f, -1.5f, 0.7f, 0.7f, -2.2f, 1.1f, 0.05f, 0.9f};
    kt_op *t = kt_op_new("Softmax", 13);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 2), x);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "axis", 1);
    assert_kiln_ok(kt_op_run(t));
    /* e = exp(a - a.max(axis=1, keepdims=True)); e / e.sum(axis=1, keepdims=True) */
    const double want[12] = {0.0935448404, 0.298808609, 0.281024231, 0.601726645, 0.625430928, 0.0994647455,
                             0.634087666,  0.269307499, 0.0348895452, 0.401759579, 0.331022788, 0.328932922};
    assert_close(out_data(t, "Y", KILN_F32), want, 12, 2e-7);
    kt_op_free(t);
}

static void test_logsoftmax_large_values(void **state)
{
    (void)state;
    /* exp(1000) overflows: only the max-subtracted form gets this right */
    const float x[3] = {1000, 1001, 1002};
    kt_op *t = kt_op_new("LogSoftmax", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(1, 3), x);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    /* b - b.max() - log(exp(b - b.max()).sum()) */
    assert_close(out_data(t, "Y", KILN_F32), (const double[]){-2.4076059644, -1.4076059644, -0.4076059644}, 3, 1e-7);
    kt_op_free(t);

    /* bf16 softmax of equal values: 1/4 each, exact in bf16 */
    uint16_t b[4];
    for (int i = 0; i < 4; i++) b[i] = kiln_f32_to_bf16(3.0f);
    t = kt_op_new("Softmax", 13);
    kt_op_input(t, "X", KILN_BF16, 1, D(4), b);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *y = out_data(t, "Y", KILN_BF16);
    for (int i = 0; i < 4; i++) assert_true(kiln_bf16_to_f32(y[i]) == 0.25f);
    kt_op_free(t);
}

static void test_layernorm_axis1_broadcast_params(void **state)
{
    (void)state;
    const float x[12] = {1, 2, 3, 4, 5, 6, -1, 0.5f, 2, 7, -3, 0};
    const float s[6] = {1, 0.5f, 2, -1, 1.5f, 0.25f};
    const float b[3] = {0.1f, -0.2f, 0.3f};
    kt_op *t = kt_op_new("LayerNormalization", 17);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 2, 3), x);
    kt_op_input(t, "S", KILN_F32, 2, D(2, 3), s);
    kt_op_input(t, "B", KILN_F32, 1, D(3), b); /* broadcasts over axis 1 too */
    kt_op_output(t, "Y");
    kt_op_output(t, "Mean");
    kt_op_output(t, "Inv");
    kt_op_attr_int(t, "axis", 1);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "Mean", 3, D(2, 1, 1));
    /* m = X.mean(axis=(1,2), keepdims=True); v = ((X-m)**2).mean(axis=(1,2), keepdims=True)
     * inv = 1/sqrt(v + 1e-5); Y = (X-m)*inv*S + B */
    const double want[12] = {-1.3638476,   -0.63915428,  -0.28553904, -0.19276952, 1.11746284,  0.6659619,
                             -0.515360208, -0.266886979, 0.995624583, -1.85309979, -2.08621281, 0.226424323};
    assert_close(out_data(t, "Y", KILN_F32), want, 12, 1e-6);
    assert_close(out_data(t, "Mean", KILN_F32), (const double[]){3.5, 0.9166666667}, 2, 1e-7);
    assert_close(out_data(t, "Inv", KILN_F32), (const double[]){0.58553904, 0.3210575}, 2, 1e-7);
    kt_op_free(t);
}

static void test_argmax_ties_and_last_index(void **state)
{
    (void)state;
    /* rows: [1 3 3 2] [5 5 0 5] */
    const float x[8] = {1, 3, 3, 2, 5, 5, 0, 5};
    for (int last = 0; last <= 1; last++) {
        kt_op *t = kt_op_new("ArgMax", 13);
        kt_op_input(t, "X", KILN_F32, 2, D(2, 4), x);
        kt_op_output(t, "Y");
        kt_op_attr_int(t, "axis", 1);
        kt_op_attr_int(t, "select_last_index", last);
        assert_kiln_ok(kt_op_run(t));
        assert_shape(t, "Y", 2, D(2, 1));
        assert_i64(out_data(t, "Y", KILN_I64), last ? (const int64_t[]){2, 3} : (const int64_t[]){1, 0}, 2);
        kt_op_free(t);
    }
    /* axis 0 on int32, columns compared: [1 5] [3 5] [3 0] [2 5] */
    const int32_t xi[8] = {1, 3, 3, 2, 5, 5, 0, 5};
    kt_op *t = kt_op_new("ArgMax", 13);
    kt_op_input(t, "X", KILN_I32, 2, D(2, 4), xi);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_i64(out_data(t, "Y", KILN_I64), (const int64_t[]){1, 1, 0, 1}, 4);
    kt_op_free(t);
}

static void test_topk_ties_lower_index_first(void **state)
{
    (void)state;
    const float x[5] = {1, 3, 3, 2, 3};
    kt_op *t = kt_op_new("TopK", 11);
    kt_op_input(t, "X", KILN_F32, 1, D(5), x);
    kt_op_input(t, "K", KILN_I64, 1, D(1), (const int64_t[]){2});
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_data(t, "V", KILN_F32), (const double[]){3, 3}, 2, 0);
    assert_i64(out_data(t, "I", KILN_I64), (const int64_t[]){1, 2}, 2);
    kt_op_free(t);

    t = kt_op_new("TopK", 11);
    kt_op_input(t, "X", KILN_F32, 1, D(5), x);
    kt_op_input(t, "K", KILN_I64, 1, D(1), (const int64_t[]){4});
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    kt_op_attr_int(t, "largest", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_close(out_data(t, "V", KILN_F32), (const double[]){1, 2, 3, 3}, 4, 0);
    assert_i64(out_data(t, "I", KILN_I64), (const int64_t[]){0, 3, 1, 2}, 4);
    kt_op_free(t);
}

static void test_topk_axis0_int64(void **state)
{
    (void)state;
    /* 3x2, columns [7 2^53+1 -4] and [0 0 9]: top 2 along axis 0 */
    const int64_t x[6] = {7, 0, 9007199254740993LL, 0, -4, 9};
    kt_op *t = kt_op_new("TopK", 24);
    kt_op_input(t, "X", KILN_I64, 2, D(3, 2), x);
    kt_op_input(t, "K", KILN_I64, 1, D(1), (const int64_t[]){2});
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    kt_op_attr_int(t, "axis", 0);
    assert_kiln_ok(kt_op_run(t));
    assert_shape(t, "V", 2, D(2, 2));
    assert_i64(out_data(t, "V", KILN_I64), (const int64_t[]){9007199254740993LL, 9, 7, 0}, 4);
    assert_i64(out_data(t, "I", KILN_I64), (const int64_t[]){1, 2, 0, 0}, 4);
    kt_op_free(t);
}

static void test_flops(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("Softmax", 13);
    kt_op_input(t, "X", KILN_F32, 2, D(4, 10), NULL);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const kiln_node *n = &t->g->nodes[0];
    assert_true(n->op->flops(n, t->g->values) == 200.0);
    kt_op_free(t);
}

/* ---- attribute parsers (src/ir/params_reduce.c): the attributes become
 * n->params once, when the node resolves */

static const kiln_node *node0(kt_op *t) { return &t->g->nodes[0]; }

static kt_op *one_input(const char *op, int opset)
{
    kt_op *t = kt_op_new(op, opset);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), NULL);
    kt_op_output(t, "Y");
    return t;
}

/* The node is unsupported and its reason names the attribute and value. */
static void assert_refused(kt_op *t, const char *attr, const char *value)
{
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    const char *why = node0(t)->unsupported;
    assert_non_null(why);
    if (!strstr(why, attr) || !strstr(why, value)) fail_msg("'%s' does not name '%s' = '%s'", why, attr, value);
}

static void test_params_reduce(void **state)
{
    (void)state;
    /* ReduceMean-13: axes from the attribute */
    kt_op *t = one_input("ReduceMean", 13);
    kt_op_attr_ints(t, "axes", 2, D(-1, 0));
    kt_op_attr_int(t, "keepdims", 0);
    assert_kiln_ok(kt_op_run(t));
    const kiln_reduce_params *r = &node0(t)->params.reduce;
    assert_false(r->keepdims);
    assert_false(r->noop_with_empty_axes);
    assert_false(r->axes_from_input);
    assert_int_equal(r->n_axes, 2);
    assert_int_equal(r->axes[0], -1);
    assert_int_equal(r->axes[1], 0);
    assert_shape(t, "Y", 1, D(3));
    kt_op_free(t);

    /* defaults; ReduceSum-13 and Reduce*-18 take axes as an input */
    static const struct {
        const char *op;
        int opset;
        bool from_input;
    } cases[] = {{"ReduceMax", 13, false}, {"ReduceSum", 13, true}, {"ReduceMin", 18, true}, {"ReduceMean", 18, true}};
    for (int i = 0; i < 4; i++) {
        t = one_input(cases[i].op, cases[i].opset);
        kt_op_attr_int(t, "noop_with_empty_axes", 1);
        assert_kiln_ok(kt_op_run(t));
        r = &node0(t)->params.reduce;
        assert_true(r->keepdims);
        assert_true(r->noop_with_empty_axes);
        assert_int_equal(r->axes_from_input, cases[i].from_input);
        assert_int_equal(r->n_axes, 0);
        kt_op_free(t);
    }

    /* a keepdims that is not an int is a malformed model */
    t = one_input("ReduceMean", 13);
    kt_op_attr_string(t, "keepdims", "yes");
    kiln_params p;
    assert_int_equal(kiln_params_ReduceMean(t->node, &p), KILN_ERR_FORMAT);
    assert_refused(t, "keepdims", "a string");
    kt_op_free(t);
}

static void test_params_argmax_topk(void **state)
{
    (void)state;
    kt_op *t = one_input("ArgMax", 13);
    kt_op_attr_int(t, "axis", -1);
    kt_op_attr_int(t, "keepdims", 0);
    kt_op_attr_int(t, "select_last_index", 1);
    assert_kiln_ok(kt_op_run(t));
    const kiln_argmax_params *a = &node0(t)->params.argmax;
    assert_int_equal(a->axis, -1);
    assert_false(a->keepdims);
    assert_true(a->select_last_index);
    assert_shape(t, "Y", 2, D(2, 3));
    kt_op_free(t);
    t = one_input("ArgMax", 13);
    assert_kiln_ok(kt_op_run(t));
    a = &node0(t)->params.argmax;
    assert_int_equal(a->axis, 0);
    assert_true(a->keepdims);
    assert_false(a->select_last_index);
    kt_op_free(t);

    t = kt_op_new("TopK", 11);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), NULL);
    kt_op_input(t, "K", KILN_I64, 1, D(1), D(2));
    kt_op_output(t, "V");
    kt_op_output(t, "I");
    kt_op_attr_int(t, "axis", 1);
    kt_op_attr_int(t, "largest", 0);
    kt_op_attr_int(t, "sorted", 0);
    assert_kiln_ok(kt_op_run(t));
    const kiln_topk_params *k = &node0(t)->params.topk;
    assert_int_equal(k->axis, 1);
    assert_false(k->largest);
    assert_false(k->sorted);
    assert_shape(t, "V", 3, D(2, 2, 4));
    kt_op_free(t);
}

static void test_params_softmax_layernorm(void **state)
{
    (void)state;
    static const char *const ops[] = {"Softmax", "LogSoftmax"};
    for (int i = 0; i < 2; i++) {
        kt_op *t = one_input(ops[i], 13);
        assert_kiln_ok(kt_op_run(t));
        assert_int_equal(node0(t)->params.softmax.axis, -1);
        kt_op_free(t);
        t = one_input(ops[i], 13);
        kt_op_attr_int(t, "axis", 1);
        assert_kiln_ok(kt_op_run(t));
        assert_int_equal(node0(t)->params.softmax.axis, 1);
        kt_op_free(t);
    }

    kt_op *t = kt_op_new("LayerNormalization", 17);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), NULL);
    kt_op_input(t, "scale", KILN_F32, 1, D(4), NULL);
    kt_op_output(t, "Y");
    kt_op_output(t, "Mean");
    kt_op_attr_int(t, "axis", -2);
    kt_op_attr_float(t, "epsilon", 1e-3f);
    kt_op_attr_int(t, "stash_type", KILN_F64);
    assert_kiln_ok(kt_op_run(t));
    const kiln_layernorm_params *l = &node0(t)->params.layernorm;
    assert_int_equal(l->axis, -2);
    assert_true(l->epsilon == 1e-3f);
    assert_int_equal(l->stash_type, KILN_F64);
    assert_int_equal(kt_op_value(t, "Mean")->dtype, KILN_F64);
    assert_shape(t, "Mean", 3, D(2, 1, 1));
    kt_op_free(t);

    t = kt_op_new("LayerNormalization", 17);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), NULL);
    kt_op_input(t, "scale", KILN_F32, 1, D(4), NULL);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    l = &node0(t)->params.layernorm;
    assert_int_equal(l->axis, -1);
    assert_true(l->epsilon == 1e-5f);
    assert_int_equal(l->stash_type, KILN_F32);
    kt_op_free(t);

    /* stash_type 7 is int64: refused naming it */
    t = kt_op_new("LayerNormalization", 17);
    kt_op_input(t, "X", KILN_F32, 3, D(2, 3, 4), NULL);
    kt_op_input(t, "scale", KILN_F32, 1, D(4), NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "stash_type", 7);
    assert_refused(t, "stash_type", "7");
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_mean_keeps_symbolic_batch),
        cmocka_unit_test(test_reduce_axes_input_unknown_at_build),
        cmocka_unit_test(test_reduce_empty_axes),
        cmocka_unit_test(test_reduce_shape_errors),
        cmocka_unit_test(test_softmax_shape),
        cmocka_unit_test(test_layernorm_shape),
        cmocka_unit_test(test_argmax_shape),
        cmocka_unit_test(test_topk_shape),
        cmocka_unit_test(test_reduce_sum_two_axes),
        cmocka_unit_test(test_reduce_mean_v18_axes_input),
        cmocka_unit_test(test_reduce_max_middle_axis_v13),
        cmocka_unit_test(test_reduce_min_i64_exact),
        cmocka_unit_test(test_reduce_over_empty_set),
        cmocka_unit_test(test_reduce_sum_noop_and_int),
        cmocka_unit_test(test_reduce_mean_f16_and_nan),
        cmocka_unit_test(test_softmax_middle_axis),
        cmocka_unit_test(test_logsoftmax_large_values),
        cmocka_unit_test(test_layernorm_axis1_broadcast_params),
        cmocka_unit_test(test_argmax_ties_and_last_index),
        cmocka_unit_test(test_topk_ties_lower_index_first),
        cmocka_unit_test(test_topk_axis0_int64),
        cmocka_unit_test(test_flops),
        cmocka_unit_test(test_params_reduce),
        cmocka_unit_test(test_params_argmax_topk),
        cmocka_unit_test(test_params_softmax_layernorm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
