/* Variadic and added elementwise ops (issue #13, part 1): Sum, Mean, Max,
 * Min, Mod, and the activations Mish, Softplus, Softsign, Elu, Selu, Celu,
 * ThresholdedRelu: shape rules and ref kernels on small inputs. Expected
 * values are worked out by hand, or (the transcendental ones) with Python's
 * math module in double from the ONNX formulas, rounded to float32, as the
 * comment beside each says. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ir/ops.h"
#include "opharness.h"

static void assert_close_f32(const float *got, const float *want, int n, double rel)
{
    for (int i = 0; i < n; i++) {
        double tol = rel * fmax(fabs((double)want[i]), 1e-30);
        if (isnan(want[i])) {
            if (!isnan(got[i])) fail_msg("element %d: got %.9g, want NaN", i, got[i]);
        } else if (isinf(want[i])) {
            if (got[i] != want[i]) fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
        } else if (fabs((double)got[i] - want[i]) > tol) {
            fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
        }
    }
}

static void *out_data(kt_op *t, const char *name)
{
    kiln_value *y = kt_op_value(t, name);
    assert_non_null(y);
    assert_non_null(y->data);
    return y->data;
}

static kt_op *unary(const char *op, int opset, kiln_dtype dt, int rank, const int64_t *dims, const void *data)
{
    kt_op *t = kt_op_new(op, opset);
    kt_op_input(t, "X", dt, rank, dims, data);
    kt_op_output(t, "Y");
    return t;
}

/* ---------------------------------------------------------------- shapes */

static void test_shape_variadic(void **state)
{
    (void)state;
    /* [batch,1,4] + [3,1] + [4] -> [batch,3,4], the symbol kept */
    kt_op *t = kt_op_new("Sum", 13);
    const int64_t a[] = {-1, 1, 4}, b[] = {3, 1}, c[] = {4};
    const char *sym[] = {"batch", NULL, NULL};
    kt_op_input_sym(t, "a", KILN_F32, 3, a, sym);
    kt_op_input(t, "b", KILN_F32, 2, b, NULL);
    kt_op_input(t, "c", KILN_F32, 1, c, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    kiln_value *y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 3);
    assert_true(y->shape.d[0] == kt_op_value(t, "a")->shape.d[0] && y->shape.d[0] < 0);
    assert_int_equal(y->shape.d[1], 3);
    assert_int_equal(y->shape.d[2], 4);
    assert_int_equal(y->dtype, KILN_F32);
    kt_op_free(t);

    /* 3 against 4 does not broadcast, naming the input */
    const int64_t d3[] = {3}, d4[] = {4};
    t = kt_op_new("Max", 13);
    kt_op_input(t, "p", KILN_F32, 1, d3, NULL);
    kt_op_input(t, "q", KILN_F32, 1, d3, NULL);
    kt_op_input(t, "r", KILN_F32, 1, d4, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "'r' [4]"));
    kt_op_free(t);

    /* dtypes must agree */
    t = kt_op_new("Min", 13);
    kt_op_input(t, "p", KILN_I32, 1, d3, NULL);
    kt_op_input(t, "q", KILN_I64, 1, d3, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    /* Sum and Mean take floats only; Max and Min integers too */
    t = kt_op_new("Sum", 13);
    kt_op_input(t, "p", KILN_I32, 1, d3, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
    t = kt_op_new("Max", 13);
    kt_op_input(t, "p", KILN_U8, 1, d3, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_U8);
    kt_op_free(t);

    /* Mod of floats needs fmod=1 */
    t = kt_op_new("Mod", 13);
    kt_op_input(t, "a", KILN_F32, 1, d3, NULL);
    kt_op_input(t, "b", KILN_F32, 1, d3, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    assert_non_null(strstr(kiln_last_error(), "fmod=1"));
    kt_op_free(t);

    /* an old opset resolves to a native version: Sum-6 at opset 7, Max-8 at 11 */
    t = kt_op_new("Sum", 7);
    kt_op_input(t, "p", KILN_F32, 1, d3, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(t->g->nodes[0].version, 6);
    kt_op_free(t);
    t = kt_op_new("Max", 11);
    kt_op_input(t, "p", KILN_F32, 1, d3, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(t->g->nodes[0].version, 8);
    kt_op_free(t);
}

static void test_flops_variadic(void **state)
{
    (void)state;
    const int64_t d[] = {2, 3};
    const char *ops[] = {"Sum", "Mean", "Max"};
    const double want[] = {12, 18, 12}; /* 6 elements: 2 ops each for 3 inputs, Mean one more */
    for (int k = 0; k < 3; k++) {
        kt_op *t = kt_op_new(ops[k], 13);
        kt_op_input(t, "a", KILN_F32, 2, d, NULL);
        kt_op_input(t, "b", KILN_F32, 2, d, NULL);
        kt_op_input(t, "c", KILN_F32, 2, d, NULL);
        kt_op_output(t, "y");
        assert_kiln_ok(kt_op_run(t));
        const kiln_node *n = &t->g->nodes[0];
        assert_true(n->op->flops(n, t->g->values) == want[k]);
        kt_op_free(t);
    }
}

/* ---------------------------------------------------------------- Sum / Mean / Max / Min */

static kt_op *three(const char *op, kiln_dtype dt, const void *a, const void *b, const void *c)
{
    /* A [2,3], B [3], C [2,1] */
    const int64_t da[] = {2, 3}, db[] = {3}, dc[] = {2, 1};
    kt_op *t = kt_op_new(op, 13);
    kt_op_input(t, "A", dt, 2, da, a);
    kt_op_input(t, "B", dt, 1, db, b);
    kt_op_input(t, "C", dt, 2, dc, c);
    kt_op_output(t, "Y");
    return t;
}

static void test_sum_mean_broadcast(void **state)
{
    (void)state;
    const float a[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30}, c[] = {100, 200};
    kt_op *t = three("Sum", KILN_F32, a, b, c);
    assert_kiln_ok(kt_op_run(t));
    const float sum[] = {111, 122, 133, 214, 225, 236}; /* by hand */
    assert_memory_equal(out_data(t, "Y"), sum, sizeof sum);
    kt_op_free(t);

    t = three("Mean", KILN_F32, a, b, c);
    assert_kiln_ok(kt_op_run(t));
    const float mean[] = {37, 122.0f / 3, 133.0f / 3, 214.0f / 3, 75, 236.0f / 3};
    assert_close_f32(out_data(t, "Y"), mean, 6, 1e-7);
    kt_op_free(t);

    /* one input: a copy */
    const int64_t d[] = {3};
    const double x[] = {1.5, -2.25, 1e300};
    t = unary("Mean", 13, KILN_F64, 1, d, x);
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(out_data(t, "Y"), x, sizeof x);
    kt_op_free(t);
}

static void test_sum_halfs(void **state)
{
    (void)state;
    /* f16: 1 + 2 + 0.5 = 3.5; 2048 + 1 + 1 = 2050 (the sum is rounded once,
     * not after each addition, where 2048 + 1 would round back to 2048) */
    const int64_t d[] = {2};
    const uint16_t a[] = {0x3C00, 0x6800}, b[] = {0x4000, 0x3C00}, c[] = {0x3800, 0x3C00};
    kt_op *t = kt_op_new("Sum", 13);
    kt_op_input(t, "a", KILN_F16, 1, d, a);
    kt_op_input(t, "b", KILN_F16, 1, d, b);
    kt_op_input(t, "c", KILN_F16, 1, d, c);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *y = out_data(t, "y");
    assert_int_equal(y[0], 0x4300); /* 3.5 */
    assert_int_equal(y[1], 0x6801); /* 2050 */
    kt_op_free(t);

    /* bf16 Max: max(1, -2) = 1, max(-3, 0.5) = 0.5 */
    const uint16_t p[] = {0x3F80, 0xC040}, q[] = {0xC000, 0x3F00};
    t = kt_op_new("Max", 13);
    kt_op_input(t, "p", KILN_BF16, 1, d, p);
    kt_op_input(t, "q", KILN_BF16, 1, d, q);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    y = out_data(t, "y");
    assert_int_equal(y[0], 0x3F80);
    assert_int_equal(y[1], 0x3F00);
    kt_op_free(t);
}

static void test_max_min_nan_and_ints(void **state)
{
    (void)state;
    const int64_t d[] = {4};
    const float a[] = {1, NAN, 3, -INFINITY}, b[] = {2, 0, NAN, -5};
    const float mx[] = {2, NAN, NAN, -5}, mn[] = {1, NAN, NAN, -INFINITY}; /* NaN wins, as numpy */
    for (int k = 0; k < 2; k++) {
        kt_op *t = kt_op_new(k ? "Min" : "Max", 13);
        kt_op_input(t, "a", KILN_F32, 1, d, a);
        kt_op_input(t, "b", KILN_F32, 1, d, b);
        kt_op_output(t, "y");
        assert_kiln_ok(kt_op_run(t));
        assert_close_f32(out_data(t, "y"), k ? mn : mx, 4, 0);
        kt_op_free(t);
    }

    /* i32 of three inputs, broadcast */
    const int32_t ia[] = {1, -7, 3, 4, 5, -6}, ib[] = {0, 0, 10}, ic[] = {-1, 5};
    kt_op *t = three("Max", KILN_I32, ia, ib, ic);
    assert_kiln_ok(kt_op_run(t));
    const int32_t imax[] = {1, 0, 10, 5, 5, 10};
    assert_memory_equal(out_data(t, "Y"), imax, sizeof imax);
    kt_op_free(t);
    t = three("Min", KILN_I32, ia, ib, ic);
    assert_kiln_ok(kt_op_run(t));
    const int32_t imin[] = {-1, -7, -1, 0, 0, -6};
    assert_memory_equal(out_data(t, "Y"), imin, sizeof imin);
    kt_op_free(t);

    /* i64 extremes stay exact (no trip through double) */
    const int64_t la[] = {INT64_MAX, INT64_MIN, INT64_MAX - 1, 5}, lb[] = {INT64_MAX - 1, INT64_MIN + 1, 0, 5};
    t = kt_op_new("Max", 13);
    kt_op_input(t, "a", KILN_I64, 1, d, la);
    kt_op_input(t, "b", KILN_I64, 1, d, lb);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const int64_t lmax[] = {INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 5};
    assert_memory_equal(out_data(t, "y"), lmax, sizeof lmax);
    kt_op_free(t);

    /* u8 Min: 200 vs 100 is 100, not a signed comparison */
    const uint8_t ua[] = {200, 0, 255, 7}, ub[] = {100, 1, 254, 7};
    t = kt_op_new("Min", 13);
    kt_op_input(t, "a", KILN_U8, 1, d, ua);
    kt_op_input(t, "b", KILN_U8, 1, d, ub);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const uint8_t umin[] = {100, 0, 254, 7};
    assert_memory_equal(out_data(t, "y"), umin, sizeof umin);
    kt_op_free(t);
}

/* More inputs than the cuda backend's one pass (8): every input counts. */
static void test_sum_many_inputs(void **state)
{
    (void)state;
    const int64_t d[] = {2};
    kt_op *t = kt_op_new("Sum", 13);
    float vals[11][2];
    char name[8];
    for (int k = 0; k < 11; k++) {
        vals[k][0] = (float)(k + 1);
        vals[k][1] = (float)(1 << k);
        snprintf(name, sizeof name, "x%d", k);
        kt_op_input(t, name, KILN_F32, 1, d, vals[k]);
    }
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const float want[] = {66, 2047}; /* 1+..+11, 2^11 - 1 */
    assert_memory_equal(out_data(t, "y"), want, sizeof want);
    kt_op_free(t);
}

/* ---------------------------------------------------------------- Mod */

static kt_op *mod_op(kiln_dtype dt, int64_t fmod, const int64_t *da, int ra, const void *a, const int64_t *db, int rb,
                     const void *b)
{
    kt_op *t = kt_op_new("Mod", 13);
    kt_op_input(t, "A", dt, ra, da, a);
    kt_op_input(t, "B", dt, rb, db, b);
    kt_op_output(t, "Y");
    kt_op_attr_int(t, "fmod", fmod);
    return t;
}

static void test_mod_integers(void **state)
{
    (void)state;
    const int64_t d[] = {6};
    const int32_t a[] = {-4, 7, 5, 4, -7, 8}, b[] = {2, -3, 8, -2, 3, 5};
    /* fmod 0 (Python's %): the divisor's sign */
    kt_op *t = mod_op(KILN_I32, 0, d, 1, a, d, 1, b);
    assert_kiln_ok(kt_op_run(t));
    const int32_t py[] = {0, -2, 5, 0, 2, 3};
    assert_memory_equal(out_data(t, "Y"), py, sizeof py);
    kt_op_free(t);
    /* fmod 1 (C's %): the dividend's sign */
    t = mod_op(KILN_I32, 1, d, 1, a, d, 1, b);
    assert_kiln_ok(kt_op_run(t));
    const int32_t c[] = {0, 1, 5, 0, -1, 3};
    assert_memory_equal(out_data(t, "Y"), c, sizeof c);
    kt_op_free(t);

    /* i8 broadcast: [2,3] % [3] */
    const int64_t d23[] = {2, 3}, d3[] = {3};
    const int8_t ia[] = {-128, 127, -5, 9, -9, 100}, ib[] = {3, -4, 7};
    t = mod_op(KILN_I8, 0, d23, 2, ia, d3, 1, ib);
    assert_kiln_ok(kt_op_run(t));
    const int8_t iy[] = {1, -1, 2, 0, -1, 2}; /* -128%3=1, 127%-4=-1, -5%7=2, 9%3=0, -9%-4=-1, 100%7=2 */
    assert_memory_equal(out_data(t, "Y"), iy, sizeof iy);
    kt_op_free(t);

    /* i64: INT64_MIN % -1 is 0 (no overflow) */
    const int64_t d2[] = {2};
    const int64_t la[] = {INT64_MIN, -9}, lb[] = {-1, 4};
    t = mod_op(KILN_I64, 0, d2, 1, la, d2, 1, lb);
    assert_kiln_ok(kt_op_run(t));
    const int64_t ly[] = {0, 3};
    assert_memory_equal(out_data(t, "Y"), ly, sizeof ly);
    kt_op_free(t);

    /* u8 */
    const uint8_t ua[] = {250, 7}, ub[] = {7, 250};
    t = mod_op(KILN_U8, 0, d2, 1, ua, d2, 1, ub);
    assert_kiln_ok(kt_op_run(t));
    const uint8_t uy[] = {5, 7};
    assert_memory_equal(out_data(t, "Y"), uy, sizeof uy);
    kt_op_free(t);

    /* a zero divisor is bad data */
    const int32_t za[] = {1, 2}, zb[] = {1, 0};
    t = mod_op(KILN_I32, 0, d2, 1, za, d2, 1, zb);
    assert_int_equal(kt_op_run(t), KILN_ERR_INVALID_ARGUMENT);
    kt_op_free(t);
}

static void test_mod_floats(void **state)
{
    (void)state;
    const int64_t d[] = {7};
    const float a[] = {5.5f, -5.5f, 5.5f, 3, INFINITY, 3, -0.0f}, b[] = {2, 2, -2, 0, 2, INFINITY, 5};
    kt_op *t = mod_op(KILN_F32, 1, d, 1, a, d, 1, b);
    assert_kiln_ok(kt_op_run(t));
    const float want[] = {1.5f, -1.5f, 1.5f, NAN, NAN, 3, -0.0f}; /* C fmod */
    const float *y = out_data(t, "Y");
    assert_close_f32(y, want, 7, 0);
    assert_true(signbit(y[6]));
    kt_op_free(t);

    /* f16: fmod(7, 2.5) = 2, fmod(-7, 2.5) = -2 */
    const int64_t d2[] = {2};
    const uint16_t ha[] = {0x4700, 0xC700}, hb[] = {0x4100, 0x4100};
    t = mod_op(KILN_F16, 1, d2, 1, ha, d2, 1, hb);
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *hy = out_data(t, "Y");
    assert_int_equal(hy[0], 0x4000);
    assert_int_equal(hy[1], 0xC000);
    kt_op_free(t);
}

/* ---------------------------------------------------------------- activations */

static void run_act(const char *op, int opset, const float *x, const float *want, int n, const char *attr1,
                    float v1, const char *attr2, float v2)
{
    const int64_t d[] = {n};
    kt_op *t = unary(op, opset, KILN_F32, 1, d, x);
    if (attr1) kt_op_attr_float(t, attr1, v1);
    if (attr2) kt_op_attr_float(t, attr2, v2);
    assert_kiln_ok(kt_op_run(t));
    assert_close_f32(out_data(t, "Y"), want, n, 2e-7);
    kt_op_free(t);
}

static void test_activations_f32(void **state)
{
    (void)state;
    /* Python math in double, rounded to f32 */
    const float mx[] = {-3, -1, 0, 1, 2.5f, 30, -30};
    const float mish[] = {-0.145647466f, -0.30340147f, 0, 0.865098417f, 2.47139239f, 30, -2.80728695e-12f};
    run_act("Mish", 18, mx, mish, 7, NULL, 0, NULL, 0);

    const float sx[] = {-50, -1, 0, 1, 100};
    const float softplus[] = {1.92874989e-22f, 0.313261688f, 0.693147182f, 1.31326163f, 100};
    run_act("Softplus", 13, sx, softplus, 5, NULL, 0, NULL, 0);

    const float gx[] = {-3, 0, 0.5f, 4};
    const float softsign[] = {-0.75f, 0, 1.0f / 3, 0.8f}; /* by hand: x / (1 + |x|) */
    run_act("Softsign", 13, gx, softsign, 4, NULL, 0, NULL, 0);

    const float ex[] = {-2, -0.5f, 0, 3};
    const float elu1[] = {-0.864664733f, -0.393469334f, 0, 3};
    const float elu2[] = {-1.72932947f, -0.786938667f, 0, 3};
    run_act("Elu", 13, ex, elu1, 4, NULL, 0, NULL, 0);
    run_act("Elu", 13, ex, elu2, 4, "alpha", 2, NULL, 0);

    const float lx[] = {-1, 0, 2};
    const float selu[] = {-1.11133075f, 0, 2.10140204f};
    const float selu23[] = {-3.79272342f, 0, 6};
    run_act("Selu", 13, lx, selu, 3, NULL, 0, NULL, 0);
    run_act("Selu", 13, lx, selu23, 3, "alpha", 2, "gamma", 3);

    const float cx[] = {-3, -1, 0, 1.5f};
    const float celu1[] = {-0.950212955f, -0.63212055f, 0, 1.5f};
    const float celu2[] = {-1.55373967f, -0.786938667f, 0, 1.5f};
    run_act("Celu", 12, cx, celu1, 4, NULL, 0, NULL, 0);
    run_act("Celu", 12, cx, celu2, 4, "alpha", 2, NULL, 0);

    const float tx[] = {0.5f, 1, 1.5f, -2, NAN};
    const float tr1[] = {0, 0, 1.5f, 0, 0}; /* by hand: x > alpha ? x : 0 (NaN is not > alpha) */
    const float tr025[] = {0.5f, 1, 1.5f, 0, 0};
    run_act("ThresholdedRelu", 13, tx, tr1, 5, NULL, 0, NULL, 0);
    run_act("ThresholdedRelu", 13, tx, tr025, 5, "alpha", 0.25f, NULL, 0);
}

static void test_activations_other_dtypes(void **state)
{
    (void)state;
    /* f16 Softsign: -3 -> -0.75 (0xBA00), 1 -> 0.5 (0x3800) */
    const int64_t d[] = {2};
    const uint16_t h[] = {0xC200, 0x3C00};
    kt_op *t = unary("Softsign", 22, KILN_F16, 1, d, h);
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *hy = out_data(t, "Y");
    assert_int_equal(hy[0], 0xBA00);
    assert_int_equal(hy[1], 0x3800);
    kt_op_free(t);

    /* f64 Elu keeps double precision: expm1(-1e-10) = -9.9999999995e-11 */
    const double x[] = {-1e-10, 2};
    t = unary("Elu", 6, KILN_F64, 1, d, x);
    assert_kiln_ok(kt_op_run(t));
    const double *y = out_data(t, "Y");
    assert_true(fabs(y[0] - -9.9999999995e-11) < 1e-24);
    assert_true(y[1] == 2);
    kt_op_free(t);

    /* integer inputs are refused */
    t = unary("Mish", 18, KILN_I32, 1, d, NULL);
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
    /* Celu alpha=0 divides by zero */
    const float f[] = {1, 2};
    t = unary("Celu", 12, KILN_F32, 1, d, f);
    kt_op_attr_float(t, "alpha", 0);
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_variadic),
        cmocka_unit_test(test_flops_variadic),
        cmocka_unit_test(test_sum_mean_broadcast),
        cmocka_unit_test(test_sum_halfs),
        cmocka_unit_test(test_max_min_nan_and_ints),
        cmocka_unit_test(test_sum_many_inputs),
        cmocka_unit_test(test_mod_integers),
        cmocka_unit_test(test_mod_floats),
        cmocka_unit_test(test_activations_f32),
        cmocka_unit_test(test_activations_other_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
