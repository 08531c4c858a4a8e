/* LRN, InstanceNormalization, GroupNormalization (versions 18 and 21) and
 * CumSum: shape rules and ref kernels on small inputs. Expected values are
 * worked out by hand (CumSum) or with plain Python loops over the ONNX
 * formulas in double, rounded to float32 (the normalizations), as the
 * comment beside each says. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ir/ops.h"
#include "opharness.h"

static void assert_close_f32(const float *got, const float *want, int n, double rel, double abs_tol)
{
    for (int i = 0; i < n; i++) {
        double tol = rel * fabs((double)want[i]) + abs_tol;
        if (!(fabs((double)got[i] - want[i]) <= tol)) fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
    }
}

static void *out_data(kt_op *t, const char *name)
{
    kiln_value *y = kt_op_value(t, name);
    assert_non_null(y);
    assert_non_null(y->data);
    return y->data;
}

/* ---------------------------------------------------------------- LRN */

/* X [1,5,1,2]: channel c holds X[c*2], X[c*2+1] */
static const float LRN_X[] = {1.0f, -2.0f, 3.0f, 0.5f, -1.5f, 2.5f, 4.0f, -3.0f, 0.25f, 1.0f};

static void run_lrn(int64_t size, const float *alpha, const float *beta, const float *bias, const float *want)
{
    const int64_t d[] = {1, 5, 1, 2};
    kt_op *t = kt_op_new("LRN", 13);
    kt_op_input(t, "X", KILN_F32, 4, d, LRN_X);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "size", size);
    if (alpha) kt_op_attr_float(t, "alpha", *alpha);
    if (beta) kt_op_attr_float(t, "beta", *beta);
    if (bias) kt_op_attr_float(t, "bias", *bias);
    assert_kiln_ok(kt_op_run(t));
    assert_close_f32(out_data(t, "Y"), want, 10, 1e-6, 0);
    kt_op_free(t);
}

static void test_lrn(void **state)
{
    (void)state;
    const float a3 = 0.3f, b75 = 0.75f, b5 = 0.5f, bias2 = 2, bias1 = 1;
    /* Python, the ONNX formula: the window is floor((size-1)/2) channels
     * before and ceil((size-1)/2) after, cut at the ends */
    const float size3[] = {0.438691348f, -1.02919149f, 1.24659097f, 0.216643229f, -0.46804747f,
                           0.966648877f, 1.46067846f,  -1.14193201f, 0.0955318362f, 0.438691348f};
    const float size2[] = {0.390794963f, -0.966352642f, 1.1273849f,  0.220726654f, -0.467120945f,
                           0.839048207f, 1.31455028f,   -1.17238486f, 0.148130417f, 0.563211024f};
    const float size4[] = {0.721922874f, -1.49591517f, 1.69875586f, 0.318626493f, -0.859117568f,
                           1.67131567f,  2.59639692f,  -2.01403522f, 0.168370694f, 0.755928934f};
    const float dflt[] = {0.999750078f, -1.99978757f, 2.99908161f, 0.49986878f,  -1.49897897f,
                          2.49903178f,  3.99816966f,  -2.99878192f, 0.249899656f, 0.999750078f};
    run_lrn(3, &a3, &b75, &bias2, size3);
    run_lrn(2, &a3, &b75, &bias2, size2); /* 0 before, 1 after */
    run_lrn(4, &a3, &b5, &bias1, size4);  /* 1 before, 2 after */
    run_lrn(3, NULL, NULL, NULL, dflt);   /* alpha 1e-4, beta 0.75, bias 1 */

    /* size is required and positive */
    const int64_t d[] = {1, 5, 1, 2};
    kt_op *t = kt_op_new("LRN", 13);
    kt_op_input(t, "X", KILN_F32, 4, d, NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED); /* refused by the parser */
    assert_non_null(strstr(t->g->nodes[0].unsupported, "'size'"));
    kt_op_free(t);
    t = kt_op_new("LRN", 13);
    kt_op_input(t, "X", KILN_F32, 4, d, NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "size", 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);

    /* LRN-1 (opset 7..12) is native */
    t = kt_op_new("LRN", 7);
    kt_op_input(t, "X", KILN_F32, 4, d, LRN_X);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "size", 3);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(t->g->nodes[0].version, 1);
    assert_close_f32(out_data(t, "Y"), dflt, 10, 1e-6, 0);
    kt_op_free(t);
}

/* ---------------------------------------------------------------- Instance / GroupNormalization */

static void test_instance_norm(void **state)
{
    (void)state;
    const int64_t d[] = {2, 2, 3}, dc[] = {2};
    const float x[] = {1, 2, 6, -1, 0, 4, 3, 3, 3, 10, 20, 60};
    const float sc[] = {2, -1}, b[] = {0.5f, 1};
    kt_op *t = kt_op_new("InstanceNormalization", 22);
    kt_op_input(t, "X", KILN_F32, 3, d, x);
    kt_op_input(t, "scale", KILN_F32, 1, dc, sc);
    kt_op_input(t, "B", KILN_F32, 1, dc, b);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    /* Python: per (n, c) over the 3 elements, population variance, eps 1e-5;
     * a constant row [3,3,3] is B[c] */
    const float want[] = {-1.3516382f, -0.425819099f, 3.27745724f, 1.92581916f, 1.46290958f, -0.388728648f,
                          0.5f,        0.5f,          0.5f,        1.92582011f, 1.46291006f, -0.388730139f};
    assert_close_f32(out_data(t, "Y"), want, 12, 1e-5, 1e-6);
    kt_op_free(t);

    /* scale of the wrong length; opset 7 resolves to version 6, native */
    const int64_t d3[] = {3};
    t = kt_op_new("InstanceNormalization", 7);
    kt_op_input(t, "X", KILN_F32, 3, d, NULL);
    kt_op_input(t, "scale", KILN_F32, 1, d3, NULL);
    kt_op_input(t, "B", KILN_F32, 1, dc, NULL);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "'scale'"));
    kt_op_free(t);

    /* f16 in, f16 out: [1, 3] per channel normalizes to -1, 1 (x scale 1, B 0):
     * mean 2, var 1, (x - 2) / sqrt(1 + 1e-5) = -+0.999995, rounded to f16 -+1 */
    const int64_t dh[] = {1, 1, 2}, d1[] = {1};
    const uint16_t hx[] = {0x3C00, 0x4200}, hs[] = {0x3C00}, hb[] = {0x0000};
    t = kt_op_new("InstanceNormalization", 22);
    kt_op_input(t, "X", KILN_F16, 3, dh, hx);
    kt_op_input(t, "scale", KILN_F16, 1, d1, hs);
    kt_op_input(t, "B", KILN_F16, 1, d1, hb);
    kt_op_output(t, "Y");
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *hy = out_data(t, "Y");
    assert_int_equal(hy[0], 0xBC00);
    assert_int_equal(hy[1], 0x3C00);
    kt_op_free(t);
}

static kt_op *group_norm(int opset, const float *scale, const float *bias, int64_t np, int64_t groups)
{
    /* X [1,4,2]: group 0 is channels 0-1 {1,2,3,5}, group 1 channels 2-3 {-1,1,0,8} */
    static const float x[] = {1, 2, 3, 5, -1, 1, 0, 8};
    const int64_t d[] = {1, 4, 2}, dp[] = {np};
    kt_op *t = kt_op_new("GroupNormalization", opset);
    kt_op_input(t, "X", KILN_F32, 3, d, x);
    kt_op_input(t, "scale", KILN_F32, 1, dp, scale);
    kt_op_input(t, "bias", KILN_F32, 1, dp, bias);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "num_groups", groups);
    return t;
}

static void test_group_norm(void **state)
{
    (void)state;
    /* Python: per group over its channels and spatial elements, eps 1e-5 */
    const float s21[] = {1, 2, 3, 4}, b21[] = {0, 0.5f, -1, 10};
    kt_op *t = group_norm(21, s21, b21, 4, 2);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(t->g->nodes[0].version, 21);
    const float want21[] = {-1.18321323f, -0.507091403f, 0.838060915f, 3.54254842f,
                            -3.54558349f, -1.84852779f,  7.73725939f,  16.7882233f};
    assert_close_f32(out_data(t, "Y"), want21, 8, 1e-5, 1e-6);
    kt_op_free(t);

    /* version 18 (opsets 18-20): scale and bias per group */
    const float s18[] = {2, -1}, b18[] = {1, 0.5f};
    t = group_norm(18, s18, b18, 2, 2);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(t->g->nodes[0].version, 18);
    const float want18[] = {-1.36642647f, -0.0141827874f, 1.33806098f, 4.04254818f,
                            1.34852779f,  0.782842577f,   1.06568515f, -1.19705558f};
    assert_close_f32(out_data(t, "Y"), want18, 8, 1e-5, 1e-6);
    kt_op_free(t);

    /* epsilon 0.5 */
    const float ones[] = {1, 1, 1, 1}, zeros[] = {0, 0, 0, 0};
    t = group_norm(21, ones, zeros, 4, 2);
    kt_op_attr_float(t, "epsilon", 0.5f);
    assert_kiln_ok(kt_op_run(t));
    const float eps5[] = {-1.06748998f, -0.457495719f, 0.152498573f, 1.37248719f,
                          -0.832050323f, -0.277350098f, -0.554700196f, 1.66410065f};
    assert_close_f32(out_data(t, "Y"), eps5, 8, 1e-5, 1e-6);
    kt_op_free(t);

    /* version 21 wants [C] parameters, 18 [num_groups]; 4 channels do not split into 3 groups */
    t = group_norm(21, s18, b18, 2, 2);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
    t = group_norm(18, s21, b21, 4, 2);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
    t = group_norm(21, s21, b21, 4, 3);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "3 groups"));
    kt_op_free(t);
}

static void test_norm_flops(void **state)
{
    (void)state;
    const int64_t d[] = {1, 4, 2}, dp[] = {4};
    kt_op *t = kt_op_new("GroupNormalization", 21);
    kt_op_input(t, "X", KILN_F32, 3, d, NULL);
    kt_op_input(t, "scale", KILN_F32, 1, dp, NULL);
    kt_op_input(t, "bias", KILN_F32, 1, dp, NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "num_groups", 2);
    assert_kiln_ok(kt_op_run(t));
    const kiln_node *n = &t->g->nodes[0];
    assert_true(n->op->flops(n, t->g->values) == 64); /* 8 per element */
    kt_op_free(t);

    t = kt_op_new("LRN", 13);
    kt_op_input(t, "X", KILN_F32, 3, d, NULL);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "size", 5);
    assert_kiln_ok(kt_op_run(t));
    n = &t->g->nodes[0];
    assert_true(n->op->flops(n, t->g->values) == 8 * 13); /* 2 * size + 3 per element */
    kt_op_free(t);
}

/* ---------------------------------------------------------------- CumSum */

static kt_op *cumsum(kiln_dtype dt, int rank, const int64_t *d, const void *x, int64_t axis, int excl, int rev)
{
    const int32_t ax = (int32_t)axis;
    kt_op *t = kt_op_new("CumSum", 14);
    kt_op_input(t, "X", dt, rank, d, x);
    kt_op_input(t, "axis", KILN_I32, 0, NULL, &ax);
    kt_op_output(t, "Y");
    if (excl >= 0) kt_op_attr_int(t, "exclusive", excl);
    if (rev >= 0) kt_op_attr_int(t, "reverse", rev);
    return t;
}

static void test_cumsum(void **state)
{
    (void)state;
    const int64_t d[] = {2, 3};
    const float x[] = {1, 2, 3, 4, 5, 6};
    struct {
        int64_t axis;
        int excl, rev;
        float want[6];
    } cases[] = {
        /* by hand */
        {1, -1, -1, {1, 3, 6, 4, 9, 15}},
        {1, 1, 0, {0, 1, 3, 0, 4, 9}},
        {1, 0, 1, {6, 5, 3, 15, 11, 6}},
        {1, 1, 1, {5, 3, 0, 11, 6, 0}},
        {0, 0, 0, {1, 2, 3, 5, 7, 9}},
        {-2, 1, 0, {0, 0, 0, 1, 2, 3}},
        {-1, 0, 0, {1, 3, 6, 4, 9, 15}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        kt_op *t = cumsum(KILN_F32, 2, d, x, cases[k].axis, cases[k].excl, cases[k].rev);
        assert_kiln_ok(kt_op_run(t));
        const float *y = out_data(t, "Y");
        if (memcmp(y, cases[k].want, sizeof cases[k].want))
            fail_msg("case %zu (axis %lld): got %g %g %g %g %g %g", k, (long long)cases[k].axis, y[0], y[1], y[2],
                     y[3], y[4], y[5]);
        kt_op_free(t);
    }

    /* i32 wraps around like the dtype: INT32_MAX + 1 */
    const int64_t d3[] = {3};
    const int32_t ix[] = {INT32_MAX, 1, 5};
    kt_op *t = cumsum(KILN_I32, 1, d3, ix, 0, 0, 0);
    assert_kiln_ok(kt_op_run(t));
    const int32_t iy[] = {INT32_MAX, INT32_MIN, INT32_MIN + 5};
    assert_memory_equal(out_data(t, "Y"), iy, sizeof iy);
    kt_op_free(t);

    /* i64 exact beyond 2^53 */
    const int64_t lx[] = {(int64_t)1 << 60, 1, 1};
    t = cumsum(KILN_I64, 1, d3, lx, 0, 0, 1);
    assert_kiln_ok(kt_op_run(t));
    const int64_t ly[] = {((int64_t)1 << 60) + 2, 2, 1};
    assert_memory_equal(out_data(t, "Y"), ly, sizeof ly);
    kt_op_free(t);

    /* f16: 1, 1+2, 1+2+0.5 */
    const uint16_t hx[] = {0x3C00, 0x4000, 0x3800};
    t = cumsum(KILN_F16, 1, d3, hx, 0, -1, -1);
    assert_kiln_ok(kt_op_run(t));
    const uint16_t hy[] = {0x3C00, 0x4200, 0x4300};
    assert_memory_equal(out_data(t, "Y"), hy, sizeof hy);
    kt_op_free(t);

    /* an axis out of range, a non-scalar axis */
    t = cumsum(KILN_F32, 2, d, x, 2, 0, 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "axis 2 is out of range"));
    kt_op_free(t);
    const int64_t two[] = {2};
    const int64_t axes[] = {0, 1};
    t = kt_op_new("CumSum", 14);
    kt_op_input(t, "X", KILN_F32, 2, d, x);
    kt_op_input(t, "axis", KILN_I64, 1, two, axes);
    kt_op_output(t, "Y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lrn),
        cmocka_unit_test(test_instance_norm),
        cmocka_unit_test(test_group_norm),
        cmocka_unit_test(test_norm_flops),
        cmocka_unit_test(test_cumsum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
