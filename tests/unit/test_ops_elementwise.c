/* Elementwise ops: shape rules (symbolic broadcasting, dtype checks, errors),
 * the broadcast iterator, and the ref kernels on small inputs whose results
 * were worked out by hand or with numpy (float64 math rounded to float32,
 * numpy 2.4 / ml_dtypes; each literal says how it was computed). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "ir/ops.h"
#include "opharness.h"
#include "ref/broadcast.h"
#include "ref/elementwise.h"
#include "ref/ref.h"

static void assert_close_f32(const float *got, const float *want, int n, double rel)
{
    for (int i = 0; i < n; i++) {
        double tol = rel * fmax(fabs((double)want[i]), 1e-30);
        if (isnan(want[i]) || isinf(want[i])) {
            if (memcmp(&got[i], &want[i], 4) && !(isnan(want[i]) && isnan(got[i])))
                fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
        } else if (fabs((double)got[i] - want[i]) > tol) {
            fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
        }
    }
}

static kt_op *unary(const char *op, int opset, kiln_dtype dt, int rank, const int64_t *dims, const void *data)
{
    kt_op *t = kt_op_new(op, opset);
    kt_op_input(t, "X", dt, rank, dims, data);
    kt_op_output(t, "Y");
    return t;
}

static kt_op *binary(const char *op, int opset, kiln_dtype da, int ra, const int64_t *sa, const void *a, kiln_dtype db,
                     int rb, const int64_t *sb, const void *b)
{
    kt_op *t = kt_op_new(op, opset);
    kt_op_input(t, "A", da, ra, sa, a);
    kt_op_input(t, "B", db, rb, sb, b);
    kt_op_output(t, "C");
    return t;
}

static void *out_data(kt_op *t, const char *name)
{
    kiln_value *y = kt_op_value(t, name);
    assert_non_null(y);
    assert_non_null(y->data);
    return y->data;
}

/* ---------------------------------------------------------------- shapes */

static void test_shape_symbolic_broadcast(void **state)
{
    (void)state;
    kt_op *t = kt_op_new("Add", 17);
    const int64_t xd[] = {-1, 3, -1, -1}, bd[] = {1, 3, 1, 1};
    const char *sym[] = {"batch", NULL, "H", "W"};
    kt_op_input_sym(t, "x", KILN_F32, 4, xd, sym);
    kt_op_input(t, "bias", KILN_F32, 4, bd, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    kiln_value *x = kt_op_value(t, "x"), *y = kt_op_value(t, "y");
    assert_int_equal(y->dtype, KILN_F32);
    assert_int_equal(y->shape.rank, 4);
    for (int i = 0; i < 4; i++) assert_true(y->shape.d[i] == x->shape.d[i]);
    assert_true(y->shape.d[0] < 0 && y->shape.d[0] != KILN_DIM_UNKNOWN); /* still the symbol 'batch' */
    assert_int_equal(y->shape.d[1], 3);
    kt_op_free(t);

    /* a symbol against a concrete dim: the concrete one; rank grows on the left */
    t = kt_op_new("Mul", 17);
    const int64_t ad[] = {-1, 1}, cd[] = {7};
    const char *s2[] = {"seq", NULL};
    kt_op_input_sym(t, "a", KILN_F16, 2, ad, s2);
    kt_op_input(t, "c", KILN_F16, 1, cd, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 2);
    assert_true(y->shape.d[0] == kt_op_value(t, "a")->shape.d[0]);
    assert_int_equal(y->shape.d[1], 7);
    kt_op_free(t);
}

static void test_shape_errors(void **state)
{
    (void)state;
    /* dtype mismatch names both tensors */
    const int64_t d2[] = {2, 3}, d1[] = {3}, d4[] = {4};
    kt_op *t = binary("Add", 17, KILN_F32, 2, d2, NULL, KILN_I64, 1, d1, NULL);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "'A' (f32)"));
    assert_non_null(strstr(kiln_last_error(), "'B' (i64)"));
    kt_op_free(t);

    /* 3 vs 4 cannot broadcast */
    t = binary("Sub", 17, KILN_F32, 2, d2, NULL, KILN_F32, 1, d4, NULL);
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "'A' [2,3]"));
    kt_op_free(t);

    /* a float-only op on integers is unsupported, not a crash */
    t = unary("Sigmoid", 17, KILN_I32, 1, d1, NULL);
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);

    /* Where's condition must be bool */
    t = kt_op_new("Where", 17);
    kt_op_input(t, "c", KILN_U8, 1, d1, NULL);
    kt_op_input(t, "x", KILN_F32, 1, d1, NULL);
    kt_op_input(t, "y", KILN_F32, 1, d1, NULL);
    kt_op_output(t, "z");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);

    /* Clip's min must be a scalar of X's dtype */
    t = kt_op_new("Clip", 17);
    kt_op_input(t, "x", KILN_F32, 1, d1, NULL);
    kt_op_input(t, "lo", KILN_F32, 1, d1, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

static void test_shape_comparisons_and_cast(void **state)
{
    (void)state;
    const int64_t d[] = {-1, 4}, s[] = {4};
    const char *sym[] = {"n", NULL};
    kt_op *t = kt_op_new("Less", 17);
    kt_op_input_sym(t, "a", KILN_I64, 2, d, sym);
    kt_op_input(t, "b", KILN_I64, 1, s, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "y")->dtype, KILN_BOOL);
    assert_true(kt_op_value(t, "y")->shape.d[0] == kt_op_value(t, "a")->shape.d[0]);
    kt_op_free(t);

    t = unary("Cast", 19, KILN_F32, 1, s, NULL);
    kt_op_attr_int(t, "to", KILN_F8E4M3);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "Y")->dtype, KILN_F8E4M3);
    kt_op_free(t);

    t = unary("Cast", 19, KILN_F32, 1, s, NULL);
    kt_op_attr_int(t, "to", 8); /* string */
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);

    t = unary("Gelu", 20, KILN_F32, 1, s, NULL);
    kt_op_attr_string(t, "approximate", "sigmoid");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);
}

static void test_shape_prelu_unidirectional(void **state)
{
    (void)state;
    const int64_t x[] = {-1, 3, -1, -1}, ok[] = {3, 1, 1}, bad[] = {5, 1, 1};
    const char *sym[] = {"N", NULL, "H", "W"};
    kt_op *t = kt_op_new("PRelu", 16);
    kt_op_input_sym(t, "x", KILN_F32, 4, x, sym);
    kt_op_input(t, "slope", KILN_F32, 3, ok, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    kiln_value *y = kt_op_value(t, "y");
    assert_int_equal(y->shape.rank, 4);
    for (int i = 0; i < 4; i++) assert_true(y->shape.d[i] == kt_op_value(t, "x")->shape.d[i]);
    kt_op_free(t);

    t = kt_op_new("PRelu", 16);
    kt_op_input_sym(t, "x", KILN_F32, 4, x, sym);
    kt_op_input(t, "slope", KILN_F32, 3, bad, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    assert_non_null(strstr(kiln_last_error(), "slope 'slope'"));
    kt_op_free(t);

    /* the slope may not make the output bigger than X (one-way broadcast) */
    const int64_t x1[] = {3}, s2[] = {2, 3};
    t = kt_op_new("PRelu", 16);
    kt_op_input(t, "x", KILN_F32, 1, x1, NULL);
    kt_op_input(t, "slope", KILN_F32, 2, s2, NULL);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_SHAPE);
    kt_op_free(t);
}

static void test_shape_dropout(void **state)
{
    (void)state;
    const int64_t d[] = {2, 2};
    const float x[] = {1, -2, 3, 4};
    const uint8_t on = 1, off = 0;
    const float r = 0.3f, zero = 0;

    kt_op *t = kt_op_new("Dropout", 13);
    kt_op_input(t, "x", KILN_F32, 2, d, x);
    kt_op_input(t, "ratio", KILN_F32, 0, NULL, &r);
    kt_op_input(t, "train", KILN_BOOL, 0, NULL, &off);
    kt_op_output(t, "y");
    kt_op_output(t, "mask");
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(out_data(t, "y"), x, sizeof x);
    const uint8_t all[] = {1, 1, 1, 1};
    assert_memory_equal(out_data(t, "mask"), all, 4);
    assert_int_equal(kt_op_value(t, "mask")->dtype, KILN_BOOL);
    kt_op_free(t);

    t = kt_op_new("Dropout", 13);
    kt_op_input(t, "x", KILN_F32, 2, d, x);
    kt_op_input(t, "ratio", KILN_F32, 0, NULL, &r);
    kt_op_input(t, "train", KILN_BOOL, 0, NULL, &on);
    kt_op_output(t, "y");
    assert_int_equal(kt_op_run(t), KILN_ERR_UNSUPPORTED);
    kt_op_free(t);

    /* training with ratio 0 keeps everything: the identity */
    t = kt_op_new("Dropout", 22);
    kt_op_input(t, "x", KILN_F32, 2, d, x);
    kt_op_input(t, "ratio", KILN_F32, 0, NULL, &zero);
    kt_op_input(t, "train", KILN_BOOL, 0, NULL, &on);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(out_data(t, "y"), x, sizeof x);
    kt_op_free(t);

    /* training_mode not known at build time: shapes are inferred, the kernel checks the value */
    t = kt_op_new("Dropout", 13);
    kt_op_input(t, "x", KILN_F32, 2, d, NULL);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "train", KILN_BOOL, 0, NULL, NULL);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "y")->shape.rank, 2);
    kiln_value *tv = kt_op_value(t, "train"), *xv = kt_op_value(t, "x"), *yv = kt_op_value(t, "y");
    float ybuf[4];
    uint8_t flag = 1;
    xv->data = (void *)x;
    yv->data = ybuf;
    tv->data = &flag;
    assert_int_equal(kiln_ref_Dropout(&t->g->nodes[0], t->g->values), KILN_ERR_UNSUPPORTED);
    flag = 0;
    assert_kiln_ok(kiln_ref_Dropout(&t->g->nodes[0], t->g->values));
    assert_memory_equal(ybuf, x, sizeof x);
    xv->data = yv->data = tv->data = NULL;
    kt_op_free(t);
}

static void test_flops(void **state)
{
    (void)state;
    const int64_t d[] = {2, 3}, s[] = {3};
    kt_op *t = binary("Add", 17, KILN_F32, 2, d, NULL, KILN_F32, 1, s, NULL);
    assert_kiln_ok(kt_op_run(t));
    assert_true(kiln_flops_elementwise(&t->g->nodes[0], t->g->values) == 6.0);
    kt_op_free(t);
    const int64_t u[] = {-1, 3};
    t = binary("Add", 17, KILN_F32, 2, u, NULL, KILN_F32, 1, s, NULL);
    assert_kiln_ok(kt_op_run(t));
    assert_true(kiln_flops_elementwise(&t->g->nodes[0], t->g->values) == 0.0);
    kt_op_free(t);
}

/* ------------------------------------------------------------ iterator */

static void test_bcast_iterator_merges(void **state)
{
    (void)state;
    kiln_bcast it;
    int64_t yo;
    /* equal shapes: one row of all elements */
    kiln_shape a = {.rank = 3, .d = {2, 3, 4}}, bias = {.rank = 4, .d = {1, 3, 1, 1}};
    const kiln_shape *in2[2] = {&a, &a};
    assert_kiln_ok(kiln_bcast_init(&it, &a, 2, in2));
    assert_int_equal(it.rows, 1);
    assert_int_equal(it.inner, 24);
    assert_int_equal(it.inner_stride[0], 1);
    /* a scalar: one row, stride 0 */
    kiln_shape sc = {.rank = 0};
    const kiln_shape *ins[2] = {&a, &sc};
    assert_kiln_ok(kiln_bcast_init(&it, &a, 2, ins));
    assert_int_equal(it.rows, 1);
    assert_int_equal(it.inner_stride[1], 0);
    /* [2,3,5,7] + [1,3,1,1]: 6 rows of 35, the bias offset walks 0,1,2,0,1,2 */
    kiln_shape x = {.rank = 4, .d = {2, 3, 5, 7}};
    const kiln_shape *inb[2] = {&x, &bias};
    assert_kiln_ok(kiln_bcast_init(&it, &x, 2, inb));
    assert_int_equal(it.rows, 6);
    assert_int_equal(it.inner, 35);
    assert_int_equal(it.inner_stride[1], 0);
    const int64_t want_b[] = {0, 1, 2, 0, 1, 2};
    for (int r = 0; r < 6; r++) {
        assert_true(kiln_bcast_next(&it, &yo));
        assert_int_equal(yo, r * 35);
        assert_int_equal(it.off[0], r * 35);
        assert_int_equal(it.off[1], want_b[r]);
    }
    assert_false(kiln_bcast_next(&it, &yo));
    /* an input that does not fit */
    kiln_shape wrong = {.rank = 1, .d = {6}};
    const kiln_shape *inw[2] = {&x, &wrong};
    assert_int_equal(kiln_bcast_init(&it, &x, 2, inw), KILN_ERR_SHAPE);
    /* empty output: no rows */
    kiln_shape e = {.rank = 2, .d = {0, 3}};
    const kiln_shape *ine[1] = {&e};
    assert_kiln_ok(kiln_bcast_init(&it, &e, 1, ine));
    assert_false(kiln_bcast_next(&it, &yo));
}

/* Checks the row walk against plain index arithmetic over many shapes. */
static void test_bcast_random_against_naive(void **state)
{
    (void)state;
    srand(7);
    for (int trial = 0; trial < 300; trial++) {
        int r = 1 + rand() % 5;
        kiln_shape out = {.rank = r}, s[2];
        for (int i = 0; i < r; i++) out.d[i] = 1 + rand() % 4;
        for (int k = 0; k < 2; k++) {
            s[k].rank = rand() % (r + 1);
            for (int i = 0; i < s[k].rank; i++) {
                int64_t od = out.d[r - s[k].rank + i];
                s[k].d[i] = rand() % 3 == 0 ? 1 : od;
            }
        }
        kiln_bcast it;
        const kiln_shape *in[2] = {&s[0], &s[1]};
        assert_kiln_ok(kiln_bcast_init(&it, &out, 2, in));
        int64_t st[2][KILN_MAX_RANK];
        assert_kiln_ok(kiln_bcast_strides(&s[0], &out, st[0]));
        assert_kiln_ok(kiln_bcast_strides(&s[1], &out, st[1]));
        int64_t yo, seen = 0, total = kiln_shape_numel(&out);
        while (kiln_bcast_next(&it, &yo)) {
            for (int64_t j = 0; j < it.inner; j++) {
                int64_t lin = yo + j, rem = lin, want[2] = {0, 0};
                for (int d = r - 1; d >= 0; d--) {
                    int64_t id = rem % out.d[d];
                    rem /= out.d[d];
                    want[0] += id * st[0][d];
                    want[1] += id * st[1][d];
                }
                for (int k = 0; k < 2; k++) assert_int_equal(it.off[k] + j * it.inner_stride[k], want[k]);
                seen++;
            }
        }
        assert_int_equal(seen, total);
    }
}

/* ---------------------------------------------------------- arithmetic */

static void test_add_broadcast_values(void **state)
{
    (void)state;
    const int64_t d23[] = {2, 3}, d3[] = {3}, d21[] = {2, 1}, d13[] = {1, 3};
    const float a[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30};
    kt_op *t = binary("Add", 17, KILN_F32, 2, d23, a, KILN_F32, 1, d3, b);
    assert_kiln_ok(kt_op_run(t));
    const float want[] = {11, 22, 33, 14, 25, 36};
    assert_memory_equal(out_data(t, "C"), want, sizeof want);
    kt_op_free(t);

    /* outer product by broadcasting both ways: [2,1] * [1,3] */
    const float c[] = {2, -1}, e[] = {1, 2, 3};
    t = binary("Mul", 17, KILN_F32, 2, d21, c, KILN_F32, 2, d13, e);
    assert_kiln_ok(kt_op_run(t));
    const float outer[] = {2, 4, 6, -1, -2, -3};
    assert_memory_equal(out_data(t, "C"), outer, sizeof outer);
    kt_op_free(t);

    /* scalar on the left: 1 - x */
    const float one = 1;
    t = binary("Sub", 17, KILN_F32, 0, NULL, &one, KILN_F32, 1, d3, b);
    assert_kiln_ok(kt_op_run(t));
    const float sub[] = {-9, -19, -29};
    assert_memory_equal(out_data(t, "C"), sub, sizeof sub);
    kt_op_free(t);
}

static void test_div_integer_truncates(void **state)
{
    (void)state;
    const int64_t d[] = {5};
    /* C / onnxruntime semantics: toward zero (numpy's // would give -4 and -4) */
    const int32_t a[] = {7, -7, 7, -7, INT32_MIN}, b[] = {2, 2, -2, -2, -1};
    kt_op *t = binary("Div", 17, KILN_I32, 1, d, a, KILN_I32, 1, d, b);
    assert_kiln_ok(kt_op_run(t));
    const int32_t want[] = {3, -3, -3, 3, INT32_MIN}; /* INT32_MIN / -1 wraps */
    assert_memory_equal(out_data(t, "C"), want, sizeof want);
    kt_op_free(t);

    const int64_t d2[] = {2};
    const int8_t a8[] = {-128, 100}, b8[] = {-1, 3};
    t = binary("Div", 17, KILN_I8, 1, d2, a8, KILN_I8, 1, d2, b8);
    assert_kiln_ok(kt_op_run(t));
    const int8_t w8[] = {-128, 33};
    assert_memory_equal(out_data(t, "C"), w8, sizeof w8);
    kt_op_free(t);

    const int64_t z[] = {1, 0};
    const int64_t n[] = {5, 5};
    t = binary("Div", 17, KILN_I64, 1, d2, n, KILN_I64, 1, d2, z);
    assert_int_equal(kt_op_run(t), KILN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(kiln_last_error(), "'B'"));
    kt_op_free(t);

    /* u8 arithmetic wraps modulo 256: 200 + 100 = 44, 3 - 5 = 254, 20 * 13 = 4 */
    const uint8_t ua[] = {200, 3, 20}, ub[] = {100, 5, 13};
    const int64_t d3[] = {3};
    t = binary("Add", 17, KILN_U8, 1, d3, ua, KILN_U8, 1, d3, ub);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(((uint8_t *)out_data(t, "C"))[0], 44);
    kt_op_free(t);
    t = binary("Sub", 17, KILN_U8, 1, d3, ua, KILN_U8, 1, d3, ub);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(((uint8_t *)out_data(t, "C"))[1], 254);
    kt_op_free(t);
    t = binary("Mul", 17, KILN_U8, 1, d3, ua, KILN_U8, 1, d3, ub);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(((uint8_t *)out_data(t, "C"))[2], 4);
    kt_op_free(t);
}

static void test_pow_mixed_dtypes(void **state)
{
    (void)state;
    const int64_t d[] = {3};
    /* int base, float exponent: std::pow truncated, output int: 2^0.5=1.41->1, 3^2=9, 10^-1=0.1->0 */
    const int32_t base[] = {2, 3, 10};
    const float ex[] = {0.5f, 2.0f, -1.0f};
    kt_op *t = binary("Pow", 15, KILN_I32, 1, d, base, KILN_F32, 1, d, ex);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "C")->dtype, KILN_I32);
    const int32_t w1[] = {1, 9, 0};
    assert_memory_equal(out_data(t, "C"), w1, sizeof w1);
    kt_op_free(t);

    /* float base, int64 exponent: 2^3 = 8, (-1.5)^2 = 2.25, 4^-1 = 0.25 */
    const float fb[] = {2, -1.5f, 4};
    const int64_t ie[] = {3, 2, -1};
    t = binary("Pow", 15, KILN_F32, 1, d, fb, KILN_I64, 1, d, ie);
    assert_kiln_ok(kt_op_run(t));
    const float w2[] = {8, 2.25f, 0.25f};
    assert_memory_equal(out_data(t, "C"), w2, sizeof w2);
    kt_op_free(t);

    /* int ^ int exactly, beyond 2^53: 3^39 = 4052555153018976267 */
    const int64_t b3[] = {3, -2, 7}, e3[] = {39, 3, 0};
    t = binary("Pow", 15, KILN_I64, 1, d, b3, KILN_I64, 1, d, e3);
    assert_kiln_ok(kt_op_run(t));
    const int64_t w3[] = {4052555153018976267LL, -8, 1};
    assert_memory_equal(out_data(t, "C"), w3, sizeof w3);
    kt_op_free(t);

    /* f32 ^ f32 with a scalar exponent: x^2 */
    const float x[] = {1.5f, -3, 0.1f}, two = 2;
    t = binary("Pow", 15, KILN_F32, 1, d, x, KILN_F32, 0, NULL, &two);
    assert_kiln_ok(kt_op_run(t));
    const float w4[] = {2.25f, 9, 0.1f * 0.1f};
    assert_close_f32(out_data(t, "C"), w4, 3, 1e-7);
    kt_op_free(t);
}

static void test_f16_bf16_arith(void **state)
{
    (void)state;
    const int64_t d[] = {4};
    /* numpy f16: [1,1,1000,0.1] + [0.000488,0.001465,0.3,0.2] = bits [15360,15362,25553,13516] */
    const float af[] = {1, 1, 1000, 0.1f}, bf[] = {0.0004882812f, 0.00146484375f, 0.3f, 0.2f};
    uint16_t a[4], b[4];
    for (int i = 0; i < 4; i++) {
        a[i] = kiln_f32_to_f16(af[i]);
        b[i] = kiln_f32_to_f16(bf[i]);
    }
    kt_op *t = binary("Add", 17, KILN_F16, 1, d, a, KILN_F16, 1, d, b);
    assert_kiln_ok(kt_op_run(t));
    const uint16_t want[] = {15360, 15362, 25553, 13516};
    assert_memory_equal(out_data(t, "C"), want, sizeof want);
    kt_op_free(t);

    /* bf16: 1.5 * 2 = 3 (0x4040), 1 / 3 = 0x3eab (RNE of 0.33333), compare */
    const int64_t d2[] = {2};
    uint16_t x[2] = {kiln_f32_to_bf16(1.5f), kiln_f32_to_bf16(1)}, y[2] = {kiln_f32_to_bf16(2), kiln_f32_to_bf16(3)};
    t = binary("Mul", 17, KILN_BF16, 1, d2, x, KILN_BF16, 1, d2, y);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(((uint16_t *)out_data(t, "C"))[0], 0x4040);
    kt_op_free(t);
    t = binary("Div", 17, KILN_BF16, 1, d2, x, KILN_BF16, 1, d2, y);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(((uint16_t *)out_data(t, "C"))[1], 0x3eab);
    kt_op_free(t);
    t = binary("Greater", 17, KILN_BF16, 1, d2, x, KILN_BF16, 1, d2, y);
    assert_kiln_ok(kt_op_run(t));
    const uint8_t gt[] = {0, 0};
    assert_memory_equal(out_data(t, "C"), gt, 2);
    kt_op_free(t);
}

/* A long broadcast row of f16 goes through the chunked conversion: every
 * element is checked against f32 math. */
static void test_f16_long_rows(void **state)
{
    (void)state;
    enum { C = 3, HW = 1500 };
    const int64_t xd[] = {2, C, HW}, bd[] = {C, 1};
    uint16_t *x = malloc(2 * C * HW * 2), b[C];
    float xf[2 * C * HW];
    kt_fill_uniform(xf, 2 * C * HW, 3, -4, 4);
    for (int i = 0; i < 2 * C * HW; i++) x[i] = kiln_f32_to_f16(xf[i]);
    for (int c = 0; c < C; c++) b[c] = kiln_f32_to_f16(0.25f * (float)(c + 1));
    kt_op *t = binary("Mul", 17, KILN_F16, 3, xd, x, KILN_F16, 2, bd, b);
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *y = out_data(t, "C");
    for (int i = 0; i < 2 * C * HW; i++) {
        int c = (i / HW) % C;
        uint16_t want = kiln_f32_to_f16(kiln_f16_to_f32(x[i]) * kiln_f16_to_f32(b[c]));
        if (y[i] != want) fail_msg("element %d: %04x vs %04x", i, y[i], want);
    }
    kt_op_free(t);
    free(x);
}

static void test_comparisons_and_logic(void **state)
{
    (void)state;
    const int64_t d[] = {4};
    const float a[] = {1, NAN, 3, -0.0f}, b[] = {2, NAN, 3, 0.0f};
    const uint8_t eq[] = {0, 0, 1, 1}, gt[] = {0, 0, 0, 0}, lt[] = {1, 0, 0, 0};
    const char *ops[] = {"Equal", "Greater", "Less"};
    const uint8_t *want[] = {eq, gt, lt};
    for (int k = 0; k < 3; k++) {
        kt_op *t = binary(ops[k], 19, KILN_F32, 1, d, a, KILN_F32, 1, d, b);
        assert_kiln_ok(kt_op_run(t));
        assert_int_equal(kt_op_value(t, "C")->dtype, KILN_BOOL);
        assert_memory_equal(out_data(t, "C"), want[k], 4);
        kt_op_free(t);
    }
    const uint8_t p[] = {0, 0, 1, 1}, q[] = {0, 1, 0, 1};
    kt_op *t = binary("And", 7, KILN_BOOL, 1, d, p, KILN_BOOL, 1, d, q);
    assert_kiln_ok(kt_op_run(t));
    const uint8_t and_[] = {0, 0, 0, 1};
    assert_memory_equal(out_data(t, "C"), and_, 4);
    kt_op_free(t);
    t = binary("Equal", 19, KILN_BOOL, 1, d, p, KILN_BOOL, 1, d, q);
    assert_kiln_ok(kt_op_run(t));
    const uint8_t beq[] = {1, 0, 0, 1};
    assert_memory_equal(out_data(t, "C"), beq, 4);
    kt_op_free(t);
    t = unary("Not", 1, KILN_BOOL, 1, d, p);
    assert_kiln_ok(kt_op_run(t));
    const uint8_t not_[] = {1, 1, 0, 0};
    assert_memory_equal(out_data(t, "Y"), not_, 4);
    kt_op_free(t);
    /* Greater on i64 with a broadcast scalar */
    const int64_t iv[] = {-5, 0, 5, INT64_MAX}, zero = 0;
    t = binary("Greater", 13, KILN_I64, 1, d, iv, KILN_I64, 0, NULL, &zero);
    assert_kiln_ok(kt_op_run(t));
    const uint8_t igt[] = {0, 0, 1, 1};
    assert_memory_equal(out_data(t, "C"), igt, 4);
    kt_op_free(t);
}

static void test_where_broadcast(void **state)
{
    (void)state;
    const int64_t dc[] = {2, 1}, dx[] = {3}, dy[] = {2, 3};
    const uint8_t c[] = {1, 0};
    const int64_t x[] = {1, 2, 3}, y[] = {-1, -2, -3, -4, -5, -6};
    kt_op *t = kt_op_new("Where", 16);
    kt_op_input(t, "c", KILN_BOOL, 2, dc, c);
    kt_op_input(t, "x", KILN_I64, 1, dx, x);
    kt_op_input(t, "y", KILN_I64, 2, dy, y);
    kt_op_output(t, "z");
    assert_kiln_ok(kt_op_run(t));
    const int64_t want[] = {1, 2, 3, -4, -5, -6};
    assert_memory_equal(out_data(t, "z"), want, sizeof want);
    assert_int_equal(kt_op_value(t, "z")->shape.rank, 2);
    kt_op_free(t);
}

static void test_prelu_values(void **state)
{
    (void)state;
    /* X [1,2,2], slope per channel [2,1]: negatives scaled by 0.1 / 0.5 */
    const int64_t dx[] = {1, 2, 2}, ds[] = {2, 1};
    const float x[] = {-1, 2, -4, 3}, s[] = {0.1f, 0.5f};
    kt_op *t = binary("PRelu", 16, KILN_F32, 3, dx, x, KILN_F32, 2, ds, s);
    assert_kiln_ok(kt_op_run(t));
    const float want[] = {-0.1f, 2, -2, 3};
    assert_memory_equal(out_data(t, "C"), want, sizeof want);
    kt_op_free(t);
}

/* --------------------------------------------------------- activations */

static const int64_t D5[] = {5};
static const float X5[] = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f};

static void check_unary(const char *op, int opset, const float *want, const char *attr, float av)
{
    kt_op *t = unary(op, opset, KILN_F32, 1, D5, X5);
    if (attr) kt_op_attr_float(t, attr, av);
    assert_kiln_ok(kt_op_run(t));
    assert_close_f32(out_data(t, "Y"), want, 5, 1e-6);
    kt_op_free(t);
}

static void test_activations_f32(void **state)
{
    (void)state;
    /* numpy: (1/(1+exp(-x.astype(f64)))).astype(f32) */
    const float sig[] = {0.04742587f, 0.37754068f, 0.5f, 0.6681878f, 0.9241418f};
    check_unary("Sigmoid", 13, sig, NULL, 0);
    /* np.tanh(x) in f32 */
    const float th[] = {-0.9950548f, -0.4621172f, 0, 0.6043678f, 0.9866143f};
    check_unary("Tanh", 13, th, NULL, 0);
    /* math.erf in f64, rounded */
    const float erf_[] = {-0.9999778866767883f, -0.5204998850822449f, 0, 0.6778011918067932f, 0.9995930194854736f};
    check_unary("Erf", 13, erf_, NULL, 0);
    /* 0.5x(1+erf(x/sqrt2)) in f64 */
    const float gelu[] = {-0.004049694165587425f, -0.1542687714099884f, 0, 0.5306254029273987f, 2.48447585105896f};
    check_unary("Gelu", 20, gelu, NULL, 0);
    /* np.clip(x*0.2+0.5, 0, 1) */
    const float hs[] = {0, 0.4f, 0.5f, 0.64f, 1};
    check_unary("HardSigmoid", 22, hs, NULL, 0);
    /* x*clip(x/6+0.5, 0, 1) */
    const float hsw[] = {0, -0.20833333f, 0, 0.43166667f, 2.2916665f};
    check_unary("HardSwish", 22, hsw, NULL, 0);
    /* np.where(x>0, x, x*0.1) */
    const float lr[] = {-0.3f, -0.05f, 0, 0.7f, 2.5f};
    check_unary("LeakyRelu", 16, lr, "alpha", 0.1f);
    const float relu[] = {0, 0, 0, 0.7f, 2.5f};
    check_unary("Relu", 14, relu, NULL, 0);
    const float neg[] = {3, 0.5f, 0, -0.7f, -2.5f};
    check_unary("Neg", 13, neg, NULL, 0);
    const float fl[] = {-3, -1, 0, 0, 2}, ce[] = {-3, -0.0f, 0, 1, 3};
    check_unary("Floor", 13, fl, NULL, 0);
    check_unary("Ceil", 13, ce, NULL, 0);
    const float rc[] = {-1.0f / 3, -2, INFINITY, 1 / 0.7f, 0.4f};
    check_unary("Reciprocal", 13, rc, NULL, 0);

    /* Gelu tanh: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) in f64 */
    kt_op *t = unary("Gelu", 20, KILN_F32, 1, D5, X5);
    kt_op_attr_string(t, "approximate", "tanh");
    assert_kiln_ok(kt_op_run(t));
    const float gt[] = {-0.003637392073869705f, -0.1542859971523285f, 0, 0.5305701494216919f, 2.4849157333374023f};
    assert_close_f32(out_data(t, "Y"), gt, 5, 1e-6);
    kt_op_free(t);

    /* Sqrt/Log of negatives are NaN, Exp, and f64 goes without conversion */
    const double xd[] = {4, -1, 0};
    const int64_t d3[] = {3};
    t = unary("Sqrt", 13, KILN_F64, 1, d3, xd);
    assert_kiln_ok(kt_op_run(t));
    const double *sq = out_data(t, "Y");
    assert_true(sq[0] == 2 && isnan(sq[1]) && sq[2] == 0);
    kt_op_free(t);
    t = unary("Log", 13, KILN_F64, 1, d3, xd);
    assert_kiln_ok(kt_op_run(t));
    const double *lg = out_data(t, "Y");
    assert_true(fabs(lg[0] - 1.3862943611198906) < 1e-15 && isnan(lg[1]) && isinf(lg[2]) && lg[2] < 0);
    kt_op_free(t);
}

static void test_activations_ints_and_halfs(void **state)
{
    (void)state;
    const int64_t d[] = {4};
    const int8_t x[] = {-128, -3, 0, 5};
    kt_op *t = unary("Abs", 13, KILN_I8, 1, d, x);
    assert_kiln_ok(kt_op_run(t));
    const int8_t ab[] = {-128, 3, 0, 5}; /* |-128| wraps, as numpy int8 */
    assert_memory_equal(out_data(t, "Y"), ab, 4);
    kt_op_free(t);
    t = unary("Relu", 14, KILN_I8, 1, d, x);
    assert_kiln_ok(kt_op_run(t));
    const int8_t re[] = {0, 0, 0, 5};
    assert_memory_equal(out_data(t, "Y"), re, 4);
    kt_op_free(t);
    const int64_t xl[] = {INT64_MIN, -3, 0, 5};
    t = unary("Neg", 13, KILN_I64, 1, d, xl);
    assert_kiln_ok(kt_op_run(t));
    const int64_t ng[] = {INT64_MIN, 3, 0, -5};
    assert_memory_equal(out_data(t, "Y"), ng, sizeof ng);
    kt_op_free(t);

    /* f16 Exp: exp(1) = 2.71828 -> f16 0x4170 (2.71875); exp(-20) = 2.06e-9 -> 0 (below f16's 6e-8) */
    uint16_t h[] = {kiln_f32_to_f16(1), kiln_f32_to_f16(-20), kiln_f32_to_f16(0), kiln_f32_to_f16(12)};
    t = unary("Exp", 13, KILN_F16, 1, d, h);
    assert_kiln_ok(kt_op_run(t));
    const uint16_t *e = out_data(t, "Y");
    assert_int_equal(e[0], 0x4170);
    assert_int_equal(e[1], 0);
    assert_int_equal(e[2], 0x3c00);
    assert_int_equal(e[3], 0x7c00); /* exp(12) = 162755 > 65504: inf */
    kt_op_free(t);
}

static void test_clip(void **state)
{
    (void)state;
    const int64_t d[] = {5};
    const float x[] = {-2, -0.5f, 0.5f, 2, NAN}, lo = -1, hi = 1;
    kt_op *t = kt_op_new("Clip", 13);
    kt_op_input(t, "x", KILN_F32, 1, d, x);
    kt_op_input(t, "lo", KILN_F32, 0, NULL, &lo);
    kt_op_input(t, "hi", KILN_F32, 0, NULL, &hi);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const float want[] = {-1, -0.5f, 0.5f, 1, NAN};
    assert_close_f32(out_data(t, "y"), want, 5, 0);
    kt_op_free(t);

    /* only max given (min omitted) */
    t = kt_op_new("Clip", 13);
    kt_op_input(t, "x", KILN_F32, 1, d, x);
    kt_op_input(t, "", KILN_F32, 0, NULL, NULL);
    kt_op_input(t, "hi", KILN_F32, 0, NULL, &hi);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const float w2[] = {-2, -0.5f, 0.5f, 1, NAN};
    assert_close_f32(out_data(t, "y"), w2, 5, 0);
    kt_op_free(t);

    /* min > max: everything becomes max (Clip-13 text) */
    const int32_t xi[] = {-5, 0, 3, 9, 100}, ilo = 4, ihi = 2;
    t = kt_op_new("Clip", 13);
    kt_op_input(t, "x", KILN_I32, 1, d, xi);
    kt_op_input(t, "lo", KILN_I32, 0, NULL, &ilo);
    kt_op_input(t, "hi", KILN_I32, 0, NULL, &ihi);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const int32_t w3[] = {2, 2, 2, 2, 2};
    assert_memory_equal(out_data(t, "y"), w3, sizeof w3);
    kt_op_free(t);

    /* u8 clip with a [1]-shaped bound */
    const uint8_t xu[] = {0, 10, 100, 200, 255}, ulo = 10;
    const int64_t one[] = {1};
    t = kt_op_new("Clip", 13);
    kt_op_input(t, "x", KILN_U8, 1, d, xu);
    kt_op_input(t, "lo", KILN_U8, 1, one, &ulo);
    kt_op_output(t, "y");
    assert_kiln_ok(kt_op_run(t));
    const uint8_t w4[] = {10, 10, 100, 200, 255};
    assert_memory_equal(out_data(t, "y"), w4, sizeof w4);
    kt_op_free(t);
}

/* ----------------------------------------------------------------- Cast */

static void *run_cast(kt_op **tp, kiln_dtype from, int64_t n, const void *x, kiln_dtype to, int saturate)
{
    const int64_t d[] = {n};
    kt_op *t = unary("Cast", 19, from, 1, d, x);
    kt_op_attr_int(t, "to", to);
    if (saturate >= 0) kt_op_attr_int(t, "saturate", saturate);
    assert_kiln_ok(kt_op_run(t));
    assert_int_equal(kt_op_value(t, "Y")->dtype, to);
    *tp = t;
    return out_data(t, "Y");
}

static void test_cast_f8_saturate(void **state)
{
    (void)state;
    kt_op *t;
    /* ml_dtypes float8_e4m3fn: astype (saturate=0) and onnx saturate_cast (saturate=1) */
    const float x[] = {448, 449, 463.99f, 464, 465, 479, 480, 1000, INFINITY, -INFINITY, NAN, -NAN,
                       1e-7f, 0.0009765625f, 0.0029296875f, 0.0048828125f, 0.0166015625f, -2.5f};
    const uint8_t sat[] = {126, 126, 126, 126, 126, 126, 126, 126, 126, 254, 127, 255, 0, 0, 2, 2, 8, 0xc2};
    const uint8_t nosat[] = {126, 126, 126, 126, 127, 127, 127, 127, 127, 255, 127, 255, 0, 0, 2, 2, 8, 0xc2};
    int n = (int)(sizeof x / sizeof x[0]);
    assert_memory_equal(run_cast(&t, KILN_F32, n, x, KILN_F8E4M3, -1), sat, (size_t)n); /* default saturate=1 */
    kt_op_free(t);
    assert_memory_equal(run_cast(&t, KILN_F32, n, x, KILN_F8E4M3, 0), nosat, (size_t)n);
    kt_op_free(t);
    /* and back: 0x7e = 448, 0x08 = 2^-6, 0xc2 = -2.5, 0x01 = 2^-9 */
    const uint8_t f8[] = {0x7e, 0x08, 0xc2, 0x01};
    const float *b = run_cast(&t, KILN_F8E4M3, 4, f8, KILN_F32, -1);
    assert_true(b[0] == 448 && b[1] == 0.015625f && b[2] == -2.5f && b[3] == 0.001953125f);
    kt_op_free(t);
}

static void test_cast_numeric(void **state)
{
    (void)state;
    kt_op *t;
    /* float -> int truncates toward zero; -> bool: nonzero (NaN too) is true */
    const float f[] = {2.7f, -2.7f, 0.0f, NAN};
    const int32_t wi[] = {2, -2, 0};
    assert_memory_equal(run_cast(&t, KILN_F32, 3, f, KILN_I32, -1), wi, sizeof wi);
    kt_op_free(t);
    const uint8_t wb[] = {1, 1, 0, 1};
    assert_memory_equal(run_cast(&t, KILN_F32, 4, f, KILN_BOOL, -1), wb, 4);
    kt_op_free(t);
    /* integer narrowing drops high bits: numpy [200,-1,300] -> i8 [-56,-1,44], u8 [200,255,44] */
    const int64_t l[] = {200, -1, 300};
    const int8_t w8[] = {-56, -1, 44};
    const uint8_t wu[] = {200, 255, 44};
    assert_memory_equal(run_cast(&t, KILN_I64, 3, l, KILN_I8, -1), w8, 3);
    kt_op_free(t);
    assert_memory_equal(run_cast(&t, KILN_I64, 3, l, KILN_U8, -1), wu, 3);
    kt_op_free(t);
    /* f64 -> f16 rounds once: 1 + 2^-11 + 2^-40 is just above a tie, numpy
     * gives 0x3c01; through f32 (rounding twice) it would be 0x3c00 */
    const double dd[] = {1 + 0x1p-11 + 0x1p-40, 1e10, -0.0};
    const uint16_t *h = run_cast(&t, KILN_F64, 3, dd, KILN_F16, -1);
    assert_int_equal(h[0], 0x3c01);
    assert_int_equal(h[1], 0x7c00);
    assert_int_equal(h[2], 0x8000);
    kt_op_free(t);
    /* f32 -> bf16 RNE: 1.0 -> 16256, 0.1 -> 15821 (ml_dtypes) */
    const float fb[] = {1.0f, 0.1f};
    const uint16_t *bb = run_cast(&t, KILN_F32, 2, fb, KILN_BF16, -1);
    assert_int_equal(bb[0], 16256);
    assert_int_equal(bb[1], 15821);
    kt_op_free(t);
    /* bool -> f32, u8 -> f16, i32 -> f64, f16 -> i64 */
    const uint8_t bo[] = {1, 0};
    const float *bf = run_cast(&t, KILN_BOOL, 2, bo, KILN_F32, -1);
    assert_true(bf[0] == 1 && bf[1] == 0);
    kt_op_free(t);
    const uint8_t u[] = {255, 7};
    const uint16_t *uh = run_cast(&t, KILN_U8, 2, u, KILN_F16, -1);
    assert_true(kiln_f16_to_f32(uh[0]) == 255 && kiln_f16_to_f32(uh[1]) == 7);
    kt_op_free(t);
    const int32_t i3[] = {-2147483647 - 1, 12345};
    const double *id = run_cast(&t, KILN_I32, 2, i3, KILN_F64, -1);
    assert_true(id[0] == -2147483648.0 && id[1] == 12345);
    kt_op_free(t);
    const uint16_t hh[] = {kiln_f32_to_f16(-3.75f), kiln_f32_to_f16(65504)};
    const int64_t *hl = run_cast(&t, KILN_F16, 2, hh, KILN_I64, -1);
    assert_true(hl[0] == -3 && hl[1] == 65504);
    kt_op_free(t);
}

/* Every pair of kiln dtypes converts small integers exactly (bool: 0/1). */
static void test_cast_all_pairs(void **state)
{
    (void)state;
    const kiln_dtype all[] = {KILN_F32, KILN_F16, KILN_BF16, KILN_F64, KILN_I8, KILN_U8, KILN_I32, KILN_I64, KILN_BOOL, KILN_F8E4M3};
    const int vals[] = {0, 1, 3, 7, 1, 0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) {
            kiln_dtype s = all[i], d = all[j];
            unsigned char src[6 * 8], dst[6 * 8];
            for (int k = 0; k < 6; k++) kiln_store_f64(s, src, k, s == KILN_BOOL ? vals[k] != 0 : vals[k]);
            kiln_ref_convert(d, dst, s, src, 6, true);
            for (int k = 0; k < 6; k++) {
                double want = (s == KILN_BOOL || d == KILN_BOOL) ? (vals[k] != 0) : vals[k];
                double got = kiln_load_f64(d, dst, k);
                if (got != want) fail_msg("%s -> %s element %d: %g, want %g", kiln_dtype_name(s), kiln_dtype_name(d), k, got, want);
            }
        }
}

static void test_identity(void **state)
{
    (void)state;
    const int64_t d[] = {3};
    const int64_t x[] = {1, 2, 3};
    kt_op *t = unary("Identity", 21, KILN_I64, 1, d, x);
    assert_kiln_ok(kt_op_run(t));
    assert_memory_equal(out_data(t, "Y"), x, sizeof x);
    kt_op_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_symbolic_broadcast),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_shape_comparisons_and_cast),
        cmocka_unit_test(test_shape_prelu_unidirectional),
        cmocka_unit_test(test_shape_dropout),
        cmocka_unit_test(test_flops),
        cmocka_unit_test(test_bcast_iterator_merges),
        cmocka_unit_test(test_bcast_random_against_naive),
        cmocka_unit_test(test_add_broadcast_values),
        cmocka_unit_test(test_div_integer_truncates),
        cmocka_unit_test(test_pow_mixed_dtypes),
        cmocka_unit_test(test_f16_bf16_arith),
        cmocka_unit_test(test_f16_long_rows),
        cmocka_unit_test(test_comparisons_and_logic),
        cmocka_unit_test(test_where_broadcast),
        cmocka_unit_test(test_prelu_values),
        cmocka_unit_test(test_activations_f32),
        cmocka_unit_test(test_activations_ints_and_halfs),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_cast_f8_saturate),
        cmocka_unit_test(test_cast_numeric),
        cmocka_unit_test(test_cast_all_pairs),
        cmocka_unit_test(test_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
